"""Several bidirectional GRUs over the same padded dialogs, run in lockstep.

The fusion study runs one Bi-GRU per modality over short sequences (a dialog's ~45
utterances, 50 units per direction). PyTorch's CPU `nn.GRU` records a dozen small
autograd nodes per time step and direction, so a training step spends its time in op
dispatch, not arithmetic. Here the K = 2 x (number of GRUs) independent recurrences
(every direction of every GRU) advance together:

- the input projections of all time steps and both directions are one `linear` per GRU
  and layer (`linear.py`: oneDNN on the CPU);
- each direction reads its own sequence's projections in its own time order through a
  precomputed gather index (the backward direction walks each dialog's real utterances
  from its last to its first), so padding and gaps are never stepped over before real
  utterances;
- one Python loop steps all K hidden states with one `baddbmm` over stacked weights
  [K, H, 3H], and `_Recurrence` backpropagates through it by hand (a few fused ops per
  step instead of autograd's per-op nodes).

That is PyTorch's path, on any device. On a CPU with AVX-512 or AVX2, float32 layers run
in a C kernel instead (`gru_native.py`: gathers, steps and scatters in one call each
way, ~2x faster for a training step's Bi-GRU); same buffers, same results.

The weights stay in ordinary `nn.GRU` modules, so models keep their parameter names
and initialisation; the result equals `nn.GRU` on the real utterances (tested to 1e-5,
forward and gradients). Gate equations as in PyTorch's documentation:

    r = sigma(W_ir x + b_ir + W_hr h + b_hr)
    z = sigma(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

>>> import torch
>>> from torch import nn
>>> gru = nn.GRU(4, 3, batch_first=True, bidirectional=True)
>>> x = torch.randn(1, 2, 5, 4)  # [M=1 GRU, B=2 dialogs, U=5, D=4]
>>> mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
>>> out, h_n = lockstep_bigru([gru], x, mask)
>>> out.shape, h_n.shape  # [M, B, U, 2H], [M, layers * 2, B, H]
(torch.Size([1, 2, 5, 6]), torch.Size([1, 2, 2, 3]))
>>> torch.allclose(out[0, 1, :3], gru(x[0, 1:, :3])[0][0], atol=1e-6)
True
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from ser.train.models.gru_native import native_layer
from ser.train.models.linear import linear
from ser.train.models.native import kernel_for, kernels


@dataclass(frozen=True)
class TimeIndex:
    """Where each direction's time steps come from and where its outputs go back to.

    T = U steps per direction: a dialog's real utterances first, in the direction's
    order. `src[(d * T + t) * B + b]`: the row of the input projections
    `proj.view(M, B * U * 2, 3H)` (utterance row * 2 + d) that direction d (0 forward,
    1 backward) reads at step t of dialog b; steps past the dialog's end read a real
    utterance (one of the dialog, else of the batch), so whatever the padding
    holds, their (unused) states stay finite and send no NaN into real steps' gradients.
    The recurrence returns its states from h_0 = 0 on, [K, T + 1, B, H]:
    `back[(b * U + u) * 2 + d]` is the row of `states.view(M, 2 * (T + 1) * B, H)` for
    position u of dialog b and direction d, an h_0 row (zeros) where u is not real;
    `last[d * B + b]` the state after the dialog's last real step (h_0 when empty).
    Flat rows let `index_select` (a row copy; its backward adds rows) do all reordering.
    """

    src: torch.Tensor  # [2 * T * B] long
    back: torch.Tensor  # [B * U * 2] long
    last: torch.Tensor  # [2 * B] long

    @staticmethod
    def of(mask: torch.Tensor) -> TimeIndex:
        """From `mask` [B, U] (True = real utterance; gaps allowed). No host sync."""
        b, u = mask.shape
        length = mask.sum(dim=1, keepdim=True)  # [B, 1]
        steps = torch.arange(u, device=mask.device).unsqueeze(0)  # [1, U]
        dialog = torch.arange(b, device=mask.device).unsqueeze(1)  # [B, 1]
        # Real positions first, in dialog order: order[b, t] is dialog b's t-th real one.
        order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)  # [B, U]
        reverse = torch.where(steps < length, length - 1 - steps, steps)  # [B, U]
        rows = dialog * u + torch.stack([order, order.gather(1, reverse)])  # [2, B, T]
        first_in_batch = mask.flatten().to(torch.uint8).argmax()  # 0 if none is real
        fallback = torch.where(length > 0, rows[0, :, :1], first_in_batch)  # [B, 1]
        src = torch.where(steps < length, rows, fallback).transpose(1, 2)  # [2, T, B]
        direction = torch.arange(2, device=mask.device)  # [2]
        src = src * 2 + direction[:, None, None]  # rows of the projections
        rank = torch.cumsum(mask, dim=1) - 1  # [B, U] forward step of a real position
        step = torch.stack([rank, length - 1 - rank], dim=-1) + 1  # [B, U, 2], 0 is h_0
        step = torch.where(mask.unsqueeze(-1), step, 0)
        back = (direction * (u + 1) + step) * b + dialog.unsqueeze(-1)  # [B, U, 2]
        last = (direction.unsqueeze(1) * (u + 1) + length.T) * b + dialog.T  # [2, B]
        return TimeIndex(src.reshape(-1), back.reshape(-1), last.reshape(-1))


def lockstep_bigru(
    grus: Sequence[nn.GRU], x: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run M bidirectional, batch-first GRUs of equal shape on x[m], all in one loop.

    x: [M, B, U, D]; mask: [B, U], True = real utterance. Returns (out, h_n) as `nn.GRU`
    on each dialog's real utterances: out [M, B, U, 2H] (forward | backward, 0 at
    positions that are not real), h_n [M, layers * 2, B, H] (0 for empty dialogs).
    Padding in x is never read. Dropout between layers follows each GRU's `dropout` in
    training mode.
    """
    first = grus[0]
    if not all(g.bidirectional and g.batch_first for g in grus):
        raise ValueError("lockstep_bigru needs bidirectional, batch-first GRUs")
    if any(
        (g.input_size, g.hidden_size, g.num_layers, g.bias)
        != (first.input_size, first.hidden_size, first.num_layers, first.bias)
        for g in grus
    ):
        raise ValueError("lockstep_bigru needs GRUs of equal sizes")
    # The recurrence runs in the weights' dtype (below): they decide the path.
    kernel = kernels() if kernel_for(*first.all_weights[0]) else None
    path = kernel if kernel is not None else TimeIndex.of(mask)
    out, finals = x, []
    for layer in range(first.num_layers):
        if layer > 0 and first.dropout > 0:
            out = F.dropout(out, first.dropout, first.training)
        out, h_n = _bigru_layer(grus, layer, out, mask, path)  # [M, B, U, 2H], [M, 2, B, H]
        finals.append(h_n)
    return out, torch.cat(finals, dim=1)


