"""Small blocks shared by the model families, all mask-aware.

Masks follow `ser.train.batch`: `True` = a real frame / token / utterance. PyTorch's
attention modules want the opposite (`True` = ignore), so callers pass `~keep_one(mask)`.

>>> import torch
>>> x = torch.tensor([[[1.0], [3.0], [100.0]]])  # [B=1, T=3, D=1]
>>> mask = torch.tensor([[True, True, False]])
>>> masked_mean(x, mask)
tensor([[2.]])
"""

from __future__ import annotations

import math

import torch
from torch import nn


def keep_one(mask: torch.Tensor) -> torch.Tensor:
    """`mask` [B, T] with position 0 switched on in rows that have no True at all.

    Attention over a row whose keys are all masked gives NaN (softmax of all -inf), and
    NaN poisons gradients even where the output is ignored afterwards. Callers zero the
    values at such positions, so the one key let through carries nothing.
    """
    empty = ~mask.any(dim=1)  # [B]
    if not bool(empty.any()):
        return mask
    fixed = mask.clone()  # [B, T]
    fixed[:, 0] |= empty
    return fixed


def ensure_length(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad a zero-length batch ([B, 0, D]) to length 1 (all masked) so attention works."""
    if x.shape[1] > 0:
        return x, mask
    return x.new_zeros(x.shape[0], 1, x.shape[2]), mask.new_zeros(mask.shape[0], 1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `x` [B, T, D] over real positions of `mask` [B, T]; zeros for empty rows."""
    weights = mask.to(x.dtype).unsqueeze(-1)  # [B, T, 1]
    total = (x * weights).sum(dim=1)  # [B, D]
    count = weights.sum(dim=1).clamp(min=1.0)  # [B, 1]
    return total / count  # [B, D]


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
        scores = self.score(x).squeeze(-1)  # [B, T]
        if mask is not None:
            scores = scores.masked_fill(~keep_one(mask), float("-inf"))
        weights = torch.softmax(scores, dim=1)  # [B, T]
        return torch.einsum("bt,btd->bd", weights, x)  # [B, D]


class FrameScale(nn.Module):
    """MSMSER's self-attention module: a 2-layer MLP + sigmoid gives each frame a scale in
    (0, 1) that multiplies the frame (the hidden width is not in the paper: we use `dim`)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.sigmoid(self.mlp(x))  # [B, T, 1]
        return x * scale  # [B, T, D]


def mlp(d_in: int, d_hidden: int, d_out: int, dropout: float) -> nn.Sequential:
    """Linear -> ReLU -> Dropout -> Linear: the 2-layer classifier heads."""
    return nn.Sequential(
        nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d_hidden, d_out)
    )
