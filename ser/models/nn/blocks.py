"""Small mask-aware blocks: mask helpers, attention pooling, frame scaling, the MLP head.

Masks follow `ser.models.batch`: True = a real frame / token / utterance. The helpers are
generic over leading dimensions ([..., T, D] with a mask [..., T]); the modules take one
batch, [B, T, D] or [B, D].

>>> import torch
>>> x = torch.tensor([[[1.0], [3.0], [100.0]]])  # [B=1, T=3, D=1]
>>> masked_mean(x, torch.tensor([[True, True, False]]))
tensor([[2.]])
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn


class Dropout(nn.Dropout):
    """`nn.Dropout`, with its mask drawn as `rand_like(x) >= p` on the CPU: the same
    distribution, the mask scaled once as torch's CPU dropout scales its own, at ~1.45x
    the speed of `bernoulli_` there. Elsewhere torch's own fused kernel. Per member under
    `vmap`.

    >>> out = Dropout(0.25)(torch.ones(100_000))
    >>> round((out > 0).float().mean().item(), 2), round(out.max().item(), 4)  # kept, 1 / 0.75
    (0.75, 1.3333)
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not 0.0 < self.p < 1.0 or x.device.type != "cpu":
            return super().forward(x)
        keep = torch.rand_like(x, dtype=torch.float32) >= self.p  # True with probability 1 - p
        return x * (keep.to(x.dtype) * (1.0 / (1.0 - self.p)))


def keep_one(mask: torch.Tensor) -> torch.Tensor:
    """`mask` [..., T] with position 0 switched on in rows that have no True at all: an
    all-masked row's attention is NaN, which poisons gradients even where the output is
    ignored; callers zero the values there, so the key let through carries nothing."""
    empty = ~mask.any(dim=-1, keepdim=True)  # [..., 1]
    first = torch.arange(mask.shape[-1], device=mask.device) == 0  # [T]
    return mask | (first & empty)


def ensure_length(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad a zero-length batch ([..., 0, D]) to length 1 (all masked) so attention works."""
    if x.shape[-2] > 0:
        return x, mask
    return x.new_zeros(*x.shape[:-2], 1, x.shape[-1]), mask.new_zeros(*mask.shape[:-1], 1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `x` [..., T, D] over real positions of `mask` [..., T]; zeros for empty rows."""
    weights = mask.to(x.dtype).unsqueeze(-1)  # [..., T, 1]
    total = (x * weights).sum(dim=-2)  # [..., D]
    count = weights.sum(dim=-2).clamp(min=1.0)  # [..., 1]
    return total / count


def sinusoidal_positions(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """Vaswani et al.'s fixed positional encodings, [length, dim] (any length, any dim)."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)  # [T, 1]
    half = torch.arange(0, dim, 2, device=device, dtype=torch.float32)  # [ceil(D/2)]
    freq = torch.exp(-math.log(10000.0) * half / dim)  # [ceil(D/2)]
    angles = position * freq  # [T, ceil(D/2)]
    pe = torch.zeros(length, dim, device=device)  # [T, D]
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles[:, : dim // 2])
    return pe


class AttentionPool(nn.Module):
    """Self-attention pooling: a learned score per position, softmax over real positions,
    weighted sum (Chen & Zhao 2020, the pooling MSMSER cites)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T, D], mask [B, T] (None: every position is real) -> [B, D]."""
        scores = self.score(x).squeeze(-1)  # [B, T]
        if mask is not None:
            scores = scores.masked_fill(~keep_one(mask), float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(x.dtype)  # [B, T]
        return (weights.unsqueeze(-2) @ x).squeeze(-2)  # [B, D]


class FrameScale(nn.Module):
    """MSMSER's self-attention module: a 2-layer MLP + sigmoid gives each frame a scale in
    (0, 1) that multiplies the frame (the hidden width is not in the paper: we use `dim`)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, D] -> [B, T, D]."""
        scale = torch.sigmoid(self.out(torch.relu(self.hidden(x))))  # [B, T, 1]
        return x * scale


class MLP(nn.Module):
    """Linear -> `act` (ReLU) -> Dropout -> Linear: the 2-layer classifier heads
    ([..., d_in] -> [..., d_out])."""

    def __init__(
        self,
        d_in: int,
        d_hidden: int,
        d_out: int,
        dropout: float,
        act: Callable[[torch.Tensor], torch.Tensor] = torch.relu,
    ) -> None:
        super().__init__()
        self.hidden = nn.Linear(d_in, d_hidden)
        self.drop = Dropout(dropout)
        self.out = nn.Linear(d_hidden, d_out)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.act(self.hidden(x))))
