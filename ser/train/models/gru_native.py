"""One lockstep Bi-GRU layer in the C kernel (`gru_kernel.c`), for gru.py.

On a CPU with AVX-512 or AVX2 (where `native.kernels()` has a library), a layer of the
fusion study's Bi-GRUs is one call forward and one backward: the kernel finds each
dialog's real utterances in the mask itself, reads every direction's input projections
in its own time order, steps all K = 2M recurrences (a step is one register-tiled
product and the gate maths, the recurrences shared among PyTorch's OpenMP threads) and
writes outputs and final states in place, so none of the PyTorch path's gathers,
scatters and per-step ops remain. Same results as that path (gru.py, tested to 1e-5),
whose weight layouts it shares (`_stacked_weights`).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from ser.train.models.native import check, pointer_array, pointers


def native_layer(
    kernel: ctypes.CDLL,
    projs: Sequence[torch.Tensor],
    mask: torch.Tensor,
    w_hh: torch.Tensor,
    b_hh: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """projs: M of [B, U, 2 * 3H] (each GRU's W_i x + b_i for both directions, gates
    n | z | r each), mask [B, U], w_hh [K, H, 3H] and b_hh [K, 1, 3H] (gates z | r | n)
    -> out [M, B, U, 2H], h_n [M, 2, B, H], as gru.py's `_bigru_layer`."""
    out, h_n = _Layer.apply(mask, w_hh, b_hh, kernel, *projs)
    return out, h_n


class _Layer(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        mask: torch.Tensor,
        w_hh: torch.Tensor,
        b_hh: torch.Tensor,
        kernel: ctypes.CDLL,
        *projs: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        m, (b, u, six_h) = len(projs), projs[0].shape
        h, k = six_h // 6, 2 * m
        projs = tuple(p.contiguous() for p in projs)
        w_hh, b_hh = w_hh.contiguous(), b_hh.contiguous()
        mask = mask.contiguous().view(torch.uint8)  # [B, U], 1 = real
        new = projs[0].new_empty
        states = new(k, u + 1, b, h)  # [K, T+1, B, H], h_0 first
        pre = new(u, k, b, 3 * h)  # [T, K, B, 3H]: z | r | W_hn h + b_hn
        n = new(u, k, b, h)  # [T, K, B, H]
        out, h_n = new(m, b, u, 2 * h), new(m, 2, b, h)
        proj_array = pointer_array(projs)
        mask_ptr, *rest = pointers(mask, w_hh, b_hh, states, pre, n, out, h_n)
        check(kernel.ser_bigru_forward(m, b, u, h, mask_ptr, ctypes.addressof(proj_array), *rest))
        ctx.kernel = kernel
        ctx.save_for_backward(mask, w_hh, states, pre, n)
        return out, h_n

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, grad_out: torch.Tensor, grad_hn: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        mask, w_hh, states, pre, n = ctx.saved_tensors
        u, k, b, h = n.shape
        grad_out, grad_hn = grad_out.contiguous(), grad_hn.contiguous()
        w_t = w_hh.transpose(1, 2).contiguous()  # [K, 3H, H]
        slots = grad_out.new_empty(k, u, b, 4, h)  # dL/d(n_pre | z_pre | r_pre | W_hn h + b_hn)
        d_projs = [grad_out.new_empty(b, u, 6 * h) for _ in range(k // 2)]
        scratch = grad_out.new_empty(k, 2, b, h)
        d_w, d_b = grad_out.new_empty(k, h, 3 * h), grad_out.new_empty(k, 1, 3 * h)
        d_proj_array = pointer_array(d_projs)
        args = pointers(mask, grad_out, grad_hn, w_t, states, pre, n, slots)
        d_proj_ptr, *rest = ctypes.addressof(d_proj_array), *pointers(scratch, d_w, d_b)
        check(ctx.kernel.ser_bigru_backward(k // 2, b, u, h, *args, d_proj_ptr, *rest))
        return None, d_w, d_b, None, *d_projs
