"""The GRU recurrence with its written-out backward pass (ser.train.nn.recurrence)."""

from __future__ import annotations

import pytest
import torch

from ser.train.nn.recurrence import gru_directions

K, B, H = 2, 3, 4


def autograd_reference(
    gates: list[torch.Tensor], mask: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor
) -> list[torch.Tensor]:
    """The same recurrence written step by step and left to autograd: nn.GRU's gates,
    odd directions on the time-reversed sequence, the state carried over where masked."""
    states = []
    for i, g in enumerate(gates):
        members = slice(i * K, (i + 1) * K)
        g, m = (g.flip(2), mask.flip(2)) if i % 2 else (g, mask)
        h = g.new_zeros(K, B, H)
        seq = []
        for t in range(g.shape[2]):
            gh = torch.baddbmm(b_hh[members], h, w_hh[members])
            r = torch.sigmoid(g[:, :, t, :H] + gh[..., :H])
            z = torch.sigmoid(g[:, :, t, H : 2 * H] + gh[..., H : 2 * H])
            n = torch.tanh(g[:, :, t, 2 * H :] + r * gh[..., 2 * H :])
            h = torch.where(m[:, :, t, None], (1 - z) * n + z * h, h)
            seq.append(h)
        out = torch.stack(seq, dim=2)
        states.append(out.flip(2) if i % 2 else out)
    return [
        torch.cat([states[i], states[i + 1]], dim=-1) * mask[..., None]
        for i in range(0, len(gates), 2)
    ]


def inputs(u: int = 6, pairs: int = 2, dtype: torch.dtype = torch.float64):
    torch.manual_seed(0)
    n = 2 * pairs
    gates = [torch.randn(K, B, u, 3 * H, dtype=dtype, requires_grad=True) for _ in range(n)]
    w_hh = (0.5 * torch.randn(n * K, H, 3 * H, dtype=dtype)).requires_grad_()
    b_hh = torch.randn(n * K, 1, 3 * H, dtype=dtype, requires_grad=True)
    mask = torch.ones(K, B, u, dtype=torch.bool)
    mask[0, 1, 4:] = False  # padding at the end
    mask[1, 0, 2] = False  # a gap inside a sequence
    mask[1, 2, :] = False  # an empty sequence
    return gates, mask, w_hh, b_hh


