"""The Bi-GRU loop (ser.models.nn.gru) against nn.GRU on packed sequences, gradients included."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ser.models.nn.gru import BiGRU
from ser.train.engine.ensemble import Ensemble

B, U, D, H = 4, 6, 5, 3


def stock(gru: BiGRU, d_in: int) -> nn.GRU:
    """nn.GRU holding the same weights (the parameters share its names and layout)."""
    ref = nn.GRU(d_in, gru.hidden, num_layers=gru.layers, batch_first=True, bidirectional=True)
    ref.load_state_dict(gru.state_dict())
    return ref


def packed_run(ref: nn.GRU, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """nn.GRU on each sequence's first `lengths` positions, zeros after."""
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = pad_packed_sequence(ref(packed)[0], batch_first=True, total_length=x.shape[1])
    return out


@pytest.mark.parametrize("layers", [1, 2])
def test_outputs_and_gradients_equal_nn_grus_on_packed_sequences(layers: int) -> None:
    """Outputs, input gradients and every weight's gradient are nn.GRU's on each
    sequence's real positions (packed), padding holding junk."""
    torch.manual_seed(0)
    gru = BiGRU(D, H, layers=layers)
    ref = stock(gru, D)
    lengths = torch.tensor([6, 3, 1, 5])
    mask = torch.arange(U) < lengths[:, None]  # [B, U]
    x = torch.randn(B, U, D).masked_fill(~mask[..., None], 0.0)
    junk = torch.where(mask[..., None], x, 100 * torch.randn(B, U, D)).requires_grad_()
    x_ref = x.clone().requires_grad_()
    weights = torch.randn(B, U, 2 * H)
    got, want = gru(junk, mask), packed_run(ref, x_ref, lengths)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    (got * weights).sum().backward()
    (want * weights).sum().backward()
    assert junk.grad is not None and x_ref.grad is not None
    torch.testing.assert_close(junk.grad, x_ref.grad, atol=1e-6, rtol=1e-5)
    assert (junk.grad[~mask] == 0).all()  # padding gets no gradient
    stock_params = dict(ref.named_parameters())
    for name, p in gru.named_parameters():
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, stock_params[name].grad, atol=1e-5, rtol=1e-5)


def test_initialisation_is_nn_grus() -> None:
    """The same names, shapes and draws: U(+-1/sqrt(H)) in nn.GRU's order."""
    torch.manual_seed(3)
    gru = BiGRU(D, H, layers=2)
    torch.manual_seed(3)
    ref = nn.GRU(D, H, num_layers=2, bidirectional=True)
    assert list(gru.state_dict()) == list(ref.state_dict())
    for name, p in ref.state_dict().items():
        assert torch.equal(gru.state_dict()[name], p), name


def test_a_gap_is_skipped_like_a_missing_position() -> None:
    """Both directions carry their state over a masked position inside a sequence:
    the real positions get what the sequence without it gets; the gap gets 0."""
    torch.manual_seed(0)
    gru = BiGRU(D, H, layers=2)
    x = torch.randn(1, U, D)
    holed = torch.tensor([[True, True, False, True, False, True]])
    keep = holed[0].nonzero().squeeze(1)
    out = gru(x, holed)
    without = gru(x[:, keep], torch.ones(1, len(keep), dtype=torch.bool))
    torch.testing.assert_close(out[:, keep], without, atol=1e-6, rtol=1e-5)
    assert (out[~holed] == 0).all()


