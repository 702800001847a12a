"""The dialog models' self-attention core in the C kernel (`attention_kernel.c`).

Between SelfAttention's input and output projections (dialog.py) sit the scores, the key
mask, the softmax, dropout on the weights and the weighted sum of values: at the fusion
study's sizes a dozen small batched ops and two copies that split and join the heads.
On a CPU with AVX-512 or AVX2 (where `native.kernels()` has a library) that core is one
call forward and one backward, reading q, k and v in the projection's layout and writing
the heads concatenated; the dropout mask comes from `dropout.keep_factors`, as on
PyTorch's path (`torch.manual_seed` fixes it). Same results as dialog.py's PyTorch path
(tested to 1e-5) on real utterances; padded queries give 0 there, as dialog.py zeroes
them anyway.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from ser.train.models.dropout import keep_factors
from ser.train.models.native import check, pointer_array, pointers


def attention_core(
    kernel: ctypes.CDLL,
    qkvs: Sequence[torch.Tensor],
    mask: torch.Tensor,
    heads: int,
    p: float,
    training: bool,
) -> torch.Tensor:
    """qkvs: M of [B, U, 3E] (q | k | v, `heads` heads of E / heads each), mask [B, U] ->
    the attention's output before its projection, heads concatenated, [M, B, U, E]."""
    b, u, _ = qkvs[0].shape
    keep = None
    if training and p > 0.0:
        keep = keep_factors((len(qkvs), b, heads, u, u), p, qkvs[0].dtype)  # [M, B, h, U, U]
    out: torch.Tensor = _Core.apply(mask, keep, heads, kernel, *qkvs)
    return out


class _Core(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        mask: torch.Tensor,
        keep: torch.Tensor | None,
        heads: int,
        kernel: ctypes.CDLL,
        *qkvs: torch.Tensor,
    ) -> torch.Tensor:
        m, (b, u, three_e) = len(qkvs), qkvs[0].shape
        qkvs = tuple(q.contiguous() for q in qkvs)
        mask = mask.contiguous().view(torch.uint8)
        probs = qkvs[0].new_empty(m, b, heads, u, u)  # softmax weights before dropout
        out = qkvs[0].new_empty(m, b, u, three_e // 3)
        sizes = (m, b, u, heads, three_e // 3 // heads)
        qkv_array = pointer_array(qkvs)
        mask_ptr, keep_ptr, probs_ptr, out_ptr = pointers(mask, keep, probs, out)
        qkv_ptr = ctypes.addressof(qkv_array)
        kernel.ser_attention_forward(*sizes, mask_ptr, qkv_ptr, keep_ptr, probs_ptr, out_ptr)
        ctx.kernel, ctx.sizes = kernel, sizes
        ctx.save_for_backward(mask, keep, probs, *qkvs)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, d_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        mask, keep, probs, *qkvs = ctx.saved_tensors
        d_qkvs = [torch.empty_like(q) for q in qkvs]
        qkv_array, d_qkv_array = pointer_array(qkvs), pointer_array(d_qkvs)
        mask_ptr, keep_ptr, probs_ptr, d_out_ptr = pointers(mask, keep, probs, d_out.contiguous())
        qkv_ptr, d_qkv_ptr = ctypes.addressof(qkv_array), ctypes.addressof(d_qkv_array)
        check(
            ctx.kernel.ser_attention_backward(
                *ctx.sizes, mask_ptr, qkv_ptr, keep_ptr, probs_ptr, d_out_ptr, d_qkv_ptr
            )
        )
        return None, None, None, None, *d_qkvs
