"""2-d convolution of stacked members: the members are channel groups of one conv.

Activations keep the layout [B, K, C, T, F] (members next to channels), so the conv is
one `conv2d` with `groups=K` over [B, K C, T, F] and needs no copies between layers.

>>> import torch
>>> from ser.train.nn.stacked import init_members
>>> conv = Conv2d(2, 1, 4)
>>> init_members(conv, [0, 1])
>>> conv(torch.randn(3, 2, 1, 5, 6)).shape  # [B, K, C_out, T, F]
torch.Size([3, 2, 4, 5, 6])
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ser.train.nn.stacked import Stacked, fill, uniform


class Conv2d(Stacked):
    """3x3 convolution, padding 1, per member: [B, K, C_in, T, F] -> [B, K, C_out, T, F].
    Initialised as `nn.Conv2d` (uniform, bound 1/sqrt(fan_in))."""

    def __init__(self, members: int, c_in: int, c_out: int) -> None:
        super().__init__(members)
        self.c_in, self.c_out = c_in, c_out
        self.weight = nn.Parameter(torch.empty(members, c_out, c_in, 3, 3))
        self.bias = nn.Parameter(torch.zeros(members, c_out))

    def init_member(self, k: int, generator: torch.Generator) -> None:
        bound = 1.0 / math.sqrt(self.c_in * 9)
        fill(self.weight, k, uniform(self.weight.shape[1:], bound, generator))
        fill(self.bias, k, uniform(self.bias.shape[1:], bound, generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, k, c, t, f = x.shape
        out = F.conv2d(
            x.reshape(b, k * c, t, f),
            self.weight.reshape(k * self.c_out, self.c_in, 3, 3),
            self.bias.reshape(-1),
            padding=1,
            groups=k,
        )  # [B, K C_out, T, F]
        return out.view(b, k, self.c_out, t, f)
