"""MSMSER (Wang, Ma & Ding, ICASSP 2023): modality-sensitive multimodal SER.

    audio [B, T, Da] --proj--> encoder --frame scale--+ pos + type(audio) --+
                                                                            +-- concat --> memory
    text  [B, N, Dw] --proj--> encoder --frame scale--+ pos + type(text) ---+       [B, T+N, d]
    L learnable queries [L, d] --transformer decoder (cross-attention to memory)--> [B, L, d]
        --> attention pooling [B, d] --> 2-layer MLP --> logits [B, C]

Paper settings (defaults): d_e 768, 8 heads, L = 30, RMM on. Not in the paper (ours):
2 encoder layers per modality, 2 decoder layers, feed-forward width 4 d, dropout 0.1
after every sublayer and inside the feed-forward (not on attention weights), post-norm
layers as in Vaswani et al., sinusoidal positions counted from 0 in each modality,
frame-scale MLP hidden width d.

Ablations: `encoder=False` (w/o Encoder: projection, then frame scale), `selfatt=False`
(w/o SelfAtt), fusion "concat" (w/o MIT: each branch attention-pooled, the two vectors
concatenated into the MLP), one feature set (Text / Audio: the same model over that
modality alone).

Random modality masking (`ser.models.rmm`, its probability set by `set_epoch`) and
`eval_mask` (one modality dropped from every sample in eval mode, Table 3) switch a
dropped modality's keys off in the decoder's key padding mask (and zero its memory rows,
so a sample whose whole memory is masked still computes a finite constant). w/o MIT has
no attention mask to use: it zeroes the dropped branch's pooled vector instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn.attention import sdpa_kernel

from ser.cache.fingerprint import MODALITIES
from ser.errors import ConfigError
from ser.models.base import ModelOutput, SerModel
from ser.models.batch import Batch, InputSpec, Unit
from ser.models.config import (
    FamilyConfig,
    FeatureInfo,
    TrainDefaults,
    option,
    specs,
)
from ser.models.nn.attention import DecoderLayer, EncoderLayer, key_mask
from ser.models.nn.blocks import MLP, AttentionPool, FrameScale, ensure_length, sinusoidal_positions
from ser.models.registry import Family
from ser.models.rmm import RmmSchedule
from ser.runtime.attention import attention_backends
from ser.runtime.cost import FamilyCost
from ser.runtime.device import capturing


@dataclass(frozen=True)
class MsmserConfig(FamilyConfig):
    """MSMSER (Wang, Ma & Ding 2023): --fusion mit, or concat (w/o MIT)."""

    FUSIONS: ClassVar[dict[str, tuple[str, ...]]] = {"mit": (), "concat": ()}
    queries: int = option(30, "Emotion queries L of the MIT (paper: 30).", least=1)
    rmm: bool = option(True, "Random modality masking in training (two feature sets).")
    encoder: bool = option(True, "Uni-modal transformer encoders (--no-encoder: w/o Encoder).")
    selfatt: bool = option(True, "Frame self-attention scaling (--no-selfatt: w/o SelfAtt).")
    eval_mask: str | None = option(
        None, "Modality masked in testing.", choices=(None, *MODALITIES), tested=True
    )
    # The first family's help is the help of an option several share: said for all.
    d_model: int = option(768, "Model width.", least=1)
    heads: int = option(8, "Attention heads.", least=1)
    layers: int = option(2, "Layers: encoders per modality (MSMSER), Bi-GRU (dialog).", least=1)
    decoder_layers: int = option(2, "MIT decoder layers (ours: the paper is silent).", least=1)
    dropout: float = option(0.1, "Dropout.", least=0.0, below=1.0)
    rmm_p0: float = option(0.8, "RMM's masking probability at the first epoch.")
    rmm_end: float = option(0.7, "Fraction of the epochs at which RMM's probability is 0.")
    rmm_text: float = option(0.6, "Share of the masked samples that lose the text, else audio.")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.rmm_schedule()  # checks the RMM numbers
        if self.fusion == "concat":
            self.only_defaults("queries", "decoder_layers")  # w/o MIT has no decoder
        if self.d_model % self.heads:
            raise ConfigError(f"d_model {self.d_model} is not divisible by {self.heads} heads")

    def plan(self, features: Sequence[FeatureInfo]) -> tuple[Unit, list[InputSpec]]:
        """One audio and/or one text set, as sequences (an utterance-level set is a
        sequence of one)."""
        self.check_sets(features, "either")
        return "utterance", specs(features, "sequence")

    def rmm_schedule(self) -> RmmSchedule:
        return RmmSchedule(p0=self.rmm_p0, end_fraction=self.rmm_end, text_share=self.rmm_text)


Tensors = dict[str, torch.Tensor]  # per modality
# Rows of the first table of positions: IEMOCAP's longest utterance has ~1700 HuBERT frames.
POSITION_ROWS = 4096


class UniModalBranch(nn.Module):
    """Projection to d_e, transformer encoder, frame self-attention scaling (section 2.1)."""

    def __init__(self, d_in: int, config: MsmserConfig) -> None:
        super().__init__()
        d, layers = config.d_model, config.layers if config.encoder else 0
        self.proj = nn.Linear(d_in, d)
        self.encoder = nn.ModuleList(
            EncoderLayer(d, config.heads, config.dropout) for _ in range(layers)
        )
        self.scale = FrameScale(d) if config.selfatt else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, T, D_in], mask [B, T] -> [B, T, d], zero at padding."""
        keep = mask.unsqueeze(-1)  # [B, T, 1]
        h = self.proj(x.masked_fill(~keep, 0.0))  # [B, T, d]; junk in the padding never leaks
        keys = key_mask(mask)  # [B, 1, 1, T], once for every layer
        for layer in self.encoder:
            h = layer(h, keys)  # [B, T, d]
        return self.scale(h).masked_fill(~keep, 0.0)  # [B, T, d]


