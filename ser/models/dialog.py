"""Wu, Lu & Dai (ICASSP 2023): the fusion study on utterance vectors in dialog context.

The unimodal framework (their Fig. 1), per modality, over the utterances of a dialog:

    x [B, U, D_m] --FC--> (1) --Bi-GRU--> (2) --self-attention--> (3) --FC+ReLU, FC--> logits (4)

Fusion at `early` (1), `middle` (2), `late` (3) or `logits` (4): each modality runs its
own stages up to that point, the two representations are fused, and one shared copy of
the remaining stages runs on the fused sequence. Fusion methods (eq. 1-2 and [Poria et al.
2017]): ADD `a + t`; CONCAT `W_f [a; t]` (W_f without bias, d x 2d); AT `sum_m alpha_m m`
with `alpha = softmax_m(w^T tanh(W m))` over the two modality vectors (learned W, w).

Paper settings (defaults): d = 100 ("FC to 100"), Bi-GRU of 100 = 50 per direction,
self-attention with 4 heads, ReLU, dropout 0.2, Adam 1e-3 with L2 1e-5, 150 epochs,
batches of 20 dialogs (`DialogConfig`, `TRAINING`). Where ser follows the paper, where
the published code, and why: docs/models.md, "The fusion study (Wu, Lu & Dai, ICASSP 2023)".

Utterances where `utt_mask` is False are skipped by the Bi-GRU (each direction steps
through a dialog's real utterances only, `ser.models.nn.gru`) and masked as attention
keys, so padding or gaps never change the outputs (padding may hold any finite values);
their logits are 0, and a dialog with no real utterance gives finite zeros. Where both
branches are at their Bi-GRU, the two Bi-GRUs (both directions) step through time in
one loop. The maths of `nn.GRU` and `nn.MultiheadAttention`, tested against them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, cast

import torch
from torch import nn

from ser.errors import ConfigError
from ser.models.base import ModelOutput, SerModel
from ser.models.batch import Batch, InputSpec, Unit
from ser.models.config import (
    LOSSES,
    FamilyConfig,
    FeatureInfo,
    TrainDefaults,
    option,
    specs,
)
from ser.models.nn import gru
from ser.models.nn.blocks import Dropout
from ser.models.registry import Family
from ser.runtime.cost import FamilyCost

POSITIONS = {"early": 1, "middle": 2, "late": 3, "logits": 4}


@dataclass(frozen=True)
class DialogConfig(FamilyConfig):
    """Wu, Lu & Dai's fusion study: add|concat|attention at --fusion-at, none with --context."""

    FUSIONS: ClassVar[dict[str, tuple[str, ...]]] = {
        "add": (),
        "concat": ("fusion_at",),
        "attention": (),
        "none": ("context",),
    }
    fusion_at: str | None = option(None, "Where the branches fuse.", choices=(None, *POSITIONS))
    loss: str = option("single", "perspective: each modality's own loss too.", choices=LOSSES)
    d_model: int = option(100, "Width: input FC, both Bi-GRU directions (paper: 100).", least=1)
    heads: int = option(4, "Self-attention heads (paper: 4).", least=1)
    layers: int = option(1, "Layers: the fusion study's Bi-GRU (paper: 1).", least=1)
    dropout: float = option(0.2, "Dropout (paper: 0.2).", least=0.0, below=1.0)
    context: bool = option(False, "fusion none: the study's unimodal framework, not the MLP.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fusion == "none":
            if not self.context:
                raise ConfigError("fusion 'none' without --context is the unimodal MLP's")
            self.only_defaults("fusion_at", "loss")  # one modality: nothing to fuse
        elif self.fusion_at is None:
            raise ConfigError(f"{self.where} needs --fusion-at {'|'.join(POSITIONS)}")
        elif self.context:
            raise ConfigError(
                f"--context applies to fusion 'none' (the fusion study always uses dialog "
                f"context), not to {self.where}"
            )
        if self.d_model % self.heads:
            raise ConfigError(f"d_model {self.d_model} is not divisible by {self.heads} heads")
        if self.d_model % 2:
            raise ConfigError(f"the Bi-GRU splits d_model in two directions: {self.d_model} is odd")

    @property
    def where(self) -> str:
        at = f" at {self.fusion_at}" if self.fusion_at and self.fusion != "none" else ""
        return super().where + at

    def plan(self, features: Sequence[FeatureInfo]) -> tuple[Unit, list[InputSpec]]:
        """One audio and one text set (one set for fusion none), as utterance vectors in
        their dialogs (frame- and token-level sets mean-pooled)."""
        self.check_sets(features, "one" if self.fusion == "none" else "both")
        return "dialog", specs(features, "vector")


class InputFC(nn.Module):
    """The FC to d (stage 1): linear, no activation. A feature set that already has d
    dimensions goes in unchanged (the published code's 100-d audio vectors)."""

    def __init__(self, d_in: int, d: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d_in, d) if d_in != d else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x if self.fc is None else self.fc(x)  # [B, U, d]


class BiGRU(nn.Module):
    """Bi-GRU over the dialog's real utterances (stage 2); d/2 per direction; dropout
    after (and between layers)."""

    def __init__(self, d: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.gru = gru.BiGRU(d, d // 2, layers, dropout=dropout)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.drop(self.gru(x, mask))  # [B, U, d]


class SelfAttention(nn.Module):
    """Multi-head self-attention across utterances (stage 3), `nn.MultiheadAttention`'s
    maths and initialisation with dropout on the attention weights (so written out, not
    SDPA). Padded utterances are masked as keys; their outputs are 0."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)  # in_proj: Xavier-uniform, zero bias
        self.out = nn.Linear(d, d)  # out_proj: nn.Linear's weight, zero bias
        nn.init.xavier_uniform_(self.qkv.weight)
        nn.init.zeros_(self.qkv.bias)
        nn.init.zeros_(self.out.bias)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, u, d = x.shape
        dh = d // self.heads
        qkv = self.qkv(x).view(b, u, 3, self.heads, dh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # [B, h, U, d/h] each
        # A finite "minus infinity": a dialog with no real utterance gets uniform weights
        # (its outputs are zeroed) instead of NaN.
        hide = torch.where(mask, 0.0, torch.finfo(q.dtype).min).to(q.dtype)  # [B, U]
        scores = q @ k.transpose(-1, -2) * dh**-0.5 + hide[:, None, None, :]  # [B, h, U, U]
        weights = self.drop(torch.softmax(scores, dim=-1))
        out = (weights @ v).transpose(1, 2).reshape(b, u, d)  # heads concatenated
        return torch.where(mask.unsqueeze(-1), self.out(out), 0.0)  # [B, U, d]


class Classifier(nn.Module):
    """FC + ReLU, dropout, FC to the emotion classes (stage 4)."""

    def __init__(self, d: int, n_classes: int, dropout: float) -> None:
        super().__init__()
        self.hidden = nn.Linear(d, d)
        self.drop = Dropout(dropout)
        self.fc = nn.Linear(d, n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(torch.relu(self.hidden(x))))  # [B, U, C]


class Fuse(nn.Module):
    """ADD, CONCAT or AT fusion of two [B, U, dim] representations."""

    def __init__(self, kind: str, dim: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "concat":
            self.proj = nn.Linear(2 * dim, dim, bias=False)  # W_f
        elif kind == "attention":
            self.proj = nn.Linear(dim, dim)  # W
            self.score = nn.Linear(dim, 1, bias=False)  # w

    def forward(self, a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.kind == "add":
            return a + t  # [B, U, dim]
        if self.kind == "concat":
            return self.proj(torch.cat([a, t], dim=-1))  # [B, U, dim]
        stacked = torch.stack([a, t], dim=2)  # [B, U, 2, dim]
        alpha = torch.softmax(self.score(torch.tanh(self.proj(stacked))), dim=2)  # [B, U, 2, 1]
        return (alpha * stacked).sum(dim=2)  # [B, U, dim]


def stages(d_in: int, config: DialogConfig, n_classes: int, first: int, last: int) -> nn.ModuleList:
    """Stages first..last (1-based, as the positions) of the unimodal framework; only
    those are built, so that the others draw nothing from torch's generator."""
    d, p = config.d_model, config.dropout
    make = [
        lambda: InputFC(d_in, d),
        lambda: BiGRU(d, config.layers, p),
        lambda: SelfAttention(d, config.heads, p),
        lambda: Classifier(d, n_classes, p),
    ]
    return nn.ModuleList(build() for build in make[first - 1 : last])


def side_by_side(
    stages: Sequence[nn.Module], xs: Sequence[torch.Tensor], mask: torch.Tensor
) -> list[torch.Tensor]:
    """One stage of every branch on that branch's representation; the branches' Bi-GRUs
    step together (one loop over time for both: its cost is mostly per step)."""
    grus = [s for s in stages if isinstance(s, BiGRU)]
    if len(stages) > 1 and len(grus) == len(stages):
        out = gru.BiGRU.together([s.gru for s in grus], xs, mask)
        return [s.drop(o) for s, o in zip(grus, out, strict=True)]  # M of [B, U, d]
    return [stage(x, mask) for stage, x in zip(stages, xs, strict=True)]


class DialogModel(SerModel):
    """The fusion study's models (two feature sets) or its unimodal framework (one)."""

    summed_loss = True  # eq. 3-6: sums over the utterances

    def __init__(self, config: DialogConfig, inputs: list[InputSpec], n_classes: int) -> None:
        super().__init__(config, inputs)
        d = config.d_model
        self.at = POSITIONS[config.fusion_at] if config.fusion_at else len(POSITIONS)
        self.branches = nn.ModuleDict(
            {m: stages(self.spec(m).dim, config, n_classes, 1, self.at) for m in self.modalities}
        )
        fused_dim = n_classes if self.at == len(POSITIONS) else d
        self.fuse = Fuse(config.fusion, fused_dim) if len(self.modalities) == 2 else None
        self.shared = stages(d, config, n_classes, self.at + 1, len(POSITIONS))
        self.aux_heads = nn.ModuleDict()
        if config.loss == "perspective" and self.at < len(POSITIONS):
            self.aux_heads = nn.ModuleDict({m: nn.Linear(d, n_classes) for m in self.modalities})

    def branch(self, modality: str) -> nn.ModuleList:
        """That modality's own stages, up to the fusion point."""
        return cast(nn.ModuleList, self.branches[modality])

    def forward(self, batch: Batch) -> ModelOutput:
        if batch.utt_mask is None:
            raise ValueError("a dialog model needs batches of unit 'dialog' (utt_mask missing)")
        mask = batch.utt_mask  # [B, U]
        xs = [batch.x[self.spec(m).name] for m in self.modalities]  # [B, U, D_m] each
        branches = [self.branch(m) for m in self.modalities]
        for depth in range(self.at):
            xs = side_by_side([branch[depth] for branch in branches], xs, mask)
        reps = dict(zip(self.modalities, xs, strict=True))  # [B, U, dim at the fusion point]
        x = xs[0] if self.fuse is None else self.fuse(*xs)  # [B, U, dim]; xs: audio, text
        for stage in self.shared:
            x = stage(x, mask)
        aux = {}
        if self.fuse is not None and self.at == len(POSITIONS):
            aux = reps  # the branches' own logits
        elif self.aux_heads:
            aux = {m: self.aux_heads[m](reps[m]) for m in self.modalities}  # [B, U, C] each
        keep = mask.unsqueeze(-1)  # [B, U, 1]
        return ModelOutput(
            torch.where(keep, x, 0.0), {m: torch.where(keep, v, 0.0) for m, v in aux.items()}
        )  # logits [B, U, C]


# Wu et al. 3.1/3.3: Adam 1e-3, L2 1e-5, 150 epochs, 20 dialogs, 20 runs (their sessions
# 1-4 vs 5 is the `fusion-study` preset's protocol).
TRAINING = TrainDefaults(150, 20, 1e-3, 1e-5, seeds=20)
# What it costs to train on the 2-core CPU (benchmarks/README.md, "How should a run's
# members share the CPU?"; `ser.runtime.execution` reads it).
COST = FamilyCost(
    # Members stacked in one model gained at 868 input dims (the published code's 100-d
    # audio + 768-d text: 67.8 s against 107.4 s one after another, 10 or 20 members) and
    # at 1792 (43.5 against 61.7 s), lost at 7141 (IS13's 6373-d + 768: 204.4 against
    # 200.9 s): a Python loop of small operators one call can share, until the matrix
    # products dominate and a stack only adds copies.
    stack_width=2048,
    # An utterance-epoch's seconds in one process: 3.1e-5 at 868 dims, 5.9e-5 at 7141.
    rate=(2.7e-5, 4.5e-9),
    # A process's start-up (~4 s: imports, the data read again) is paid for from ~46 s of
    # training at its gain from processes.
    min_seconds=46.0,
    # A second thread is worth ~1.4x on 6373 + 768 dims (3 members: 2 processes 32.6 s
    # against one process 34.9 s).
    thread_gain=1.4,
    # Sweep cells: 79 runs an hour as two one-thread processes against 57 as one 2-thread
    # process.
    cell_per_process=True,
    # Not compiled on a GPU: its GRU loop unrolls per dialog length (a graph a length).
)
# The suite's small fusion-study model (`Family.tiny`): attention fusion in the middle
# with the perspective loss, the options most of its code runs under; dropout off.
TINY = {"fusion": "attention", "fusion_at": "middle", "loss": "perspective", "d_model": 8,
        "heads": 2, "dropout": 0.0}  # fmt: skip
FAMILY = Family("dialog", DialogConfig, DialogModel, TRAINING, COST, tiny=TINY)
