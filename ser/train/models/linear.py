"""`F.linear` for float32 on the CPU, run on oneDNN instead of MKL.

PyTorch's CPU wheels multiply float32 matrices with MKL, which picks its kernels by CPU
vendor: on AMD CPUs it takes its AVX2 path even where the CPU has AVX-512. oneDNN (in
PyTorch as "mkldnn") picks them by instruction set. On this project's 2-core AMD EPYC
development machine (AVX-512), at the dialog models' sizes (~850 utterances x 100-768
features), oneDNN multiplies at 110-200 GMAC/s where MKL reaches 80-90: a linear layer's
forward and backward take 0.8 ms instead of 2.0 ms at 768 -> 100 (benchmarks/README.md).

`linear` is `F.linear`'s maths (results equal to float32 rounding) with oneDNN for the
forward product and both backward products. It falls back to `F.linear` off the CPU,
for other dtypes, under autocast (which `F.linear` follows), for empty tensors, where
PyTorch was built without oneDNN, and inside `torch.backends.mkldnn.flags(enabled=False)`,
PyTorch's own switch for it.

>>> import torch
>>> x, w, b = torch.randn(5, 3, 8), torch.randn(4, 8), torch.randn(4)
>>> y = linear(x, w, b)
>>> y.shape
torch.Size([5, 3, 4])
>>> torch.allclose(y, torch.nn.functional.linear(x, w, b), atol=1e-5)
True
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
from torch.autograd.function import once_differentiable
from torch.nn import functional as F


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x [..., D_in] @ weight [D_out, D_in]^T + bias [D_out] -> [..., D_out]."""
    if not _on_onednn(x, weight, bias):
        return F.linear(x, weight, bias)
    y = _OneDnnLinear.apply(x.reshape(-1, x.shape[-1]), weight, bias)  # [N, D_out]
    return y if x.dim() == 2 else y.view(*x.shape[:-1], weight.shape[0])


def each(
    x: torch.Tensor, layers: Sequence[tuple[torch.Tensor, torch.Tensor | None]]
) -> torch.Tensor:
    """Layer m on x[m]: x [M, ..., D_in], M (weight [D_out, D_in], bias) -> [M, ..., D_out].

    The stacked layers of several modalities, as `linear`s: oneDNN has no batched
    product in PyTorch, and one per modality is faster than MKL's `baddbmm` here."""
    if len(layers) != x.shape[0]:
        raise ValueError(f"each: {len(layers)} layers for {x.shape[0]} inputs")
    return torch.stack([linear(x_m, w, b) for x_m, (w, b) in zip(x, layers, strict=True)])


def _on_onednn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    tensors = (x, weight) if bias is None else (x, weight, bias)
    return (
        all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)
        and x.numel() > 0
        and weight.numel() > 0
        and weight.dim() == 2
        and bool(torch.backends.mkldnn.enabled)
        and not torch.is_autocast_enabled("cpu")
        and onednn_available()
    )


@functools.cache
def onednn_available() -> bool:
    """Whether this PyTorch has oneDNN and its dense linear op (one Inductor uses)."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        _ = torch.ops.mkldnn._linear_pointwise.default
    except (AttributeError, RuntimeError):
        return False
    return True


def _product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x [N, K] @ weight [M, K]^T (+ bias [M]) -> [N, M] on oneDNN; strided views are fine."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class _OneDnnLinear(torch.autograd.Function):
    """x [N, D_in], weight [D_out, D_in], bias [D_out] or None -> [N, D_out]."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return _product(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        d_x = _product(grad, weight.t(), None) if need_x else None  # [N, D_in]
        d_w = _weight_grad(grad, x) if need_w else None  # [D_out, D_in]
        d_b = grad.sum(dim=0) if need_b else None  # [D_out]; False for no bias
        return d_x, d_w, d_b


def _weight_grad(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """grad [N, D_out]^T @ x [N, D_in] -> [D_out, D_in]. oneDNN copies its first operand
    when it is a transposed view (the second it reorders anyway), so the narrower of the
    two goes first: 0.23 ms instead of 0.34 ms at N 860, 100 -> 300."""
    if x.shape[1] < grad.shape[1]:
        return _product(x.t(), grad.t(), None).t()  # ([D_in, D_out])^T
    return _product(grad.t(), x.t(), None)