class MSMSER(SerModel):
    """The full model and its ablations (module docstring)."""

    def __init__(self, config: MsmserConfig, inputs: list[InputSpec], n_classes: int) -> None:
        super().__init__(config, inputs)
        self.config: MsmserConfig = config
        d, heads, dropout = config.d_model, config.heads, config.dropout
        self.branches = nn.ModuleDict(
            {m: UniModalBranch(self.spec(m).dim, config) for m in self.modalities}
        )
        self.mit = config.fusion == "mit"
        if self.mit:
            self.type_codes = nn.Embedding(len(MODALITIES), d)  # [2, d], N(0, 1)
            self.queries = nn.Parameter(torch.randn(config.queries, d) * 0.02)  # [L, d]
            self.decoder = nn.ModuleList(
                DecoderLayer(d, heads, dropout) for _ in range(config.decoder_layers)
            )
            self.pool = AttentionPool(d)
            self.head = MLP(d, d, n_classes, dropout)
        else:
            self.branch_pools = nn.ModuleDict({m: AttentionPool(d) for m in self.modalities})
            self.head = MLP(d * len(self.modalities), d, n_classes, dropout)
        self.schedule = config.rmm_schedule()
        self.rmm_p = 0.0  # this epoch's RMM probability (`set_epoch`); 0 until the loop starts
        # What compiled and graphed steps read of it: whether it is on, and p as a tensor
        # on the batch's device, updated in place. A float that changes every epoch would
        # enter their graph as a host scalar: never a CUDA graph (compiled), or kept at its
        # value at capture (graphed). Kept per device, not on the parameters' device: a
        # stack's module has its parameters on "meta".
        self.rmm_on = False
        self.rmm_probs: dict[torch.device, torch.Tensor] = {}  # [] per device
        self.position_tables: dict[torch.device, torch.Tensor] = {}  # [rows, d] per device

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        on = self.config.rmm and len(self.modalities) == 2
        self.rmm_p = self.schedule.probability(epoch, total_epochs) if on else 0.0
        self.rmm_on = self.rmm_p > 0.0
        device = next(self.parameters()).device
        if device.type != "meta":  # made here, before a compiled step reads it
            self.rmm_prob(device)
        for p in self.rmm_probs.values():
            p.fill_(self.rmm_p)

    def rmm_prob(self, device: torch.device) -> torch.Tensor:
        """This epoch's RMM probability as a 0-d tensor on `device`, made on first use: an
        eager step makes it before a graph of that step is captured, which reads it."""
        p = self.rmm_probs.get(device)
        if p is None:
            p = self.rmm_probs[device] = torch.full((), self.rmm_p, device=device)
        return p

    def step_variant(self) -> bool:
        """Whether RMM draws in this epoch's training steps: a step that draws is another
        graph than one that does not."""
        return self.rmm_on

    def dropped(self, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{modality: [B] bool}: which samples lose which modality in this forward, from
        the frame masks {modality: [B, T]}. Training: RMM's draw; eval: `eval_mask`."""
        mask = masks[self.modalities[0]]
        none = torch.zeros(mask.shape[0], dtype=torch.bool, device=mask.device)  # [B]
        if self.training and self.rmm_on:  # set_epoch leaves it off without two
            # (a compiled step guards on the switch alone: it recompiles when p reaches 0)
            on_device = self.rmm_prob(mask.device)
            graph = torch.compiler.is_compiling() or capturing()
            p = on_device if graph else self.rmm_p
            drops = self.schedule.sample(mask.shape[0], p, mask.device)  # [B] each
            has = {m: masks[m].any(dim=-1) for m in self.modalities}  # [B]
            # A modality is never dropped from a sample whose other modality has no frames.
            return {"audio": drops["audio"] & has["text"], "text": drops["text"] & has["audio"]}
        masked = None if self.training else self.eval_mask
        return {m: ~none if m == masked else none for m in self.modalities}

    def forward(self, batch: Batch) -> ModelOutput:
        if torch.compiler.is_compiling():  # the compiled step's caller chose the backends
            return self._forward(batch)
        with sdpa_kernel(attention_backends()):
            return self._forward(batch)

    def _forward(self, batch: Batch) -> ModelOutput:
        feats: dict[str, torch.Tensor] = {}
        masks: dict[str, torch.Tensor] = {}
        for m in self.modalities:
            name = self.spec(m).name
            x, mask = ensure_length(batch.x[name], batch.mask[name])  # [B, T, D], [B, T]
            feats[m] = self.branches[m](x, mask)  # [B, T, d]
            masks[m] = mask
        fuse = self._interact if self.mit else self._concat  # -> [B, d] or [B, n d]
        return ModelOutput(self.head(fuse(feats, masks, self.dropped(masks))))  # [B, C]

    def _interact(self, feats: Tensors, masks: Tensors, drops: Tensors) -> torch.Tensor:
        """The modality interaction transformer (section 2.2): [B, d]."""
        memory, keep = [], []
        for m in self.modalities:
            h = feats[m]  # [B, T, d]
            code = self.type_codes.weight[MODALITIES.index(m)]  # [d]
            h = h + self._positions(h.shape[-2], h.device) + code  # [B, T, d]
            kept = masks[m] & ~drops[m].unsqueeze(-1)  # [B, T]
            memory.append(h.masked_fill(~kept.unsqueeze(-1), 0.0))
            keep.append(kept)
        mem = torch.cat(memory, dim=-2)  # [B, S, d], S = T + N
        keys = key_mask(torch.cat(keep, dim=-1))  # [B, 1, 1, S], for every layer
        out = self.queries.expand(mem.shape[0], -1, -1)  # [B, L, d]
        for layer in self.decoder:
            out = layer(out, mem, keys)  # [B, L, d]
        return self.pool(out)  # [B, d]

    def _positions(self, length: int, device: torch.device) -> torch.Tensor:
        """Sinusoidal positions [length, d]: the first rows of a table kept per device
        (made again, twice as long, when a longer batch comes), so a step does not
        recompute the table's ~10 small operations. A compiled step computes them (fused
        into its kernels): a table that grows would make it compile again."""
        if torch.compiler.is_compiling():
            return sinusoidal_positions(length, self.config.d_model, device)
        table = self.position_tables.get(device)
        if table is None or table.shape[0] < length:
            rows = max(POSITION_ROWS, 1 << (length - 1).bit_length())
            table = sinusoidal_positions(rows, self.config.d_model, device)
            self.position_tables[device] = table
        return table[:length]

    def _concat(self, feats: Tensors, masks: Tensors, drops: Tensors) -> torch.Tensor:
        """w/o MIT: attention-pool each branch, zero dropped ones, concatenate: [B, n d]."""
        pooled = []
        for m in self.modalities:
            vec = self.branch_pools[m](feats[m], masks[m])  # [B, d]
            pooled.append(vec.masked_fill(drops[m].unsqueeze(-1), 0.0))
        return torch.cat(pooled, dim=-1)


# Wang et al. 3.2: Adam 2e-5, batch 8, 100 epochs, 5-fold leave-one-session-out.
# What it costs to train (benchmarks/README.md, "How should a run's members share the
# CPU?" and "How fast does paper-size MSMSER train on a GPU?"; `ser.runtime.execution`
# reads it).
COST = FamilyCost(
    # Its attention runs member by member under vmap on the CPU: members never stack
    # there (stack_width 0).
    stack_width=0,
    # On a GPU members train one at a time unless --members-at-once says otherwise:
    # stacked, an epoch of LOSO's five took 69.5 s against 78.2 s on an H200 (1.13x, at
    # 3.3x the memory), since folds of unequal steps an epoch never share a stack.
    gpu_alone=True,
    # Graphed on a GPU, one member at a time: an IEMOCAP epoch of LOSO's five took
    # 14.25 s against 73.6 s eager in one call on an H200 (5.2x); stacked in one graph
    # 22.81 s (attention under vmap on the math kernel, the masked Adam element-wise).
    # Compiled runs never finished on a card (inductor's compilation timed out).
    gpu_step="graphed",
    # An utterance-epoch's seconds in one process on the 2-core CPU at the demo's sizes
    # (its cost follows the model's size and frames more than the input width).
    rate=(4e-3, 0.0),
    # 3 members at the demo's size (~60 s of training) gained from processes (58.1 s
    # against 67.4 in one): processes from 40 s.
    min_seconds=40.0,
    # A second thread is worth under 1.3x at the demo's size (3 members: 58.1 against
    # 67.4 s): its small attention steps leave a second thread idle. Sweep cells one per
    # process: unmeasured.
    thread_gain=1.3,
)
# The suite's small MSMSER (`Family.tiny`): the MIT, RMM and dropout off.
TINY = {"fusion": "mit", "d_model": 8, "heads": 2, "queries": 3, "layers": 1,
        "decoder_layers": 1, "dropout": 0.0, "rmm": False}  # fmt: skip
FAMILY = Family("msmser", MsmserConfig, MSMSER, TrainDefaults(100, 8, 2e-5, 0.0), COST, tiny=TINY)
