"""The member-stacked Bi-GRU (ser.train.nn.gru) against nn.GRU, gradients included."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ser.train.nn.gru import BiGRU
from ser.train.nn.stacked import init_members


def stock(gru: BiGRU, k: int) -> nn.GRU:
    """nn.GRU holding member k's weights of every layer and direction."""
    ref = nn.GRU(gru.direction(0).w_ih.shape[1], gru.hidden, num_layers=gru.layers,
                 batch_first=True, bidirectional=True)  # fmt: skip
    with torch.no_grad():
        for i in range(2 * gru.layers):
            d, suffix = gru.direction(i), f"l{i // 2}" + ("_reverse" if i % 2 else "")
            getattr(ref, f"weight_ih_{suffix}").copy_(d.w_ih[k].T)
            getattr(ref, f"weight_hh_{suffix}").copy_(d.w_hh[k].T)
            getattr(ref, f"bias_ih_{suffix}").copy_(d.b_ih[k, 0])
            getattr(ref, f"bias_hh_{suffix}").copy_(d.b_hh[k, 0])
    return ref


def test_two_stacked_grus_give_nn_grus_outputs_and_gradients() -> None:
    """Two GRUs (two modalities) of two members each, two layers, run as one
    recurrence: each member's outputs and input and weight gradients are nn.GRU's on
    its dialogs' real utterances (packed)."""
    k, b, u, d, hidden = 2, 3, 5, 4, 6
    grus = [BiGRU(k, d, hidden, layers=2) for _ in range(2)]
    for seed, gru in enumerate(grus):
        init_members(gru, [seed, seed + 10])
    lengths = torch.tensor([[5, 3, 1], [4, 5, 2]])  # [K, B]
    mask = torch.arange(u) < lengths.unsqueeze(-1)  # [K, B, U]
    xs = [torch.randn(k, b, u, d, requires_grad=True) for _ in grus]
    out = BiGRU.run(grus, xs, mask)
    weights = [torch.randn_like(o) * mask.unsqueeze(-1) for o in out]
    sum((o * w).sum() for o, w in zip(out, weights, strict=True)).backward()
    for gru, x, y, w in zip(grus, xs, out, weights, strict=True):
        for member in range(k):
            ref, x_ref = stock(gru, member), x[member].detach().requires_grad_()
            packed = pack_padded_sequence(x_ref, lengths[member], batch_first=True,
                                          enforce_sorted=False)  # fmt: skip
            want, _ = pad_packed_sequence(ref(packed)[0], batch_first=True, total_length=u)
            torch.testing.assert_close(y[member], want, atol=1e-5, rtol=1e-4)
            (want * w[member]).sum().backward()
            assert x.grad is not None and x_ref.grad is not None
            torch.testing.assert_close(x.grad[member], x_ref.grad, atol=1e-5, rtol=1e-4)
            for i in range(4):
                got = gru.direction(i).w_hh.grad
                suffix = f"l{i // 2}" + ("_reverse" if i % 2 else "")
                ref_grad = getattr(ref, f"weight_hh_{suffix}").grad
                assert got is not None and ref_grad is not None
                torch.testing.assert_close(got[member], ref_grad.T, atol=1e-5, rtol=1e-4)