def _bigru_layer(
    grus: Sequence[nn.GRU],
    layer: int,
    x: torch.Tensor,
    mask: torch.Tensor,
    path: ctypes.CDLL | TimeIndex,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer, in the C kernel (`path` the library) or in PyTorch's ops (`path` the
    mask's TimeIndex)."""
    m, b, u, _ = x.shape
    h = grus[0].hidden_size
    w_ih, b_ih, w_hh, b_hh = _stacked_weights(grus, layer, x)
    # Both directions' input projections of every utterance.
    projs = [linear(x_m, w, bias) for x_m, w, bias in zip(x, w_ih, b_ih, strict=True)]
    # The recurrence runs in the weights' dtype whatever autocast says: rounding errors of
    # bf16/fp16 hidden states would compound over a dialog's steps (and its in-place
    # buffers must agree in dtype with the weights).
    with torch.autocast(x.device.type, enabled=False):
        projs = [p.to(w_hh.dtype) for p in projs]  # M of [B, U, 2*3H]
        if not isinstance(path, TimeIndex):
            return native_layer(path, projs, mask, w_hh, b_hh)
        proj = torch.stack(projs)  # [M, B, U, 2*3H]
        # Each direction's rows in its own time order.
        gi = proj.view(m, b * u * 2, 3 * h).index_select(1, path.src)  # [M, 2*T*B, 3H]
        gi = gi.view(2 * m, u, b, 3 * h)  # [K, T, B, 3H]
        states = _Recurrence.apply(gi, w_hh, b_hh)  # [K, T+1, B, H]
    states = states.view(m, 2 * (u + 1) * b, h)  # [M, 2*(T+1)*B, H]
    out = states.index_select(1, path.back).view(m, b, u, 2 * h)  # [M, B, U, 2H]
    h_n = states.index_select(1, path.last).view(m, 2, b, h)  # [M, 2, B, H]
    return out, h_n


def _stacked_weights(
    grus: Sequence[nn.GRU], layer: int, like: torch.Tensor
) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Each GRU's input weights for `linear`, both directions (forward first), gates
    n | z | r in each: w_ih [2*3H, D], b_ih [2*3H], one of each per GRU; and the recurrent
    weights of all K = 2M directions (direction fastest), transposed for `bmm`, gates
    z | r | n: w_hh [K, H, 3H], b_hh [K, 1, 3H]. Biases are 0 if bias=False. These are
    the orders `_Recurrence` wants."""
    h = grus[0].hidden_size
    zero = like.new_zeros(3 * h)
    w_ih, b_ih, w_hh, b_hh = [], [], [], []
    r, z, n = (torch.arange(i * h, (i + 1) * h, device=like.device) for i in range(3))
    nzr, zrn = torch.cat([n, z, r]), torch.cat([z, r, n])
    directions = (f"_l{layer}", f"_l{layer}_reverse")
    for gru in grus:
        w = [getattr(gru, "weight_ih" + s) for s in directions]  # [3H, D] gates r | z | n
        bias = [getattr(gru, "bias_ih" + s) if gru.bias else zero for s in directions]
        w_ih.append(torch.cat(w).view(2, 3 * h, -1).index_select(1, nzr).flatten(0, 1))
        b_ih.append(torch.cat(bias).view(2, 3 * h).index_select(1, nzr).flatten())
        for suffix in directions:
            w_hh.append(getattr(gru, "weight_hh" + suffix).t())  # [H, 3H]
            b_hh.append(getattr(gru, "bias_hh" + suffix) if gru.bias else zero)
    return (
        w_ih,
        b_ih,
        torch.stack(w_hh).index_select(-1, zrn),
        torch.stack(b_hh).index_select(-1, zrn).unsqueeze(1),
    )


class _Recurrence(torch.autograd.Function):
    """K independent GRU recurrences from h_0 = 0, given their input projections.

    gi [K, T, B, 3H] (W_i x + b_i, gates n | z | r), w_hh [K, H, 3H] (W_h transposed,
    gates z | r | n), b_hh [K, 1, 3H] (z | r | n) -> states [K, T + 1, B, H], h_0 first.
    The gate orders (not nn.GRU's r | z | n) let the backward pass fill both gradients
    with one multiplication per step and no copies after. Each step works in place on
    buffers filled for all steps at once, with few ops: autograd would record a dozen
    nodes per step, and op dispatch is what a step costs at these sizes.
    """

    @staticmethod
    def forward(ctx: Any, gi: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor) -> torch.Tensor:
        k, t_max, b, three_h = gi.shape
        h = three_h // 3
        # pre[t] = (W_iz x + b_iz + b_hz | W_ir x + b_ir + b_hr | b_hn); each step adds W_h h.
        pre = gi.new_empty(t_max, k, b, 3 * h)  # [T, K, B, 3H]
        torch.add(gi[..., h:].transpose(0, 1), b_hh[..., : 2 * h], out=pre[..., : 2 * h])
        pre[..., 2 * h :] = b_hh[..., 2 * h :]
        # tanh(a) = 2 sigmoid(2a) - 1, and CPU sigmoid is ~5x faster than tanh; so the
        # buffer for n starts as 2 (W_in x + b_in).
        n = gi.new_empty(t_max, k, b, h)  # [T, K, B, H]
        torch.mul(gi[..., :h].transpose(0, 1), 2.0, out=n)
        states = gi.new_zeros(k, t_max + 1, b, h)  # [K, T+1, B, H], h_0 = 0 first
        # Unbound once: indexing per step would cost as much as the arithmetic.
        pre_, n_, h_ = pre.unbind(0), n.unbind(0), states.unbind(1)
        z_, zr_, r_, hn_ = (pre[..., s].unbind(0) for s in _slices(h))
        minus_one = gi.new_full((), -1.0)  # a tensor: a Python scalar costs ~1 us an op
        # A step's elementwise ops are too small for PyTorch to split across threads;
        # its product (K of B x H x 3H) is split, ~1.6x faster on two cores than on one.
        for t in range(t_max):
            pre_[t].baddbmm_(h_[t], w_hh)  # z, r pre-activations | W_hn h + b_hn
            zr_[t].sigmoid_()
            # n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
            n_[t].addcmul_(r_[t], hn_[t], value=2.0).sigmoid_()
            torch.add(minus_one, n_[t], alpha=2.0, out=n_[t])
            torch.lerp(n_[t], h_[t], z_[t], out=h_[t + 1])  # (1 - z) n + z h
        ctx.save_for_backward(w_hh, states, pre, n)
        return states

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
        w_hh, states, pre, n = ctx.saved_tensors
        t_max, k, b, h = n.shape
        z, zr, r, hn = (pre[..., s] for s in _slices(h))  # [T, K, B, H or 2H]
        # Every gradient a step passes on is dL/dh_t times a factor that does not depend
        # on it: those factors come first, for all steps at once, so that a step is one
        # multiplication, then dL/dh_{t-1}.
        d_sigmoid = torch.addcmul(zr, zr, zr, value=-1.0)  # z (1 - z) | r (1 - r)
        d_tanh = torch.addcmul(n.new_ones(()), n, n, value=-1.0)  # 1 - n^2
        # dL/d(n_pre | z_pre | r_pre | W_hn h + b_hn) = dL/dh_t * factor: the first three
        # are the gradient of W_i x + b_i (gates n | z | r), the last three that of
        # W_h h + b_h (gates z | r | n); W_hn h + b_hn sits inside r * (...).
        factor = n.new_empty(t_max, k, b, 4, h)  # [T, K, B, 4, H]
        dn = torch.addcmul(d_tanh, z, d_tanh, value=-1.0, out=factor[..., 0, :])  # (1-z)(1-n^2)
        torch.sub(states[:, :-1].transpose(0, 1), n, out=factor[..., 1, :])
        factor[..., 1, :] *= d_sigmoid[..., :h]  # (h_{t-1} - n) z (1 - z)
        torch.mul(hn, d_sigmoid[..., h:], out=factor[..., 2, :]).mul_(dn)  # via r
        torch.mul(r, dn, out=factor[..., 3, :])  # via r * (W_hn h + b_hn)
        slots = grad.new_empty(k, t_max, b, 4, h)
        slot_ = slots.unbind(1)  # [K, B, 4, H] each
        d_gh_ = slots[:, :, :, 1:].flatten(-2).unbind(1)  # [K, B, 3H] each
        g_ = grad[:, 1:].unbind(1)  # h_0 is no input: its gradient is dropped
        z_, factor_ = z.unbind(0), factor.unbind(0)
        w_t = w_hh.transpose(1, 2).contiguous()  # [K, 3H, H]
        dh = g_[t_max - 1]  # dL/dh_t, through the output and later steps
        for t in range(t_max - 1, -1, -1):
            torch.mul(dh.unsqueeze(2), factor_[t], out=slot_[t])
            if t > 0:
                dh = torch.addcmul(g_[t - 1], dh, z_[t]).baddbmm_(d_gh_[t], w_t)
        # Weight and bias gradients sum over steps and dialogs: one bmm, on views.
        d_gh = slots[:, :, :, 1:].flatten(-2).view(k, t_max * b, 3 * h)  # [K, T*B, 3H]
        prev = states[:, :-1].reshape(k, t_max * b, h)  # [K, T*B, H] h_{t-1}
        d_w = torch.bmm(prev.transpose(1, 2), d_gh)  # [K, H, 3H]
        d_gi = slots[:, :, :, :3].flatten(-2)  # [K, T, B, 3H]
        return d_gi, d_w, d_gh.sum(dim=1, keepdim=True)


def _slices(h: int) -> tuple[slice, slice, slice, slice]:
    """Slices of a [..., 3H] tensor of gates z | r | n: z, z | r, r, n."""
    return slice(0, h), slice(0, 2 * h), slice(h, 2 * h), slice(2 * h, 3 * h)
