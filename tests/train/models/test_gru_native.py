"""The Bi-GRU layer's C kernel (ser.train.models.gru_native) against PyTorch's path."""

from __future__ import annotations

import contextlib
import ctypes

import pytest
import torch
from torch import nn

import ser.train.models.gru
from ser.train.models import native
from ser.train.models.gru import lockstep_bigru

SIZES = [(2, 20, 12, 50), (1, 3, 1, 13), (3, 9, 7, 40), (1, 2, 130, 128)]


@pytest.mark.parametrize(("m", "b", "u", "h"), SIZES)
def test_kernel_matches_pytorch_path_at_odd_sizes(
    m: int, b: int, u: int, h: int, kernel_build: ctypes.CDLL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outputs and gradients of the C kernel against PyTorch's path where register tiles
    are partial (dialogs not a multiple of 4, gates not of 32), with gaps and padding, and
    for a long dialog with wide states (more gates than one tile row of 256)."""
    # This build instead of the machine's, still switched off by native.disabled().
    build = kernel_build
    monkeypatch.setattr(
        ser.train.models.gru, "kernels", lambda: build if native.kernels() else None
    )
    torch.manual_seed(0)
    modules = [nn.GRU(8, h, batch_first=True, bidirectional=True) for _ in range(m)]
    x = torch.randn(m, b, u, 8)
    mask = torch.rand(b, u) < 0.7
    mask[0] = False  # an empty dialog
    weights = torch.randn(m, b, u, 2 * h)
    results = []
    for context in (contextlib.nullcontext(), native.disabled()):
        xg = x.clone().requires_grad_()
        for g in modules:
            g.zero_grad()
        with context:
            out, h_n = lockstep_bigru(modules, xg, mask)
        ((out * weights).sum() + h_n.square().sum()).backward()
        grads = [p.grad.clone() for g in modules for p in g.parameters() if p.grad is not None]
        results.append((out.detach(), h_n.detach(), xg.grad, *grads))
    for got, expected in zip(*results, strict=True):
        torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-5)
