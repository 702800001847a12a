"""The GRU recurrence of many directions at once, with its backward pass written out.

`gru_directions(gates, mask, w_hh, b_hh)` runs N GRU directions (members, modalities
and both directions folded into one leading axis) over the input parts of their gates,
precomputed for all time steps. Odd directions run backwards in time. At a masked
position the state is carried over unchanged (see `ser.train.nn.gru`).

Why by hand: left to autograd, each time step records 10 operations and the backward
replays 22 (each a graph node with its own bookkeeping), and the per-step tensors are
stacked along a strided axis and split again. Here each step's state goes straight
into a time-major buffer (7 operations a step, nothing recorded). In training the
forward also computes the factors that the backward multiplies the incoming gradient by
(gate derivatives, masks), so the backward is 4-5 operations a step: on a CPU the
factors take 12 operations a step while the step's activations are in cache, and the
backward adds each step's share of the recurrent weights' gradient; off the CPU the
factors take 12 operations for all steps at once after the loop, and that gradient is
one product after the backward's loop (launches are what a GPU step waits on; see
`factors_at_once`). Fewer operations and no autograd nodes: fewer launches on a GPU,
less dispatch and copying on a CPU. Tested against autograd through
the same maths step by step, with `torch.autograd.gradcheck` in float64, and (through
`BiGRU`) against `nn.GRU`'s outputs and gradients.

Time runs in float32 (or float64 if given): under autocast the input gates may arrive
in bfloat16, and a recurrence of hundreds of steps keeps its state in full precision;
its products are too small to gain from lower precision.

>>> import torch
>>> k, b, u, h = 2, 3, 5, 4
>>> gates = [torch.randn(k, b, u, 3 * h) for _ in range(2)]  # forward, backward
>>> w, bias = torch.randn(2 * k, h, 3 * h), torch.randn(2 * k, 1, 3 * h)
>>> out = gru_directions(gates, torch.ones(k, b, u, dtype=torch.bool), w, bias)
>>> [o.shape for o in out]  # one [K, B, U, 2H] per pair of directions
[torch.Size([2, 3, 5, 8])]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def gru_directions(
    gates: Sequence[torch.Tensor],
    mask: torch.Tensor,
    w_hh: torch.Tensor,
    b_hh: torch.Tensor,
    *,
    factors_at_once: bool | None = None,
    keep_factors: bool = False,
) -> list[torch.Tensor]:
    """Directions (forward, backward, forward, ...) over their input gates [K, B, U, 3H]
    each (x W_ih + b_ih), `mask` [K, B, U] True at real positions, recurrent weights
    [N K, H, 3H] and biases [N K, 1, 3H] in direction order -> per pair of directions
    the outputs [K, B, U, 2H] (forward, then backward; zero at masked positions).

    `factors_at_once`: make the backward's factors for all time steps in a dozen
    operations after the loop (a GPU, where launches cost and bandwidth is plentiful)
    instead of a dozen per step while each step is in cache (a CPU, where whole-tensor
    passes leave the cache); None: at once off the CPU. The same numbers either way.

    `keep_factors`: the backward leaves its saved factors intact, so that the graph can
    be differentiated more than once (`retain_graph`, `gradcheck`); by default it writes
    the gradients over them (a backward through the graph a second time then fails
    autograd's check of modified saved tensors, never silently)."""
    if len(gates) % 2 or not gates:
        raise ValueError(f"directions come in (forward, backward) pairs, got {len(gates)}")
    at_once = mask.device.type != "cpu" if factors_at_once is None else factors_at_once
    if torch.is_grad_enabled() and any(t.requires_grad for t in (w_hh, b_hh, *gates)):
        return list(_Recurrence.apply(mask, w_hh, b_hh, at_once, keep_factors, *gates))
    with torch.autocast(mask.device.type, enabled=False):  # evaluation: nothing kept
        return list(_forward(None, mask, w_hh, b_hh, gates))


def _reversed(u: int, device: torch.device) -> torch.Tensor:
    return torch.arange(u - 1, -1, -1, device=device)


class _Recurrence(torch.autograd.Function):
    """Layout inside: time-major [U, N K, B, ...], odd directions reversed in time, so
    that step t of every direction is one contiguous slice."""

    @staticmethod
    def forward(
        ctx: Any,
        mask: torch.Tensor,
        w_hh: torch.Tensor,
        b_hh: torch.Tensor,
        at_once: bool,
        keep_factors: bool,
        *gates: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        ctx.device_type, ctx.keep_factors = mask.device.type, keep_factors
        with torch.autocast(ctx.device_type, enabled=False):
            return _forward(ctx, mask, w_hh, b_hh, gates, at_once)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        with torch.autocast(ctx.device_type, enabled=False):
            return _backward(ctx, grads)


def _forward(
    ctx: Any | None,
    mask: torch.Tensor,
    w_hh: torch.Tensor,
    b_hh: torch.Tensor,
    gates: Sequence[torch.Tensor],
    at_once: bool = False,
) -> tuple[torch.Tensor, ...]:
    n = len(gates)
    k, b, u, three_h = gates[0].shape
    h = three_h // 3
    dtype = torch.promote_types(torch.promote_types(gates[0].dtype, w_hh.dtype), torch.float32)
    rev = _reversed(u, mask.device)
    g = gates[0].new_empty(u, n, k, b, three_h, dtype=dtype)  # [U, N, K, B, 3H]
    for i, x in enumerate(gates):
        _reorder(g[:, i], x.permute(2, 0, 1, 3), i % 2 == 1, rev)
    m = mask.permute(2, 0, 1)  # [U, K, B]
    keep = torch.stack([m if i % 2 == 0 else m.index_select(0, rev) for i in range(n)], 1)
    g, keep = g.view(u, n * k, b, three_h), keep.view(u, n * k, b, 1)
    w, bias = w_hh.to(dtype), b_hh.to(dtype)
    states = g.new_zeros(u + 1, n * k, b, h)  # [U + 1, N K, B, H]: states[0] = 0
    factors = None  # what the backward multiplies by (`_factors`), kept in training
    if ctx is not None:
        factors = (g.new_empty(u, n * k, b, 4 * h), g.new_empty(u, n * k, b, h))
    whole = factors is not None and at_once  # every step's h W_hh + b_hh and activations kept
    recurrent = g.new_empty(u if whole else 1, n * k, b, three_h)
    acts = g.new_empty(u if whole else 1, n * k, b, three_h)  # r, z, n
    for t in range(u):
        gh, act = (recurrent[t], acts[t]) if whole else (recurrent[0], acts[0])
        torch.baddbmm(bias, states[t], w, out=gh)  # h W_hh + b_hh
        torch.add(g[t, ..., : 2 * h], gh[..., : 2 * h], out=act[..., : 2 * h]).sigmoid_()
        r, z, cand = act.split(h, dim=-1)
        torch.addcmul(g[t, ..., 2 * h :], r, gh[..., 2 * h :], out=cand).tanh_()
        # (1 - z) n + z h where the position is real; h carried over where it is not
        torch.where(keep[t], torch.lerp(cand, states[t], z), states[t], out=states[t + 1])
        if factors is not None and not whole:
            coef, carry = factors
            _factors(coef[t], carry[t], act, gh[..., 2 * h :], states[t], keep[t])
    if ctx is not None and factors is not None:
        if whole:
            _factors(*factors, acts, recurrent[..., 2 * h :], states[:-1], keep)
        ctx.save_for_backward(states, *factors, w, mask)
        ctx.dtypes = (w_hh.dtype, b_hh.dtype, [x.dtype for x in gates])
        ctx.at_once = at_once
    return _outputs(states[1:].view(u, n, k, b, h), mask, rev)


def _reorder(dest: torch.Tensor, src: torch.Tensor, backwards: bool, rev: torch.Tensor) -> None:
    """dest[t] = src[t], or src[U - 1 - t] for a backward direction (one copy each way
    between the callers' [K, B, U, ...] and the time-major layout)."""
    if backwards:  # (index_copy_ takes one dtype; copy_ converts by itself)
        dest.index_copy_(0, rev, src if src.dtype == dest.dtype else src.to(dest.dtype))
    else:
        dest.copy_(src)


def _factors(
    coef: torch.Tensor,
    carry: torch.Tensor,
    act: torch.Tensor,
    gh_n: torch.Tensor,
    prev: torch.Tensor,
    keep: torch.Tensor,
) -> None:
    """What the backward multiplies a step's state gradient by, for one step (while its
    activations are in cache) or for all steps at once (leading [U] on every tensor).

    With a_* the gates before their activation and h' = (1 - z) n + z h at a real position:
    dh'/da_n = (1 - z)(1 - n^2), dh'/da_z = (h - n) z (1 - z), dh'/da_r = dh'/da_n (h
    W_hn + b_hn) r (1 - r), and the recurrent n part's gradient is dh'/da_n r. Writes
    `coef` [..., N K, B, 4H] (for a_r, a_z, the recurrent n part, the input n part; zero
    at masked positions) and `carry` = dh'/dh [..., N K, B, H] (z where real, 1 where
    carried)."""
    h = prev.shape[-1]
    r, z, cand = act.split(h, dim=-1)
    c_r, c_z, c_hn, c_n = coef.split(h, dim=-1)
    kept = (1 - z).mul_(keep)  # (1 - z), 0 at masked positions
    torch.addcmul(kept, kept, torch.mul(cand, cand, out=c_n), value=-1, out=c_n)
    torch.sub(prev, cand, out=c_z).mul_(z).mul_(kept)
    torch.mul(c_n, r, out=c_hn)
    torch.mul(c_hn, gh_n, out=c_r)
    torch.addcmul(c_r, c_r, r, value=-1, out=c_r)
    torch.neg(kept, out=carry).add_(1.0)  # z where real, 1 where carried


def _outputs(
    states: torch.Tensor, mask: torch.Tensor, rev: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """[U, N, K, B, H] time-major states -> per pair [K, B, U, 2H], padding zeroed."""
    u, n, k, b, h = states.shape
    keep = mask.unsqueeze(-1).to(states.dtype)  # [K, B, U, 1]
    outs = []
    for i in range(0, n, 2):
        out = states.new_empty(k, b, u, 2 * h)
        across = out.permute(2, 0, 1, 3)  # [U, K, B, 2H] view
        across[..., :h].copy_(states[:, i])
        across[..., h:].index_copy_(0, rev, states[:, i + 1])
        outs.append(out.mul_(keep))
    return tuple(outs)


def _backward(ctx: Any, grads: Sequence[torch.Tensor]) -> tuple[torch.Tensor | None, ...]:
    states, coef, carry, w, mask = ctx.saved_tensors
    w_dtype, b_dtype, gate_dtypes = ctx.dtypes
    u, nk, b, h = states.shape[0] - 1, states.shape[1], states.shape[2], states.shape[3]
    n = len(gate_dtypes)
    rev = _reversed(u, mask.device)
    d_states = _state_grads(grads, mask, rev, (u, n, nk // n, b, h), states.dtype)
    # Per step: d(h W_hh) for r, z, n; d(x W_in). Unless the factors are kept, written
    # over them: a step's factors are read once, from memory (the forward wrote them long
    # before), and no second buffer their size is made and faulted in.
    steps = torch.empty_like(coef) if ctx.keep_factors else coef
    w_t = w.transpose(1, 2)  # [N K, 3H, H]
    d_w = torch.zeros_like(w)  # [N K, H, 3H]
    dh = states.new_zeros(nk, b, h)
    for t in range(u - 1, -1, -1):
        dh = dh + d_states[t]
        torch.mul(coef[t].view(nk, b, 4, h), dh.unsqueeze(2), out=steps[t].view(nk, b, 4, h))
        d_rec = steps[t, ..., : 3 * h]  # [N K, B, 3H]
        if not ctx.at_once:  # the step's share while it is in cache
            d_w.baddbmm_(states[t].transpose(1, 2), d_rec)
        dh = torch.baddbmm(dh * carry[t], d_rec, w_t)
    d_rec = steps[..., : 3 * h]  # [U, N K, B, 3H]
    if ctx.at_once:  # one product over all steps
        d_w = torch.einsum("tnbh,tnbg->nhg", states[:-1], d_rec)
    d_b = d_rec.sum(dim=(0, 2)).unsqueeze(1)  # [N K, 1, 3H]
    k = nk // n
    d_gates = []
    for i, dtype in enumerate(gate_dtypes):
        part = steps[:, i * k : (i + 1) * k]  # [U, K, B, 4H]
        d = part.new_empty(k, b, u, 3 * h)
        across = d.permute(2, 0, 1, 3)  # [U, K, B, 3H] view
        _reorder(across[..., : 2 * h], part[..., : 2 * h], i % 2 == 1, rev)
        _reorder(across[..., 2 * h :], part[..., 3 * h :], i % 2 == 1, rev)
        d_gates.append(d.to(dtype))
    return (None, d_w.to(w_dtype), d_b.to(b_dtype), None, None, *d_gates)


def _state_grads(
    grads: Sequence[torch.Tensor],
    mask: torch.Tensor,
    rev: torch.Tensor,
    shape: tuple[int, int, int, int, int],
    dtype: torch.dtype,
) -> torch.Tensor:
    """The outputs' gradients per pair [K, B, U, 2H] -> the states' [U, N K, B, H],
    time-major, odd directions reversed (zero at padding, whose outputs were zeroed)."""
    u, n, k, b, h = shape
    d = torch.empty(shape, dtype=dtype, device=mask.device)  # every direction written below
    keep = mask.unsqueeze(-1)  # [K, B, U, 1]
    for pair, grad in enumerate(grads):  # (autograd gives zeros for an unused output)
        grad = torch.where(keep, grad.to(dtype), 0.0).permute(2, 0, 1, 3)  # [U, K, B, 2H]
        d[:, 2 * pair] = grad[..., :h]
        d[:, 2 * pair + 1].index_copy_(0, rev, grad[..., h:])
    return d.view(u, n * k, b, h)