def test_outputs_and_gradients_equal_autograd_through_the_steps() -> None:
    gates, mask, w_hh, b_hh = inputs()
    got = gru_directions(gates, mask, w_hh, b_hh)
    want = autograd_reference(gates, mask, w_hh, b_hh)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)
    weights = [torch.randn_like(w) for w in want]
    params = [*gates, w_hh, b_hh]
    d_got = torch.autograd.grad(
        sum((g * v).sum() for g, v in zip(got, weights, strict=True)), params
    )
    d_want = torch.autograd.grad(
        sum((w * v).sum() for w, v in zip(want, weights, strict=True)), params
    )
    for a, b in zip(d_got, d_want, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("at_once", [False, True])
def test_gradcheck(at_once: bool) -> None:
    gates, mask, w_hh, b_hh = inputs(u=4, pairs=1)

    def run(w: torch.Tensor, b: torch.Tensor, *g: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(
            gru_directions(list(g), mask, w, b, factors_at_once=at_once, keep_factors=True)
        )

    assert torch.autograd.gradcheck(run, (w_hh, b_hh, *gates))


@pytest.mark.parametrize("at_once", [False, True])
def test_the_backward_writes_over_its_factors_unless_they_are_kept(at_once: bool) -> None:
    """By default the backward writes the gradients over its saved factors (no second
    buffer their size): the same gradients as with the factors kept, and a second
    backward through the graph fails loudly; kept, a second one gives them again."""
    gates, mask, w_hh, b_hh = inputs()
    params = [*gates, w_hh, b_hh]

    def loss(keep: bool) -> torch.Tensor:
        out = gru_directions(gates, mask, w_hh, b_hh, factors_at_once=at_once, keep_factors=keep)
        return sum(o.square().sum() for o in out)  # type: ignore[return-value]

    kept = loss(True)
    first = torch.autograd.grad(kept, params, retain_graph=True)
    again = torch.autograd.grad(kept, params)
    written_over = loss(False)
    once = torch.autograd.grad(written_over, params, retain_graph=True)
    for a, b, c in zip(first, again, once, strict=True):
        assert torch.equal(a, b) and torch.equal(a, c)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch.autograd.grad(written_over, params)


def test_factors_made_at_once_give_the_same_gradients_as_step_by_step() -> None:
    """The GPU's way (factors for all steps after the loop) and the CPU's (per step)."""
    gates, mask, w_hh, b_hh = inputs(dtype=torch.float32)
    params = [*gates, w_hh, b_hh]
    grads = []
    for at_once in (False, True):
        out = gru_directions(gates, mask, w_hh, b_hh, factors_at_once=at_once)
        grads.append(torch.autograd.grad(sum(o.square().sum() for o in out), params))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


def test_evaluation_keeps_nothing_and_gives_the_same_outputs() -> None:
    gates, mask, w_hh, b_hh = inputs()
    trained = gru_directions(gates, mask, w_hh, b_hh)
    with torch.no_grad():
        evaluated = gru_directions(gates, mask, w_hh, b_hh)
    assert all(e.grad_fn is None for e in evaluated)
    for a, b in zip(trained, evaluated, strict=True):
        assert torch.equal(a.detach(), b)


def test_low_precision_gates_run_a_float32_state_and_get_gradients_in_their_dtype() -> None:
    gates, mask, w_hh, b_hh = inputs(dtype=torch.float32)
    low = [g.detach().bfloat16().requires_grad_() for g in gates]
    out = gru_directions(low, mask, w_hh, b_hh)
    assert all(o.dtype == torch.float32 for o in out)
    sum(o.sum() for o in out).backward()
    assert all(g.grad is not None and g.grad.dtype == torch.bfloat16 for g in low)
    assert w_hh.grad is not None and w_hh.grad.dtype == torch.float32


def ops_per_step(
    counter: type, at_once: bool, u_short: int = 5, u_long: int = 15
) -> tuple[float, ...]:
    """Operators per time step: (evaluation, training forward, backward)."""
    counts = []
    for u in (u_short, u_long):
        gates, mask, w_hh, b_hh = inputs(u=u, dtype=torch.float32)
        with torch.no_grad(), counter() as evaluation:
            gru_directions(gates, mask, w_hh, b_hh)
        with counter() as forward:
            out = gru_directions(gates, mask, w_hh, b_hh, factors_at_once=at_once)
        loss = sum(o.sum() for o in out)
        with counter() as backward:
            loss.backward()
        counts.append((evaluation.count, forward.count, backward.count))
    short, long = counts
    return tuple((b - a) / (u_long - u_short) for a, b in zip(short, long, strict=True))


def test_each_time_step_costs_a_few_operators(op_count) -> None:  # type: ignore[no-untyped-def]
    """Per time step: 7 operators in evaluation; in training 7 (+ 12 for the backward's
    factors on the CPU's way), then 5 in the backward pass (4 on the GPU's way, which
    makes the weights' gradient in one product). (Autograd through the same steps: 10
    and 22, each recorded and replayed one node at a time.)"""
    evaluation, forward, backward = ops_per_step(op_count, at_once=False)
    assert (evaluation, forward, backward) == (7, 19, 5)
    evaluation, forward, backward = ops_per_step(op_count, at_once=True)
    assert (evaluation, forward, backward) == (7, 7, 4)


def test_unpaired_directions_are_refused() -> None:
    gates, mask, w_hh, b_hh = inputs()
    with pytest.raises(ValueError, match="pairs"):
        gru_directions(gates[:3], mask, w_hh, b_hh)
