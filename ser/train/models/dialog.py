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

Utterances where `utt_mask` is False are skipped by the Bi-GRU (each direction steps
through a dialog's real utterances only, see `gru.py`) and masked as attention keys, so
padding or gaps never change the outputs (padding may hold any finite values); their
logits are 0. The stages of the two modality branches run side by side: where both are
at their Bi-GRU, the two Bi-GRUs run as one lockstep recurrence (`gru.py`), and the two
self-attentions' per-head products as one set of batched matmuls. Same maths as the
stock modules (`nn.GRU`, `nn.MultiheadAttention`, which hold the parameters), tested to
1e-5; linear layers multiply on oneDNN on the CPU (`linear.py`), dropout masks come
from `dropout.py`'s cheaper sampler, and on CPUs with AVX-512 or AVX2 the Bi-GRU layers
and the attention between its projections run in C kernels (`gru_native.py`,
`attention_native.py`; same results as the PyTorch path, which every other device takes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from ser.train.batch import Batch, InputSpec
from ser.train.models.attention_native import attention_core
from ser.train.models.base import ModelOutput, SerModel
from ser.train.models.config import MODALITIES, ModelConfig, need
from ser.train.models.dropout import Dropout, dropout
from ser.train.models.gru import lockstep_bigru
from ser.train.models.linear import each, linear
from ser.train.models.native import kernel_for, kernels

POSITIONS = {"early": 1, "middle": 2, "late": 3, "logits": 4}


class InputFC(nn.Module):
    """FC to d + ReLU: the per-modality input projection (stage 1)."""

    def __init__(self, d_in: int, d: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d_in, d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.relu(linear(x, self.fc.weight, self.fc.bias))  # [B, U, d]


class BiGRU(nn.Module):
    """Bi-GRU over the dialog's real utterances (stage 2); d/2 per direction."""

    def __init__(self, d: int, layers: int, dropout: float) -> None:
        super().__init__()
        between = dropout if layers > 1 else 0.0
        # Holds the weights; `lockstep_bigru` runs it (same maths, see gru.py).
        self.gru = nn.GRU(d, d // 2, layers, batch_first=True, bidirectional=True, dropout=between)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return BiGRU.lockstep([self], x.unsqueeze(0), mask)[0]  # [B, U, d]

    @staticmethod
    def lockstep(modules: Sequence[BiGRU], x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Module m on x[m] [B, U, d] for all m in one recurrence -> [M, B, U, d]."""
        out, _ = lockstep_bigru([m.gru for m in modules], x, mask)
        return modules[0].dropout(out)  # the modules share their settings


class SelfAttention(nn.Module):
    """Multi-head self-attention across utterances (stage 3).

    The maths of `nn.MultiheadAttention` (whose parameters `attn` holds), written out so
    that both modalities' per-head products run as one set of batched matmuls (or one C
    kernel call, `attention_native.py`), the projections on oneDNN (`linear.py`), and the
    weights' dropout uses the cheaper `dropout` above. Padded utterances are masked as
    keys; their outputs are 0.
    """

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return SelfAttention.lockstep([self], x.unsqueeze(0), mask)[0]  # [B, U, d]

    @staticmethod
    def lockstep(
        modules: Sequence[SelfAttention], x: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Module m on x[m] [B, U, d] for all m -> [M, B, U, d]."""
        attns = [s.attn for s in modules]
        if len({(a.embed_dim, a.num_heads, a.dropout) for a in attns}) > 1:
            raise ValueError("SelfAttention.lockstep needs modules of equal settings")
        heads, p, training = attns[0].num_heads, attns[0].dropout, modules[0].training
        pairs = zip(x, attns, strict=True)
        qkvs = [linear(x_m, a.in_proj_weight, a.in_proj_bias) for x_m, a in pairs]
        kernel = kernels() if kernel_for(*qkvs) else None  # qkvs: M of [B, U, 3d]
        if kernel is not None:  # the same maths in one C call (attention_native.py)
            out = attention_core(kernel, qkvs, mask, heads, p, training)  # [M, B, U, d]
        else:
            out = SelfAttention._core(torch.stack(qkvs), mask, heads, p, training)
        out = each(out, [(a.out_proj.weight, a.out_proj.bias) for a in attns])
        out = torch.where(mask.unsqueeze(-1), out, 0.0)  # [M, B, U, d]
        return modules[0].dropout(out)

    @staticmethod
    def _core(
        qkv: torch.Tensor, mask: torch.Tensor, heads: int, p: float, training: bool
    ) -> torch.Tensor:
        """qkv [M, B, U, 3d] -> the weighted values, heads concatenated [M, B, U, d]."""
        m, b, u, three_d = qkv.shape
        d = three_d // 3
        qkv = qkv.view(m, b, u, 3, heads, d // heads).permute(3, 0, 1, 4, 2, 5)
        q, k, v = qkv.reshape(3, m * b * heads, u, d // heads).unbind(0)  # [M*B*h, U, d/h]
        # A finite "minus infinity": a dialog with no real utterance gets uniform weights
        # (its outputs are zeroed) instead of NaN.
        hide = torch.where(mask, 0.0, torch.finfo(q.dtype).min).to(q.dtype)  # [B, U]
        hide = hide[None, :, None, None, :].expand(m, b, heads, 1, u).reshape(-1, 1, u)
        scores = torch.baddbmm(hide, q, k.transpose(1, 2), alpha=(d // heads) ** -0.5)
        weights = dropout(torch.softmax(scores, dim=-1), p, training)
        out = torch.bmm(weights, v).view(m, b, heads, u, d // heads)  # [M, B, h, U, d/h]
        return out.transpose(2, 3).reshape(m, b, u, d)  # heads concatenated


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


Reps = torch.Tensor | list[torch.Tensor]  # per branch [B, U, *]; a Tensor: stacked [M, B, U, d]


def run_side_by_side(stages: Sequence[nn.Module], xs: Reps, mask: torch.Tensor) -> Reps:
    """One stage of every branch on that branch's representation. The branches'
    Bi-GRUs (and attentions) run as one, on and to representations stacked [M, B, U, d]."""
    if all(isinstance(s, BiGRU) for s in stages):
        x = xs if isinstance(xs, torch.Tensor) else torch.stack(xs)
        return BiGRU.lockstep(cast(list[BiGRU], stages), x, mask)
    if all(isinstance(s, SelfAttention) for s in stages):
        x = xs if isinstance(xs, torch.Tensor) else torch.stack(xs)
        return SelfAttention.lockstep(cast(list[SelfAttention], stages), x, mask)
    x_list = list(xs.unbind(0)) if isinstance(xs, torch.Tensor) else xs
    return [stage(x, mask) for stage, x in zip(stages, x_list, strict=True)]


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
        mask = batch.utt_mask  # [B, U]
        keep = mask.unsqueeze(-1)  # [B, U, 1]
        xs: Reps = [batch.x[self.spec(m).name] for m in self.modalities]  # [B, U, D_m] each
        branches = [cast(nn.ModuleList, self.branches[m]) for m in self.modalities]
        for depth in range(self.at):
            xs = run_side_by_side([branch[depth] for branch in branches], xs, mask)
        if isinstance(xs, torch.Tensor):
            xs = list(xs.unbind(0))
        reps = dict(zip(self.modalities, xs, strict=True))  # [B, U, dim at the fusion point]
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
        return ModelOutput(
            torch.where(keep, logits, 0.0), {m: torch.where(keep, v, 0.0) for m, v in aux.items()}
        )
