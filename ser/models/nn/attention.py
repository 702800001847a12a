"""Multi-head attention and post-norm transformer layers on `scaled_dot_product_attention`.

The maths of `nn.TransformerEncoderLayer` / `nn.TransformerDecoderLayer` with
`batch_first=True, norm_first=False` (tested with copied weights), written on SDPA because
`nn.MultiheadAttention` does not run under `torch.func.vmap`. Unlike PyTorch's layers, the
attention weights are not dropped: SDPA's `dropout_p` draws inside the fused kernel,
per member under vmap only as far as its batching rule makes it, which no CPU test can
check. A layer takes its keys' mask as `key_mask(keep)` makes it, once for all layers.

>>> import torch
>>> layer = EncoderLayer(8, 2, dropout=0.1)
>>> x, keep = torch.randn(3, 5, 8), torch.ones(3, 5, dtype=torch.bool)
>>> layer(x, key_mask(keep)).shape
torch.Size([3, 5, 8])
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.attention import SDPBackend

from ser.models.nn.blocks import Dropout, keep_one

#: The backends members stacked under vmap may attend on: not the memory-efficient
#: kernel, whose backward under vmap fails on CUDA ("LSE is not correctly aligned
#: (strideH)"; torch 2.11 on an H100 for 5 and 15 members at 173 and 512 frames, fp32 and
#: bf16), so stacked members attend on the math kernel (benchmarks/README.md,
#: "What should a GPU run measure?").
STACKED_BACKENDS = [
    SDPBackend.FLASH_ATTENTION,
    SDPBackend.MATH,
    SDPBackend.CUDNN_ATTENTION,
    SDPBackend.OVERRIDEABLE,
]


def key_mask(keep: torch.Tensor) -> torch.Tensor:
    """`keep` [B, Tk] (True = a key to attend to) as attention's mask [B, 1, 1, Tk]
    (broadcast over heads and queries); a row without any key attends to its first
    (`keep_one`)."""
    return keep_one(keep)[..., None, None, :]


def _projection(d_in: int, d_out: int) -> nn.Linear:
    """Xavier-uniform weight, zero bias: `nn.MultiheadAttention`'s in-projection."""
    linear = nn.Linear(d_in, d_out)
    nn.init.xavier_uniform_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear


class Attention(nn.Module):
    """Multi-head attention of queries [B, Tq, d] over keys/values [B, Tk, d]."""

    def __init__(self, d: int, heads: int, cross: bool = False) -> None:
        super().__init__()
        self.heads, self.cross = heads, cross  # d divisible by heads: the config checks it
        if cross:  # queries from x, keys and values from the memory
            self.q = _projection(d, d)
            self.kv = _projection(d, 2 * d)
        else:
            self.qkv = _projection(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor | None = None, keys: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`memory` [B, Tk, d] for cross-attention; `keys`: the keys' `key_mask` (None:
        attend to all) -> [B, Tq, d]."""
        if self.cross:
            if memory is None:
                raise ValueError("cross-attention needs a memory")
            q = self.q(x)  # [B, Tq, d]
            k, v = self.kv(memory).chunk(2, dim=-1)  # [B, Tk, d] each
        else:
            q, k, v = self.qkv(x).chunk(3, dim=-1)  # [B, T, d] each
        # Heads split off: [B, T, d] -> [B, h, T, d/h].
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(-3, -2) for t in (q, k, v))
        # q, k, v already carry autocast's dtype from the projections; autocast's own cast
        # around SDPA under vmap breaks its backward in bf16 on CUDA ("expected input and
        # grad types to match": benchmarks/README.md), so SDPA takes them as they are.
        with torch.autocast(q.device.type, enabled=False):
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=keys)  # [B, h, Tq, d/h]
        out = out.transpose(-3, -2).flatten(-2)  # [B, Tq, d], heads concatenated
        return self.out(out)


class FeedForward(nn.Module):
    """Linear(d, 4d) -> ReLU -> Dropout -> Linear(4d, d)."""

    def __init__(self, d: int, dropout: float) -> None:
        super().__init__()
        self.up = nn.Linear(d, 4 * d)
        self.drop = Dropout(dropout)
        self.down = nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.drop(torch.relu(self.up(x))))


class EncoderLayer(nn.Module):
    """x = norm1(x + drop(selfattn(x))); x = norm2(x + drop(ff(x)))."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attn = Attention(d, heads)
        self.ff = FeedForward(d, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.drop1, self.drop2 = Dropout(dropout), Dropout(dropout)

    def forward(self, x: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """x [B, T, d], keys: `key_mask` of x's frames -> [B, T, d]."""
        x = self.norm1(x + self.drop1(self.attn(x, None, keys)))
        return self.norm2(x + self.drop2(self.ff(x)))


class DecoderLayer(nn.Module):
    """Self-attention over the queries, cross-attention to the memory, feed-forward."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = Attention(d, heads)
        self.cross_attn = Attention(d, heads, cross=True)
        self.ff = FeedForward(d, dropout)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.drop1, self.drop2, self.drop3 = (Dropout(dropout) for _ in range(3))

    def forward(self, x: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """x [B, L, d] queries (all real), memory [B, S, d], keys: its `key_mask` -> [B, L, d]."""
        x = self.norm1(x + self.drop1(self.self_attn(x)))
        x = self.norm2(x + self.drop2(self.cross_attn(x, memory, keys)))
        return self.norm3(x + self.drop3(self.ff(x)))