def test_extra_padding_changes_nothing() -> None:
    torch.manual_seed(0)
    gru = BiGRU(D, H)
    mask = torch.arange(U) < torch.tensor([6, 2, 4, 1])[:, None]
    x = torch.randn(B, U, D)
    longer = torch.cat([x, 1e3 * torch.randn(B, 5, D)], dim=1)
    longer_mask = torch.cat([mask, torch.zeros(B, 5, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(gru(longer, longer_mask)[:, :U], gru(x, mask))


def test_fully_padded_rows_give_zeros_and_finite_gradients() -> None:
    torch.manual_seed(0)
    gru = BiGRU(D, H, layers=2)
    mask = torch.ones(B, U, dtype=torch.bool)
    mask[1] = False  # a padded slot of the batch
    x = (50 * torch.randn(B, U, D)).requires_grad_()
    out = gru(x, mask)
    assert (out[1] == 0).all() and torch.isfinite(out).all()
    out.square().sum().backward()
    assert x.grad is not None and (x.grad[1] == 0).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in gru.parameters())


def test_gradcheck_with_gaps_and_an_empty_row() -> None:
    """The held update gate (z = 1 at masked positions) differentiates correctly."""
    torch.manual_seed(0)
    gru = BiGRU(2, 2).double()
    mask = torch.tensor([[True, False, True, True], [False] * 4, [True, True, True, False]])
    x = torch.randn(3, 4, 2, dtype=torch.float64, requires_grad=True)
    names = [n for n, _ in gru.named_parameters()]

    def run(x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        state = dict(zip(names, params, strict=True))
        return torch.func.functional_call(gru, state, (x, mask))

    assert torch.autograd.gradcheck(run, (x, *gru.parameters()))


def test_grus_stepping_together_equal_each_alone() -> None:
    """Two GRUs of one size on inputs of different widths (the two modality branches)
    in one loop: each sees only its own weights and input."""
    torch.manual_seed(0)
    grus = [BiGRU(D, H, layers=2), BiGRU(D + 2, H, layers=2)]
    mask = torch.arange(U) < torch.tensor([6, 3, 1, 5])[:, None]
    xs = [torch.randn(B, U, D), torch.randn(B, U, D + 2)]
    together = BiGRU.together(grus, xs, mask)
    for gru, x, y in zip(grus, xs, together, strict=True):
        torch.testing.assert_close(y, gru(x, mask), atol=1e-6, rtol=1e-5)


def test_dropout_between_layers_only_in_training() -> None:
    torch.manual_seed(0)
    gru = BiGRU(D, H, layers=2, dropout=0.5)
    x, mask = torch.randn(B, U, D), torch.ones(B, U, dtype=torch.bool)
    ref = nn.GRU(D, H, num_layers=2, batch_first=True, bidirectional=True)
    ref.load_state_dict(gru.state_dict())
    torch.testing.assert_close(gru.eval()(x, mask), ref(x)[0], atol=1e-6, rtol=1e-5)
    gru.train()
    assert not torch.allclose(gru(x, mask), gru(x, mask))


def test_under_vmap_each_member_gets_what_it_gets_alone() -> None:
    """Members of an Ensemble (torch.func.vmap) with their own weights, inputs and masks."""
    torch.manual_seed(0)
    grus = [BiGRU(D, H, layers=2) for _ in range(3)]
    x = torch.randn(3, B, U, D)
    mask = torch.arange(U) < torch.randint(0, U + 1, (3, B))[..., None]  # [K, B, U]
    out = Ensemble(grus).call(lambda m, x, mask: m(x, mask), x, mask)
    for k, gru in enumerate(grus):
        torch.testing.assert_close(out[k], gru(x[k], mask[k]), atol=1e-6, rtol=1e-5)


def test_a_bf16_autocast_keeps_the_state_in_float32() -> None:
    torch.manual_seed(0)
    gru = BiGRU(D, H)
    x, mask = torch.randn(B, U, D), torch.ones(B, U, dtype=torch.bool)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = gru(x, mask)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, gru(x, mask), atol=0.05, rtol=0.05)


def test_each_time_step_costs_a_few_operators(op_count: type) -> None:
    """6 operators a step forward (in training too: nothing extra is recorded), and
    autograd's backward of them about 21 (on this torch: a guard, not a contract)."""
    torch.manual_seed(0)
    gru = BiGRU(D, H)
    counts = []
    for u in (5, 15):
        x = torch.randn(2, u, D, requires_grad=True)
        mask = torch.ones(2, u, dtype=torch.bool)
        with torch.no_grad(), op_count() as evaluation:
            gru(x, mask)
        with op_count() as forward:
            out = gru(x, mask)
        loss = out.sum()
        with op_count() as backward:
            loss.backward()
        counts.append((evaluation.count, forward.count, backward.count))
    (e5, f5, b5), (e15, f15, b15) = counts
    assert (e15 - e5) / 10 == (f15 - f5) / 10 == 6
    assert (b15 - b5) / 10 < 25
