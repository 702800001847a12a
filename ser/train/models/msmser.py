"""MSMSER (Wang, Ma & Ding, ICASSP 2023): modality-sensitive multimodal SER.

    audio [B, T, Da] --proj--> encoder --frame scale--+ pos + type(audio) --+
                                                                            +-- concat --> memory
    text  [B, N, Dw] --proj--> encoder --frame scale--+ pos + type(text) ---+       [B, T+N, d]
    L learnable queries [L, d] --transformer decoder (cross-attention to memory)--> [B, L, d]
        --> attention pooling [B, d] --> 2-layer MLP --> logits [B, C]

Every tensor below also leads with the member dimension K (`ser.train.nn`): K models
of these shapes train as one.

Paper settings (defaults): d_e 768, 8 heads, L = 30, RMM on. Not in the paper (ours):
2 encoder layers per modality, 2 decoder layers, feed-forward width 4 d, dropout 0.1
after every sublayer and inside the feed-forward (not on attention weights), post-norm
layers as in Vaswani et al., sinusoidal positions counted from 0 in each modality,
frame-scale MLP hidden width d.

Ablations: `encoder=False` (w/o Encoder: projection, then frame scale), `selfatt=False`
(w/o SelfAtt), fusion "concat" (w/o MIT: each branch attention-pooled, the two vectors
concatenated into the MLP), one feature set (Text / Audio: the same model over that
modality alone).

Random modality masking: in training, after `set_epoch`, each sample loses its text
(0.6) or audio (0.4) with probability p(epoch) (see `ser.train.rmm`), drawn from its
member's stream: that modality's keys are switched off in the decoder's key padding
mask (and its memory rows zeroed, so a sample whose whole memory is masked still
computes a finite constant). A modality is never dropped from a sample whose other
modality has no frames. w/o MIT has no attention mask to use: RMM and eval masking zero
the dropped branch's pooled vector instead. `eval_mask` drops one modality from every
sample of a member in eval mode (Table 3). `last_dropped` holds the last forward's
{modality: [K, B] bool} for inspection.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ser.train.batch import Batch, InputSpec
from ser.train.models.base import ModelOutput, SerModel
from ser.train.models.config import MODALITIES, ModelConfig, need
from ser.train.nn.attention import DecoderLayer, EncoderLayer, key_mask
from ser.train.nn.layers import MLP, AttentionPool, FrameScale, ensure_length, sinusoidal_positions
from ser.train.nn.noise import LANES, Axes, Dropper, Noise
from ser.train.nn.stacked import Linear, Parameter

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
        self, members: int, d_in: int, d: int, heads: int, layers: int, encoder: bool, selfatt: bool
    ) -> None:
        super().__init__()
        self.proj = Linear(members, d_in, d)
        self.encoder = nn.ModuleList(
            EncoderLayer(members, d, heads) for _ in range(layers if encoder else 0)
        )
        self.scale = FrameScale(members, d) if selfatt else None

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, drop: Dropper, axes: Axes
    ) -> torch.Tensor:
        keep = mask.unsqueeze(-1)  # [K, B, T, 1]
        h = self.proj(x.masked_fill(~keep, 0.0))  # [K, B, T, d], padding never leaks
        if len(self.encoder):
            keys = key_mask(mask)  # [K B, 1, 1, T], for every layer
            for layer in self.encoder:
                h = layer(h, keys, drop, axes)  # [K, B, T, d]
        if self.scale is not None:
            h = self.scale(h)  # [K, B, T, d]
        return h.masked_fill(~keep, 0.0)  # [K, B, T, d]


class MSMSER(SerModel):
    """The full model and its ablations (module docstring)."""

    rmm_p_now: torch.Tensor  # [K] each member's RMM probability this epoch (a buffer)

    def __init__(
        self, configs: Sequence[ModelConfig], inputs: list[InputSpec], n_classes: int
    ) -> None:
        super().__init__(configs, inputs, n_classes, unit="utterance")
        config, k = self.config, self.members
        d, heads = need(config.d_model), need(config.heads)
        self.modalities = [m for m in MODALITIES if any(s.modality == m for s in inputs)]
        self.branches = nn.ModuleDict(
            {
                m: UniModalBranch(
                    k, self.spec(m).dim, d, heads, need(config.layers), config.encoder,
                    config.selfatt,
                )
                for m in self.modalities
            }
        )  # fmt: skip
        self.mit = config.fusion == "mit"
        if self.mit:
            self.type_codes = Parameter(k, len(MODALITIES), d)  # [K, 2, d], as nn.Embedding
            self.queries = Parameter(k, config.queries, d, std=0.02)  # [K, L, d]
            self.decoder = nn.ModuleList(
                DecoderLayer(k, d, heads) for _ in range(need(config.decoder_layers))
            )
            self.pool = AttentionPool(k, d)
            self.head = MLP(k, d, d, n_classes)
        else:
            self.branch_pools = nn.ModuleDict({m: AttentionPool(k, d) for m in self.modalities})
            self.head = MLP(k, d * len(self.modalities), d, n_classes)
        self.schedules = [c.rmm_schedule() for c in self.configs]
        self.rmm_p = [0.0] * k
        # The same on the device, changed in place: a step replayed from a CUDA graph
        # reads this tensor, so a new epoch's p reaches it (a new tensor would not).
        self.register_buffer("rmm_p_now", torch.zeros(k), persistent=False)
        self.last_dropped: dict[str, torch.Tensor] = {}
        self._position_tables: dict[torch.device, torch.Tensor] = {}
        self._outgrown: list[torch.Tensor] = []  # tables outgrown (`_positions`)
        if len(self.modalities) == 2:
            self.maskable = frozenset(MODALITIES)
        self.eval_mask = [c.eval_mask for c in self.configs]

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        two = len(self.modalities) == 2
        self.rmm_p = [
            s.probability(epoch, total_epochs) if c.rmm and two else 0.0
            for c, s in zip(self.configs, self.schedules, strict=True)
        ]
        self.rmm_p_now.copy_(torch.tensor(self.rmm_p))  # once an epoch

    def step_signature(self) -> tuple[bool, ...]:
        """Which members draw RMM's masks: a step without the draw runs other operators."""
        return tuple(p > 0.0 for p in self.rmm_p)

    def dropped(
        self, masks: dict[str, torch.Tensor], noise: Noise | None
    ) -> dict[str, torch.Tensor]:
        """{modality: [K, B] bool}: which samples lose which modality in this forward."""
        any_mask = next(iter(masks.values()))
        k, b = any_mask.shape[:2]
        device = any_mask.device
        two = len(self.modalities) == 2
        if self.training and two and noise is not None and any(p > 0.0 for p in self.rmm_p):
            return self._rmm_drops(masks, noise, k, b, device)
        drops = {m: torch.zeros(k, b, dtype=torch.bool, device=device) for m in self.modalities}
        if not self.training:
            for member, modality in enumerate(self.eval_mask):
                if modality is not None:
                    drops[modality][member] = True
        return drops

    def _rmm_drops(
        self, masks: dict[str, torch.Tensor], noise: Noise, k: int, b: int, device: torch.device
    ) -> dict[str, torch.Tensor]:
        """Random modality masking of this training step, each member from its own stream."""
        # [K, 2, B]: member k's 2 x B_k uniforms from its own stream, 1 elsewhere (no
        # member is dropped there), placed for all members at once.
        lanes = noise.lanes([p > 0.0 for p in self.rmm_p], (2, b), (None, "batch"), device)
        u = lanes.float() / LANES
        p = self.rmm_p_now.view(k, 1)
        shares = tuple(s.text_share for s in self.schedules)
        share = noise.streams.constant(shares, torch.float32, device).view(k, 1)
        real = noise.inside((True,) * k, (b,), ("batch",), device)  # [K, B]: own samples
        applied = (u[:, 0] < p) & real  # [K, B]
        text = applied & (u[:, 1] < share)
        audio = applied & ~text
        has = {m: masks[m].any(dim=-1) for m in self.modalities}  # [K, B]
        # A modality is never dropped from a sample whose other modality has no frames.
        return {"audio": audio & has["text"], "text": text & has["audio"]}

    def forward(self, batch: Batch) -> ModelOutput:
        with sdpa_kernel(ATTENTION_BACKENDS):
            return self._forward(batch)

    def _forward(self, batch: Batch) -> ModelOutput:
        drop = self.drop(batch)
        feats: dict[str, torch.Tensor] = {}
        masks: dict[str, torch.Tensor] = {}
        for m in self.modalities:
            name = self.spec(m).name
            x, mask = ensure_length(batch.x[name], batch.mask[name])  # [K, B, T, D], [K, B, T]
            feats[m] = self.branches[m](x, mask, drop, ("batch", name))  # [K, B, T, d]
            masks[m] = mask
        drops = self.dropped(masks, batch.noise)
        self.last_dropped = drops
        pooled = (
            self._interact(feats, masks, drops, drop)
            if self.mit
            else self._concat(feats, masks, drops)
        )
        return ModelOutput(self.head(pooled, drop))  # [K, B, C]

    def _interact(
        self,
        feats: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        drops: dict[str, torch.Tensor],
        drop: Dropper,
    ) -> torch.Tensor:
        """The modality interaction transformer (section 2.2): [K, B, d]."""
        memory, keep = [], []
        for m in self.modalities:
            h = feats[m]  # [K, B, T, d]
            code = self.type_codes.value[:, MODALITIES.index(m)]  # [K, d]
            pos = self._positions(h.shape[2], h.device)  # [T, d]
            h = h + pos + code[:, None, None, :]  # [K, B, T, d]
            kept = masks[m] & ~drops[m].unsqueeze(-1)  # [K, B, T]
            memory.append(h.masked_fill(~kept.unsqueeze(-1), 0.0))
            keep.append(kept)
        mem = torch.cat(memory, dim=2)  # [K, B, S, d], S = T + N
        mem_keep = torch.cat(keep, dim=2)  # [K, B, S]
        k, b = mem.shape[:2]
        out = self.queries.value.unsqueeze(1).expand(k, b, -1, -1)  # [K, B, L, d]
        keys = key_mask(mem_keep)  # [K B, 1, 1, S]
        for layer in self.decoder:
            out = layer(out, mem, keys, drop)  # [K, B, L, d]
        return self.pool(out)  # [K, B, d]

    def _positions(self, length: int, device: torch.device) -> torch.Tensor:
        """The first `length` rows [T, d] of a table of sinusoidal positions kept per
        device (a power of two long, at least 4096: IEMOCAP's longest utterance has ~1700
        HuBERT frames; made again when a longer batch comes): the table's ~10 small
        operations once instead of in every step. A table outgrown is kept: steps
        replayed from CUDA graphs (`ser.train.capture`) read the one they were captured
        with, whose rows are the same."""
        table = self._position_tables.get(device)
        if table is None or table.shape[0] < length:
            rows = 1 << max(12, (length - 1).bit_length())
            if table is not None:
                self._outgrown.append(table)
            table = sinusoidal_positions(rows, need(self.config.d_model), device)
            self._position_tables[device] = table
        return table[:length]

    def _concat(
        self,
        feats: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        drops: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """w/o MIT: attention-pool each branch, zero dropped ones, concatenate: [K, B, k d]."""
        pooled = []
        for m in self.modalities:
            vec = self.branch_pools[m](feats[m], masks[m])  # [K, B, d]
            pooled.append(vec * (~drops[m]).unsqueeze(-1).to(vec.dtype))
        return torch.cat(pooled, dim=-1)  # [K, B, k d]
