"""Dropout with a cheaper mask on the CPU.

PyTorch's CPU dropout draws one Bernoulli (~6 ns) or, as `rand_like`, one float (~2 ns)
per element from its Mersenne Twister, and the fusion study's dialog models drop ~0.6 M
activations per training step. Here an entry is dropped when a uniform 15-bit integer
u in [0, 32768) is below round(p * 32768), so the drop probability is p rounded to a
multiple of 2^-15 (0.2 -> 0.2000122), and kept entries are scaled by 1 / (1 - that
probability), which keeps the expectation exact. Where the C kernels are built
(native.py) the integers come from `dropout_kernel.c` (xoshiro256++ streams seeded by
one draw of PyTorch's generator: ~0.1 ns an entry); elsewhere every 64-bit draw of
PyTorch's generator makes four: its four 16-bit lanes, low 15 bits each (the generator
leaves the top bit of an int64 at 0, so that bit is never used). Either way masks follow
`torch.manual_seed`. On other devices this is `F.dropout`.

>>> import torch
>>> _ = torch.manual_seed(0)
>>> x = torch.ones(100_000)
>>> y = dropout(x, 0.2, training=True)
>>> round(float((y == 0).float().mean()), 2), round(float(y.mean()), 2)
(0.2, 1.0)
>>> dropout(x, 0.2, training=False) is x
True
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ser.train.models.native import kernels

LANE_VALUES = 1 << 15  # uniform values per 16-bit lane (its low 15 bits)


class Dropout(nn.Dropout):
    """`nn.Dropout` drawing its mask with `dropout` below."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Zero each entry of `x` with probability ~p (see the module doc), scale the rest."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, training)
    return x * keep_factors(x.shape, p, x.dtype)


def keep_factors(shape: torch.Size | tuple[int, ...], p: float, dtype: torch.dtype) -> torch.Tensor:
    """A CPU dropout mask of `shape`: 0 with probability ~p, else 1 / (1 - p) (as rounded
    in the module doc), for code that applies it itself."""
    cut = round(p * LANE_VALUES)
    if cut >= LANE_VALUES:
        return torch.zeros(shape, dtype=dtype)
    scale = LANE_VALUES / (LANE_VALUES - cut)
    kernel = kernels() if dtype == torch.float32 else None
    if kernel is not None:
        keep = torch.empty(shape, dtype=dtype)
        seed = int(torch.randint(0, 2**62, ()))  # from PyTorch's generator: follows its seed
        kernel.ser_dropout_keep(keep.numel(), seed, cut, scale, keep.data_ptr())
        return keep
    n = math.prod(shape)
    draws = torch.empty((n + 3) // 4, dtype=torch.int64).random_()  # [ceil(N / 4)]
    lanes = draws.view(torch.int16)[:n].view(shape).bitwise_and(LANE_VALUES - 1)
    return lanes.to(dtype).ge_(cut).mul_(scale)  # 0 or 1/(1-p)
