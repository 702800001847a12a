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

Every tensor also leads with the member dimension K (`ser.train.nn`): K models of these
shapes train as one. Utterances where `utt_mask` is False are skipped by the Bi-GRU (each
direction steps through a dialog's real utterances only, see `ser.train.nn.gru`) and
masked as attention keys, so padding or gaps never change the outputs (padding may hold
any finite values); their logits are 0. Where both branches are at their Bi-GRU, the two
Bi-GRUs (both directions, all members) run as one recurrence. The maths of `nn.GRU` and
`nn.MultiheadAttention`, tested against them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from ser.train.batch import Batch, InputSpec
from ser.train.models.base import ModelOutput, SerModel
from ser.train.models.config import MODALITIES, ModelConfig, need
from ser.train.nn.gru import BiGRU as StackedBiGRU
from ser.train.nn.noise import Dropper
from ser.train.nn.stacked import Linear

POSITIONS = {"early": 1, "middle": 2, "late": 3, "logits": 4}
UTTERANCES = ("batch", "utt")  # the padded axes of a [K, B, U, ...] tensor


class InputFC(nn.Module):
    """FC to d + ReLU: the per-modality input projection (stage 1)."""

    def __init__(self, members: int, d_in: int, d: int) -> None:
        super().__init__()
        self.fc = Linear(members, d_in, d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, drop: Dropper) -> torch.Tensor:
        return torch.relu(self.fc(x))  # [K, B, U, d]


class BiGRU(nn.Module):
    """Bi-GRU over the dialog's real utterances (stage 2); d/2 per direction; dropout after."""

    def __init__(self, members: int, d: int, layers: int) -> None:
        super().__init__()
        self.gru = StackedBiGRU(members, d, d // 2, layers)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, drop: Dropper) -> torch.Tensor:
        return BiGRU.side_by_side([self], x.unsqueeze(0), mask, drop)[0]  # [K, B, U, d]

    @staticmethod
    def side_by_side(
        modules: Sequence[BiGRU], x: torch.Tensor, mask: torch.Tensor, drop: Dropper
    ) -> torch.Tensor:
        """Module m on x[m] [K, B, U, d] for all m in one recurrence -> [M, K, B, U, d]."""
        out = StackedBiGRU.run(
            [m.gru for m in modules], x, mask, between=lambda h: drop(h, UTTERANCES)
        )
        return torch.stack([drop(o, UTTERANCES) for o in out])


class SelfAttention(nn.Module):
    """Multi-head self-attention across utterances (stage 3), `nn.MultiheadAttention`'s
    maths with dropout on the attention weights, then dropout on its output. Padded
    utterances are masked as keys; their outputs are 0."""

    def __init__(self, members: int, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = Linear(members, d, 3 * d, init="xavier")
        self.out = Linear(members, d, d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, drop: Dropper) -> torch.Tensor:
        k, b, u, d = x.shape
        dh = d // self.heads
        qkv = self.qkv(x).view(k, b, u, 3, self.heads, dh).permute(3, 0, 1, 4, 2, 5)
        q, key, v = qkv.unbind(0)  # [K, B, h, U, d/h]
        # A finite "minus infinity": a dialog with no real utterance gets uniform weights
        # (its outputs are zeroed) instead of NaN.
        hide = torch.where(mask, 0.0, torch.finfo(q.dtype).min).to(q.dtype)  # [K, B, U]
        scores = q @ key.transpose(-1, -2) * dh**-0.5 + hide[:, :, None, None, :]
        weights = drop(torch.softmax(scores, dim=-1), ("batch", None, "utt", "utt"))
        out = (weights @ v).transpose(2, 3).reshape(k, b, u, d)  # heads concatenated
        out = torch.where(mask.unsqueeze(-1), self.out(out), 0.0)  # [K, B, U, d]
        return drop(out, UTTERANCES)


class Classifier(nn.Module):
    """FC to the emotion classes (stage 4)."""

    def __init__(self, members: int, d: int, n_classes: int) -> None:
        super().__init__()
        self.fc = Linear(members, d, n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, drop: Dropper) -> torch.Tensor:
        return self.fc(x)  # [K, B, U, C]


class Fuse(nn.Module):
    """ADD, CONCAT or AT fusion of two [K, B, U, dim] representations."""

    def __init__(self, members: int, kind: str, dim: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "concat":
            self.proj = Linear(members, 2 * dim, dim, bias=False)  # W_f
        elif kind == "attention":
            self.proj = Linear(members, dim, dim)  # W
            self.score = Linear(members, dim, 1, bias=False)  # w

    def forward(self, a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.kind == "add":
            return a + t  # [K, B, U, dim]
        if self.kind == "concat":
            return self.proj(torch.cat([a, t], dim=-1))  # [K, B, U, dim]
        stacked = torch.stack([a, t], dim=3)  # [K, B, U, 2, dim]
        alpha = torch.softmax(self.score(torch.tanh(self.proj(stacked))), dim=3)  # [K, B, U, 2, 1]
        return (alpha * stacked).sum(dim=3)  # [K, B, U, dim]


def stages(members: int, d_in: int, config: ModelConfig, n_classes: int) -> list[nn.Module]:
    d = need(config.d_model)
    return [
        InputFC(members, d_in, d),
        BiGRU(members, d, need(config.layers)),
        SelfAttention(members, d, need(config.heads)),
        Classifier(members, d, n_classes),
    ]


def side_by_side(
    modules: Sequence[nn.Module], xs: list[torch.Tensor], mask: torch.Tensor, drop: Dropper
) -> list[torch.Tensor]:
    """One stage of every branch on that branch's representation; the branches' Bi-GRUs
    run as one recurrence."""
    if len(modules) > 1 and all(isinstance(m, BiGRU) for m in modules):
        grus = [m for m in modules if isinstance(m, BiGRU)]
        return list(BiGRU.side_by_side(grus, torch.stack(xs), mask, drop).unbind(0))
    return [m(x, mask, drop) for m, x in zip(modules, xs, strict=True)]


class DialogModel(SerModel):
    """The fusion study's models (two feature sets) or its unimodal framework (one)."""

    def __init__(
        self, configs: Sequence[ModelConfig], inputs: list[InputSpec], n_classes: int
    ) -> None:
        super().__init__(configs, inputs, n_classes, unit="dialog")
        config, k = self.config, self.members
        self.modalities = [m for m in MODALITIES if any(s.modality == m for s in inputs)]
        self.at = POSITIONS[config.fusion_at] if config.fusion_at else len(POSITIONS)
        self.branches = nn.ModuleDict(
            {
                m: nn.ModuleList(stages(k, self.spec(m).dim, config, n_classes)[: self.at])
                for m in self.modalities
            }
        )
        self.shared = nn.ModuleList(stages(k, need(config.d_model), config, n_classes)[self.at :])
        fused_dim = n_classes if self.at == len(POSITIONS) else need(config.d_model)
        self.fuse = Fuse(k, config.fusion, fused_dim) if len(self.modalities) == 2 else None
        self.aux_heads = nn.ModuleDict()
        if config.loss == "perspective" and self.at < len(POSITIONS):
            self.aux_heads = nn.ModuleDict(
                {m: Linear(k, fused_dim, n_classes) for m in self.modalities}
            )

    def forward(self, batch: Batch) -> ModelOutput:
        if batch.utt_mask is None:
            raise ValueError("a dialog model needs batches of unit 'dialog' (utt_mask missing)")
        mask = batch.utt_mask  # [K, B, U]
        keep = mask.unsqueeze(-1)  # [K, B, U, 1]
        drop = self.drop(batch)
        xs = [batch.x[self.spec(m).name] for m in self.modalities]  # [K, B, U, D_m] each
        branches = [cast(nn.ModuleList, self.branches[m]) for m in self.modalities]
        for depth in range(self.at):
            xs = side_by_side([branch[depth] for branch in branches], xs, mask, drop)
        reps = dict(zip(self.modalities, xs, strict=True))  # [K, B, U, dim at the fusion point]
        if self.fuse is None:
            fused = reps[self.modalities[0]]  # [K, B, U, d]
        else:
            fused = self.fuse(reps["audio"], reps["text"])  # [K, B, U, dim]
        for module in self.shared:
            fused = module(fused, mask, drop)
        logits = fused  # [K, B, U, C]
        aux = {}
        if self.fuse is not None and self.at == len(POSITIONS):
            aux = dict(reps)  # the branches' own logits
        elif self.aux_heads:
            aux = {m: self.aux_heads[m](reps[m]) for m in self.modalities}  # [K, B, U, C] each
        return ModelOutput(
            torch.where(keep, logits, 0.0), {m: torch.where(keep, v, 0.0) for m, v in aux.items()}
        )
