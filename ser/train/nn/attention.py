"""Multi-head attention and post-norm transformer layers, member-stacked.

The layers of `nn.TransformerEncoderLayer` / `nn.TransformerDecoderLayer` (post-norm,
ReLU, feed-forward width 4 d, dropout after each sublayer and inside the feed-forward)
with every weight [K, ...]. Attention runs in `scaled_dot_product_attention` with the
members folded into its batch. Unlike PyTorch's layers, the attention weights
themselves are not dropped: a fused attention kernel draws that mask from the global
generator, which would tie members together; the sublayer outputs still are.

A layer takes its keys' mask as `key_mask(keep)` makes it, once for all the layers
over the same keys (it costs a few operations).

>>> import torch
>>> layer = EncoderLayer(2, 8, 2)
>>> x, keep = torch.randn(2, 3, 5, 8), torch.ones(2, 3, 5, dtype=torch.bool)
>>> layer(x, key_mask(keep), Dropper(None, [0.1, 0.1]), ("batch", "t")).shape
torch.Size([2, 3, 5, 8])
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ser.train.nn.layers import keep_one
from ser.train.nn.noise import Axes, Dropper
from ser.train.nn.stacked import LayerNorm, Linear


def key_mask(keep: torch.Tensor) -> torch.Tensor:
    """`keep` [K, B, Tk] (True = a key to attend to) as attention's mask [K B, 1, 1, Tk];
    a row without any key attends to its first (`keep_one`)."""
    k, b = keep.shape[:2]
    return keep_one(keep).reshape(k * b, 1, 1, -1)


class Attention(nn.Module):
    """Multi-head attention of queries [K, B, Tq, d] over keys/values [K, B, Tk, d]."""

    def __init__(self, members: int, d: int, heads: int, cross: bool = False) -> None:
        super().__init__()
        if d % heads:
            raise ValueError(f"d {d} is not divisible by {heads} heads")
        self.members, self.d, self.heads, self.cross = members, d, heads, cross
        if cross:
            self.q = Linear(members, d, d, init="xavier")
            self.kv = Linear(members, d, 2 * d, init="xavier")
        else:
            self.qkv = Linear(members, d, 3 * d, init="xavier")
        self.out = Linear(members, d, d)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor | None, keys: torch.Tensor | None
    ) -> torch.Tensor:
        """`keys`: the keys' `key_mask` (None: attend to all); `memory` for cross."""
        k_, b, tq, d = x.shape
        if self.cross:
            if memory is None:
                raise ValueError("cross-attention needs a memory")
            q = self.q(x)  # [K, B, Tq, d]
            key, value = self.kv(memory).chunk(2, dim=-1)  # [K, B, Tk, d] each
        else:
            q, key, value = self.qkv(x).chunk(3, dim=-1)  # [K, B, T, d] each
        q, key, value = (self._heads(t) for t in (q, key, value))  # [K B, h, T, d/h]
        out = F.scaled_dot_product_attention(q, key, value, attn_mask=keys)  # [K B, h, Tq, d/h]
        out = out.transpose(1, 2).reshape(k_, b, tq, d)  # heads concatenated
        return self.out(out)  # [K, B, Tq, d]

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        k_, b, n, d = t.shape
        return t.reshape(k_ * b, n, self.heads, d // self.heads).transpose(1, 2)


class FeedForward(nn.Module):
    """Linear(d, 4d) -> ReLU -> Dropout -> Linear(4d, d)."""

    def __init__(self, members: int, d: int) -> None:
        super().__init__()
        self.up = Linear(members, d, 4 * d)
        self.down = Linear(members, 4 * d, d)

    def forward(self, x: torch.Tensor, drop: Dropper, axes: Axes) -> torch.Tensor:
        return self.down(drop(torch.relu(self.up(x)), axes))


class EncoderLayer(nn.Module):
    """x = norm1(x + drop(selfattn(x))); x = norm2(x + drop(ff(x)))."""

    def __init__(self, members: int, d: int, heads: int) -> None:
        super().__init__()
        self.attn = Attention(members, d, heads)
        self.ff = FeedForward(members, d)
        self.norm1, self.norm2 = LayerNorm(members, d), LayerNorm(members, d)

    def forward(
        self, x: torch.Tensor, keys: torch.Tensor, drop: Dropper, axes: Axes
    ) -> torch.Tensor:
        x = self.norm1(x + drop(self.attn(x, None, keys), axes))  # [K, B, T, d]
        return self.norm2(x + drop(self.ff(x, drop, axes), axes))


class DecoderLayer(nn.Module):
    """Self-attention over the queries, cross-attention to the memory, feed-forward."""

    def __init__(self, members: int, d: int, heads: int) -> None:
        super().__init__()
        self.self_attn = Attention(members, d, heads)
        self.cross_attn = Attention(members, d, heads, cross=True)
        self.ff = FeedForward(members, d)
        self.norm1, self.norm2, self.norm3 = (LayerNorm(members, d) for _ in range(3))

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor, drop: Dropper
    ) -> torch.Tensor:
        axes: Axes = ("batch",)  # queries: a fixed number per sample
        x = self.norm1(x + drop(self.self_attn(x, None, None), axes))  # [K, B, L, d]
        x = self.norm2(x + drop(self.cross_attn(x, memory, keys), axes))
        return self.norm3(x + drop(self.ff(x, drop, axes), axes))
