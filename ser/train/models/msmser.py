"""MSMSER (Wang, Ma & Ding, ICASSP 2023): modality-sensitive multimodal SER.

    audio [B, T, Da] --proj--> encoder --frame scale--+ pos + type(audio) --+
                                                                            +-- concat --> memory
    text  [B, N, Dw] --proj--> encoder --frame scale--+ pos + type(text) ---+       [B, T+N, d]
    L learnable queries [L, d] --transformer decoder (cross-attention to memory)--> [B, L, d]
        --> attention pooling [B, d] --> 2-layer MLP --> logits [B, C]

Paper settings (defaults): d_e 768, 8 heads, L = 30, RMM on. Not in the paper (ours):
2 encoder layers per modality, 2 decoder layers, feed-forward width 4 d, dropout 0.1,
post-norm layers as in Vaswani et al., sinusoidal positions counted from 0 in each
modality, frame-scale MLP hidden width d.

Ablations: `encoder=False` (w/o Encoder: projection, then frame scale), `selfatt=False`
(w/o SelfAtt), fusion "concat" (w/o MIT: each branch attention-pooled, the two vectors
concatenated into the MLP), one feature set (Text / Audio: the same model over that
modality alone).

Random modality masking: in training, after `set_epoch`, each sample loses its text
(0.6) or audio (0.4) with probability p(epoch) (see `ser.train.rmm`): that modality's
keys are switched off in the decoder's key padding mask (and its memory rows zeroed, so
a sample whose whole memory is masked still computes a finite constant). A modality is
never dropped from a sample whose other modality has no frames. w/o MIT has no attention
mask to use: RMM and eval masking zero the dropped branch's pooled vector instead.
`eval_mask` drops one modality from every sample in eval mode (Table 3).
`last_dropped` holds the last forward's {modality: [B] bool} for inspection.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ser.train.batch import Batch, InputSpec
from ser.train.models.base import ModelOutput, SerModel
from ser.train.models.config import MODALITIES, ModelConfig, need
from ser.train.models.layers import (
    AttentionPool,
    FrameScale,
    ensure_length,
    keep_one,
    mlp,
    sinusoidal_positions,
)

# Every attention backend but cuDNN's. On an H100, PyTorch prefers cuDNN's fused attention,
# which builds an execution plan for each new sequence length: with IEMOCAP's lengths a
# first epoch took 19-21 s instead of 3-3.5 s (and a first evaluation 7-8 s instead of
# 0.6), at the same speed afterwards (benchmarks/README.md).
ATTENTION_BACKENDS = [
    SDPBackend.FLASH_ATTENTION,
    SDPBackend.EFFICIENT_ATTENTION,
    SDPBackend.MATH,
    SDPBackend.OVERRIDEABLE,
]


class UniModalBranch(nn.Module):
    """Projection to d_e, transformer encoder, frame self-attention scaling (section 2.1)."""

    def __init__(
        self,
        d_in: int,
        d: int,
        heads: int,
        layers: int,
        dropout: float,
        encoder: bool,
        selfatt: bool,
    ) -> None:
        super().__init__()
        self.proj = nn.Linear(d_in, d)
        self.encoder: nn.TransformerEncoder | None = None
        if encoder:
            layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.scale = FrameScale(d) if selfatt else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0)  # [B, T, Din], padding never leaks
        h = self.proj(x)  # [B, T, d]
        if self.encoder is not None:
            h = self.encoder(h, src_key_padding_mask=~keep_one(mask))  # [B, T, d]
        if self.scale is not None:
            h = self.scale(h)  # [B, T, d]
        return h.masked_fill(~mask.unsqueeze(-1), 0.0)  # [B, T, d]


class MSMSER(SerModel):
    """The full model and its ablations (module docstring)."""

    def __init__(self, config: ModelConfig, inputs: list[InputSpec], n_classes: int) -> None:
        super().__init__(config, inputs, n_classes, unit="utterance")
        d, dropout = need(config.d_model), need(config.dropout)
        self.modalities = [m for m in MODALITIES if any(s.modality == m for s in inputs)]
        self.branches = nn.ModuleDict(
            {
                m: UniModalBranch(
                    self.spec(m).dim, d, need(config.heads), need(config.layers), dropout,
                    config.encoder, config.selfatt,
                )
                for m in self.modalities
            }
        )  # fmt: skip
        self.mit = config.fusion == "mit"
        if self.mit:
            self.type_codes = nn.Embedding(len(MODALITIES), d)
            self.queries = nn.Parameter(torch.randn(config.queries, d) * 0.02)  # [L, d]
            layer = nn.TransformerDecoderLayer(
                d, need(config.heads), 4 * d, dropout, batch_first=True
            )
            self.decoder = nn.TransformerDecoder(layer, need(config.decoder_layers))
            self.pool = AttentionPool(d)
            self.head = mlp(d, d, n_classes, dropout)
        else:
            self.branch_pools = nn.ModuleDict({m: AttentionPool(d) for m in self.modalities})
            self.head = mlp(d * len(self.modalities), d, n_classes, dropout)
        self.schedule = config.rmm_schedule()
        self.rmm_p = 0.0
        self.last_dropped: dict[str, torch.Tensor] = {}
        if len(self.modalities) == 2:
            self.maskable = frozenset(MODALITIES)
        self.eval_mask = config.eval_mask

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        use = self.config.rmm and len(self.modalities) == 2
        self.rmm_p = self.schedule.probability(epoch, total_epochs) if use else 0.0

    def dropped(self, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{modality: [B] bool}: which samples lose which modality in this forward."""
        batch_size = next(iter(masks.values())).shape[0]
        device = next(iter(masks.values())).device
        none = torch.zeros(batch_size, dtype=torch.bool, device=device)  # [B]
        drops = {m: none for m in self.modalities}
        if self.training and self.rmm_p > 0.0 and len(self.modalities) == 2:
            sampled = self.schedule.sample(batch_size, self.rmm_p, device=device)
            for m, other in (("audio", "text"), ("text", "audio")):
                drops[m] = sampled[m] & masks[other].any(dim=1)  # [B], keep a non-empty memory
        elif not self.training and self.eval_mask is not None:
            drops[self.eval_mask] = ~none
        return drops

    def forward(self, batch: Batch) -> ModelOutput:
        with sdpa_kernel(ATTENTION_BACKENDS):
            return self._forward(batch)

    def _forward(self, batch: Batch) -> ModelOutput:
        feats: dict[str, torch.Tensor] = {}
        masks: dict[str, torch.Tensor] = {}
        for m in self.modalities:
            name = self.spec(m).name
            x, mask = ensure_length(batch.x[name], batch.mask[name])  # [B, T, D], [B, T]
            feats[m] = self.branches[m](x, mask)  # [B, T, d]
            masks[m] = mask
        drops = self.dropped(masks)
        self.last_dropped = drops
        pooled = (
            self._interact(feats, masks, drops) if self.mit else self._concat(feats, masks, drops)
        )
        return ModelOutput(self.head(pooled))  # [B, C]

    def _interact(
        self,
        feats: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        drops: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """The modality interaction transformer (section 2.2): [B, d]."""
        memory, keep = [], []
        for m in self.modalities:
            h = feats[m]  # [B, T, d]
            code = self.type_codes.weight[MODALITIES.index(m)]  # [d]
            h = h + sinusoidal_positions(h.shape[1], h.shape[2], h.device) + code  # [B, T, d]
            kept = masks[m] & ~drops[m].unsqueeze(1)  # [B, T]
            memory.append(h.masked_fill(~kept.unsqueeze(-1), 0.0))
            keep.append(kept)
        mem = torch.cat(memory, dim=1)  # [B, S, d], S = T + N
        mem_keep = torch.cat(keep, dim=1)  # [B, S]
        queries = self.queries.unsqueeze(0).expand(mem.shape[0], -1, -1)  # [B, L, d]
        out = self.decoder(queries, mem, memory_key_padding_mask=~keep_one(mem_keep))  # [B, L, d]
        return self.pool(out)  # [B, d]

    def _concat(
        self,
        feats: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        drops: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """w/o MIT: attention-pool each branch, zero dropped ones, concatenate: [B, k d]."""
        pooled = []
        for m in self.modalities:
            vec = self.branch_pools[m](feats[m], masks[m])  # [B, d]
            pooled.append(vec * (~drops[m]).unsqueeze(1).to(vec.dtype))
        return torch.cat(pooled, dim=1)  # [B, k d]
