"""Wu, Lu & Dai (ICASSP 2023): the fusion study on utterance vectors in dialog context.

The unimodal framework (their Fig. 1), per modality, over the utterances of a dialog:

    x [B, U, D_m] --FC+ReLU--> (1) --Bi-GRU--> (2) --self-attention--> (3) --FC--> logits (4)

Fusion at `early` (1), `middle` (2), `late` (3) or `logits` (4): each modality runs its
own stages up to that point, the two representations are fused, and one shared copy of
the remaining stages runs on the fused sequence. Fusion methods (eq. 1-2 and [Poria et al.
2017]): ADD `a + t`; CONCAT `W_f [a; t]` (W_f without bias, d x 2d); AT `sum_m alpha_m m`
with `alpha = softmax_m(w^T tanh(W m))` over the two modality vectors (learned W, w).

Paper settings (defaults): d = 100 ("FC to 100"), Bi-GRU of 100 = 50 per direction (as in
the authors' published code, so the self-attention runs on 100-d states), self-attention
with 4 heads, ReLU, dropout 0.2 (after the Bi-GRU, inside the attention and before the
last FC, where the published code puts it). The self-attention module has no residual
connection or layer norm, as in the published code.

Perspective loss needs logits from each modality: at `logits` they are the modality
branches' own FC outputs; at earlier positions each modality gets an auxiliary linear
head (d -> C) on its representation at the fusion point (as the authors' early-fusion
code does). Only built with `loss="perspective"`.

`fusion="none", context=True` builds the unimodal framework alone (one feature set).

Utterances where `utt_mask` is False are removed before the Bi-GRU (real utterances are
packed to the front of each dialog, the model runs, logits are put back), so padding or
gaps never change the outputs; their logits are 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ser.train.batch import Batch, InputSpec
from ser.train.models.base import ModelOutput, SerModel
from ser.train.models.config import MODALITIES, ModelConfig, need
from ser.train.models.layers import keep_one

POSITIONS = {"early": 1, "middle": 2, "late": 3, "logits": 4}


class InputFC(nn.Module):
    """FC to d + ReLU: the per-modality input projection (stage 1)."""

    def __init__(self, d_in: int, d: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d_in, d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x))  # [B, U, d]


class BiGRU(nn.Module):
    """Bi-GRU over the dialog's real utterances (stage 2); d/2 per direction."""

    def __init__(self, d: int, layers: int, dropout: float) -> None:
        super().__init__()
        between = dropout if layers > 1 else 0.0
        self.gru = nn.GRU(d, d // 2, layers, batch_first=True, bidirectional=True, dropout=between)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(dim=1).clamp(min=1).cpu()  # [B]; real ones are packed to the front
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=x.shape[1])
        return self.dropout(out)  # [B, U, d]


class SelfAttention(nn.Module):
    """Multi-head self-attention across utterances (stage 3)."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out, _ = self.attn(x, x, x, key_padding_mask=~keep_one(mask), need_weights=False)
        out = out.masked_fill(~mask.unsqueeze(-1), 0.0)  # [B, U, d]
        return self.dropout(out)  # [B, U, d]


class Classifier(nn.Module):
    """FC to the emotion classes (stage 4)."""

    def __init__(self, d: int, n_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d, n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.fc(x)  # [B, U, C]


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


def stages(d_in: int, config: ModelConfig, n_classes: int) -> list[nn.Module]:
    d, dropout = need(config.d_model), need(config.dropout)
    return [
        InputFC(d_in, d),
        BiGRU(d, need(config.layers), dropout),
        SelfAttention(d, need(config.heads), dropout),
        Classifier(d, n_classes),
    ]


def run(modules: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    for module in modules.children():
        x = module(x, mask)
    return x


class DialogModel(SerModel):
    """The fusion study's models (two feature sets) or its unimodal framework (one)."""

    def __init__(self, config: ModelConfig, inputs: list[InputSpec], n_classes: int) -> None:
        super().__init__(config, inputs, n_classes, unit="dialog")
        self.modalities = [m for m in MODALITIES if any(s.modality == m for s in inputs)]
        self.at = POSITIONS[config.fusion_at] if config.fusion_at else len(POSITIONS)
        self.branches = nn.ModuleDict(
            {
                m: nn.ModuleList(stages(self.spec(m).dim, config, n_classes)[: self.at])
                for m in self.modalities
            }
        )
        self.shared = nn.ModuleList(stages(need(config.d_model), config, n_classes)[self.at :])
        fused_dim = n_classes if self.at == len(POSITIONS) else need(config.d_model)
        self.fuse = Fuse(config.fusion, fused_dim) if len(self.modalities) == 2 else None
        self.aux_heads = nn.ModuleDict()
        if config.loss == "perspective" and self.at < len(POSITIONS):
            self.aux_heads = nn.ModuleDict(
                {m: nn.Linear(fused_dim, n_classes) for m in self.modalities}
            )

    def forward(self, batch: Batch) -> ModelOutput:
        if batch.utt_mask is None:
            raise ValueError("a dialog model needs batches of unit 'dialog' (utt_mask missing)")
        order = torch.argsort((~batch.utt_mask).to(torch.int8), dim=1, stable=True)  # [B, U]
        mask = batch.utt_mask.gather(1, order)  # [B, U], real utterances first
        reps = {}
        for m in self.modalities:
            x = batch.x[self.spec(m).name]  # [B, U, D_m]
            x = x.gather(1, order.unsqueeze(-1).expand_as(x)).masked_fill(~mask.unsqueeze(-1), 0.0)
            reps[m] = run(self.branches[m], x, mask)  # [B, U, dim at the fusion point]
        if self.fuse is None:
            fused = reps[self.modalities[0]]  # [B, U, d]
        else:
            fused = self.fuse(reps["audio"], reps["text"])  # [B, U, dim]
        logits = run(self.shared, fused, mask)  # [B, U, C]
        aux = {}
        if self.fuse is not None and self.at == len(POSITIONS):
            aux = dict(reps)  # the branches' own logits
        elif self.aux_heads:
            aux = {m: self.aux_heads[m](reps[m]) for m in self.modalities}  # [B, U, C] each
        restore = _unsort(order, mask)
        return ModelOutput(restore(logits), {m: restore(v) for m, v in aux.items()})


def _unsort(order: torch.Tensor, mask: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function putting [B, U, C] rows back to the batch's utterance order, padding 0."""

    def restore(y: torch.Tensor) -> torch.Tensor:
        y = y.masked_fill(~mask.unsqueeze(-1), 0.0)  # [B, U, C]
        return torch.empty_like(y).scatter_(1, order.unsqueeze(-1).expand_as(y), y)

    return restore
