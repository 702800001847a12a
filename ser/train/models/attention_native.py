"""The dialog models' self-attention core in the C kernel (`attention_kernel.c`).

Between SelfAttention's input and output projections (dialog.py) sit the scores, the key
mask, the softmax, dropout on the weights and the weighted sum of values: at the fusion
study's sizes a dozen small batched ops and two copies that split and join the heads.
On a CPU with AVX-512 (where `native.kernels()` has a library) that core is one call
forward and one backward, reading q, k and v in the projection's layout and writing the
heads concatenated; the dropout mask still comes from `dropout.keep_factors` (PyTorch's
generator, so `torch.manual_seed` fixes it). Same results as dialog.py's PyTorch path
(tested to 1e-5) on real utterances; padded queries give 0 there, as dialog.py zeroes
them anyway.
"""

from __future__ import annotations

import ctypes
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from ser.train.models.dropout import keep_factors
from ser.train.models.gru_native import check, pointers


def attention_core(
    kernel: ctypes.CDLL,
    qkv: torch.Tensor,
    mask: torch.Tensor,
    heads: int,
    p: float,
    training: bool,
) -> torch.Tensor:
    """qkv [M, B, U, 3E] (q | k | v, `heads` heads of E / heads each), mask [B, U] -> the
    attention's output before its projection, heads concatenated, [M, B, U, E]."""
    m, b, u, _ = qkv.shape
    keep = None
    if training and p > 0.0:
        keep = keep_factors((m, b, heads, u, u), p, qkv.dtype)  # [M, B, heads, U, U]
    out: torch.Tensor = _Core.apply(qkv, mask, keep, heads, kernel)
    return out


class _Core(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        qkv: torch.Tensor,
        mask: torch.Tensor,
        keep: torch.Tensor | None,
        heads: int,
        kernel: ctypes.CDLL,
    ) -> torch.Tensor:
        m, b, u, three_e = qkv.shape
        qkv, mask = qkv.contiguous(), mask.contiguous().view(torch.uint8)
        probs = qkv.new_empty(m, b, heads, u, u)  # softmax weights before dropout
        out = qkv.new_empty(m, b, u, three_e // 3)
        sizes = (m, b, u, heads, three_e // 3 // heads)
        kernel.ser_attention_forward(*sizes, *_arguments(mask, qkv, keep, probs, out))
        ctx.kernel, ctx.sizes = kernel, sizes
        ctx.save_for_backward(qkv, mask, keep, probs)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, d_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        qkv, mask, keep, probs = ctx.saved_tensors
        d_qkv = torch.empty_like(qkv)
        arguments = _arguments(mask, qkv, keep, probs, d_out.contiguous(), d_qkv)
        check(ctx.kernel.ser_attention_backward(*ctx.sizes, *arguments))
        return d_qkv, None, None, None, None


def _arguments(*tensors: torch.Tensor | None) -> list[int]:
    """The kernel's pointer arguments; None (no dropout) is a null pointer."""
    return [0 if t is None else pointers(t)[0] for t in tensors]
