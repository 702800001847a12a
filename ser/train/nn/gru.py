"""A bidirectional GRU over the real positions of each sequence, member-stacked.

Each direction steps through a sequence's real positions only: at a masked position the
state is carried over unchanged, so padding (or gaps) never changes the outputs, and the
backward direction starts from zeros at the last real position, as `nn.GRU` run on the
unpadded sequence. The gates are `nn.GRU`'s:

    r = σ(x W_ir + b_ir + h W_hr + b_hr)      z = σ(x W_iz + b_iz + h W_hz + b_hz)
    n = tanh(x W_in + b_in + r ⊙ (h W_hn + b_hn))      h' = (1 - z) ⊙ n + z ⊙ h

Several GRUs of equal sizes (the two modalities' branches) and both directions run as
one recurrence: one batched product per time step for all of them and all members
(`ser.train.nn.recurrence`, whose backward pass is written out).

>>> import torch
>>> from ser.train.nn.stacked import init_members
>>> gru = BiGRU(2, 3, 4)
>>> init_members(gru, [0, 1])
>>> x, mask = torch.randn(2, 5, 6, 3), torch.ones(2, 5, 6, dtype=torch.bool)
>>> [y.shape for y in BiGRU.run([gru], [x], mask)]  # M of [K, B, U, 2 H]
[torch.Size([2, 5, 6, 8])]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import cast

import torch
from torch import nn

from ser.train.nn.recurrence import gru_directions
from ser.train.nn.stacked import Stacked, fill, uniform


class GRUDirection(Stacked):
    """One direction of one layer: input weights [K, D, 3H], recurrent [K, H, 3H]."""

    def __init__(self, members: int, d_in: int, hidden: int) -> None:
        super().__init__(members)
        self.hidden = hidden
        self.w_ih = nn.Parameter(torch.empty(members, d_in, 3 * hidden))
        self.w_hh = nn.Parameter(torch.empty(members, hidden, 3 * hidden))
        self.b_ih = nn.Parameter(torch.empty(members, 1, 3 * hidden))
        self.b_hh = nn.Parameter(torch.empty(members, 1, 3 * hidden))

    def init_member(self, k: int, generator: torch.Generator) -> None:
        bound = 1.0 / math.sqrt(self.hidden)  # nn.GRU's
        for p in (self.w_ih, self.w_hh, self.b_ih, self.b_hh):
            fill(p, k, uniform(p.shape[1:], bound, generator))

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """x [K, B, U, D] -> the input part of the gates [K, B, U, 3H]."""
        k, b, u, d = x.shape
        return torch.baddbmm(self.b_ih, x.reshape(k, b * u, d), self.w_ih).view(k, b, u, -1)


class BiGRU(nn.Module):
    """Bidirectional GRU layers, H = hidden per direction; outputs [K, B, U, 2 H]."""

    def __init__(self, members: int, d_in: int, hidden: int, layers: int = 1) -> None:
        super().__init__()
        self.hidden, self.layers = hidden, layers
        self.directions = nn.ModuleList(
            GRUDirection(members, d_in if i < 2 else 2 * hidden, hidden) for i in range(2 * layers)
        )

    def direction(self, i: int) -> GRUDirection:
        """Layer i // 2's forward (i even) or backward (i odd) direction."""
        return cast(GRUDirection, self.directions[i])

    @staticmethod
    def run(
        grus: Sequence[BiGRU],
        xs: Sequence[torch.Tensor],
        mask: torch.Tensor,
        between: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """GRU m on xs[m] [K, B, U, D] for all m in one recurrence -> M of [K, B, U, 2 H];
        `mask` [K, B, U] is True at real positions.

        `between(h)` is applied to each layer's output before the next layer (dropout)."""
        hs = list(xs)
        for layer in range(grus[0].layers):
            if layer and between is not None:
                hs = [between(h) for h in hs]
            dirs = [g.direction(2 * layer + i) for g in grus for i in (0, 1)]
            gates = [d.inputs(h) for h, g in zip(hs, grus, strict=True) for d in
                     (g.direction(2 * layer), g.direction(2 * layer + 1))]  # fmt: skip
            w_hh = torch.cat([d.w_hh for d in dirs])  # [N K, H, 3H]
            b_hh = torch.cat([d.b_hh for d in dirs])  # [N K, 1, 3H]
            hs = gru_directions(gates, mask, w_hh, b_hh)
        return hs
