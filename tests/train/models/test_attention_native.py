"""The dialog attention's C kernel (ser.train.models.attention_native) against PyTorch's
path (dialog.SelfAttention's own maths)."""

from __future__ import annotations

import contextlib
import ctypes

import pytest
import torch

import ser.train.models.dialog
import ser.train.models.dropout
from ser.train.models import native
from ser.train.models.dialog import SelfAttention


@pytest.mark.parametrize(("d", "heads", "u"), [(100, 4, 37), (64, 2, 130)])
def test_attention_kernel_matches_pytorch_path_in_training(
    monkeypatch: pytest.MonkeyPatch, d: int, heads: int, u: int, kernel_build: ctypes.CDLL
) -> None:
    """With dropout on and the same seed, the C kernel's attention (attention_native.py)
    against PyTorch's: outputs and gradients, at the paper's head size (4 x 25) and with
    wider heads over a long dialog, dialogs longer than a 32-key tile, gaps, padding and
    an empty dialog."""
    # This build instead of the machine's, still switched off by native.disabled().
    build = kernel_build
    monkeypatch.setattr(
        ser.train.models.dialog, "kernels", lambda: build if native.kernels() else None
    )
    # Both paths draw their masks from PyTorch's generator (not the C one), so that they
    # drop the same weights.
    monkeypatch.setattr(ser.train.models.dropout, "kernels", lambda: None)
    torch.manual_seed(0)
    modules = [SelfAttention(d, heads, dropout=0.2).train() for _ in range(2)]
    x = torch.randn(2, 6, u, d)
    mask = torch.rand(6, u) < 0.8
    mask[1, 30:] = False
    mask[2] = False
    weights = torch.randn(2, 6, u, d)
    results = []
    for context in (contextlib.nullcontext(), native.disabled()):
        xg = x.clone().requires_grad_()
        for module in modules:
            module.zero_grad()
        torch.manual_seed(1)  # the same dropout masks on both paths
        with context:
            out = SelfAttention.lockstep(modules, xg, mask)
        (out * weights).sum().backward()
        grads = [p.grad.clone() for m in modules for p in m.parameters() if p.grad is not None]
        results.append((out.detach(), xg.grad, *grads))
    assert len(results[0]) == 2 + 2 * 4
    for got, expected in zip(*results, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert (results[0][0][:, 2] == 0).all()
