"""The lockstep Bi-GRU (ser.train.models.gru) against nn.GRU, padding and gaps included,
on both paths (the `path` fixture): the C kernel (gru_native.py) and PyTorch's ops."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ser.train.models.gru import TimeIndex, _Recurrence, lockstep_bigru

# Dialog 0 full, 1 with a gap and trailing padding, 2 one utterance, 3 empty.
MASK = torch.tensor(
    [
        [1, 1, 1, 1, 1, 1],
        [1, 1, 0, 1, 0, 0],
        [1, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ],
    dtype=torch.bool,
)


def grus(n: int, layers: int = 1, d: int = 6, h: int = 5) -> list[nn.GRU]:
    torch.manual_seed(0)
    return [nn.GRU(d, h, layers, batch_first=True, bidirectional=True) for _ in range(n)]


def reference(
    modules: list[nn.GRU], x: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """nn.GRU on each dialog's real utterances alone, put back at their positions."""
    m, b, u, _ = x.shape
    h = modules[0].hidden_size
    out = x.new_zeros(m, b, u, 2 * h)
    h_n = x.new_zeros(m, 2 * modules[0].num_layers, b, h)
    for i, gru in enumerate(modules):
        for j in range(b):
            if mask[j].any():
                y, last = gru(x[i, j][mask[j]].unsqueeze(0))  # [1, L, 2H], [2 layers, 1, H]
                out[i, j, mask[j]] = y[0]
                h_n[i, :, j] = last[:, 0]
    return out, h_n


@pytest.mark.parametrize("layers", [1, 2])
def test_matches_nn_gru_forward_and_gradients(layers: int, path: str) -> None:
    modules = grus(2, layers)
    x = torch.randn(2, 4, 6, 6)  # [M, B, U, D]
    weights = torch.randn(2, 4, 6, 10)  # a loss touching every output
    results = []
    for run in (lockstep_bigru, reference):
        xg = x.clone().requires_grad_()
        for g in modules:
            g.zero_grad()
        out, h_n = run(modules, xg, MASK)
        ((out * weights).sum() + h_n.square().sum()).backward()
        assert xg.grad is not None
        grads = [p.grad.clone() for g in modules for p in g.parameters() if p.grad is not None]
        results.append((out.detach(), h_n.detach(), xg.grad, grads))
    (out, h_n, dx, grads), (ref_out, ref_h, ref_dx, ref_grads) = results
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h_n, ref_h, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dx, ref_dx, atol=1e-5, rtol=1e-5)
    assert len(grads) == len(ref_grads) == 2 * 8 * layers
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-5)
    assert (out[:, ~MASK] == 0).all() and (h_n[:, :, 3] == 0).all()


def test_padding_never_leaks(path: str) -> None:
    modules = grus(1)
    x = torch.randn(1, 4, 6, 6)
    garbage = torch.where(MASK.unsqueeze(-1), x, torch.full_like(x, float("nan")))
    outs = []
    for inputs in (x, garbage, torch.where(MASK.unsqueeze(-1), x, 1e6)):
        xg = inputs.clone().requires_grad_()
        modules[0].zero_grad()
        out, h_n = lockstep_bigru(modules, xg, MASK)
        out.sum().backward()
        grad = modules[0].weight_hh_l0.grad
        assert grad is not None and xg.grad is not None
        assert torch.isfinite(grad).all() and (xg.grad[:, ~MASK] == 0).all()
        outs.append((out.detach(), h_n.detach(), grad.clone()))
    for other in outs[1:]:
        for a, b in zip(outs[0], other, strict=True):
            torch.testing.assert_close(a, b)


def test_recurrence_gradients_are_exact() -> None:
    """The hand-written backward pass against finite differences (float64: PyTorch's path;
    the C kernel, float32 only, is held to that path and to nn.GRU)."""
    torch.manual_seed(0)
    k, t, b, h = 3, 5, 2, 4
    gi = torch.randn(k, t, b, 3 * h, dtype=torch.float64, requires_grad=True)
    w_hh = torch.randn(k, h, 3 * h, dtype=torch.float64, requires_grad=True)
    b_hh = torch.randn(k, 1, 3 * h, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_Recurrence.apply, (gi, w_hh, b_hh))


def test_time_index_walks_real_utterances_in_both_directions() -> None:
    mask = torch.tensor([[1, 0, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    index = TimeIndex.of(mask)
    b, u = mask.shape
    src = index.src.view(2, u, b)  # rows of the projections: utterance row * 2 + direction
    assert (src % 2 == torch.arange(2)[:, None, None]).all()
    src = src // 2  # rows of x.view(B * U, D)
    pos = src - torch.arange(b) * u  # positions within each dialog
    assert pos[0, :3, 0].tolist() == [0, 2, 3] and pos[1, :3, 0].tolist() == [3, 2, 0]
    assert pos[0, :2, 1].tolist() == [0, 1] and pos[1, :2, 1].tolist() == [1, 0]
    assert mask.flatten()[src].all()  # steps past the end (and empty dialogs) read real rows
    # States are [T + 1] steps from h_0: rows (direction * (U + 1) + step) * B + dialog.
    last = index.last.view(2, b) - torch.arange(b)
    assert last.tolist() == [[3 * b, 2 * b, 0], [(u + 4) * b, (u + 3) * b, (u + 1) * b]]
    back = index.back.view(b, u, 2) - torch.arange(b)[:, None, None]
    assert back[0, :, 0].tolist() == [1 * b, 0, 2 * b, 3 * b]  # padding -> h_0 (zeros)


def test_rejects_gru_it_cannot_run() -> None:
    x, mask = torch.randn(2, 1, 3, 6), torch.ones(1, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="equal sizes"):
        lockstep_bigru([*grus(1), *grus(1, h=3)], x, mask)
    with pytest.raises(ValueError, match="bidirectional"):
        lockstep_bigru([nn.GRU(6, 5, batch_first=True)], x[:1], mask)


def test_recurrence_stays_float32_under_bf16_autocast() -> None:
    # Only the input projections may run in bf16; the hidden states stay float32.
    modules = grus(2)
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    expected, _ = lockstep_bigru(modules, x, MASK)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, h_n = lockstep_bigru(modules, x, MASK)
    assert out.dtype == h_n.dtype == torch.float32
    torch.testing.assert_close(out, expected, atol=0.05, rtol=0.05)  # bf16 projections only
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    grads = [p.grad for p in modules[0].parameters()]
    assert all(g is not None and g.dtype == torch.float32 for g in grads)
