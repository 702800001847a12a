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
batches of 20 dialogs (`ser.train.models.config`).

Side by side with the published code (github.com/Luyizhe/SpeechEmotion: main.py,
models.py `After_fusion` and `train_and_test_afterfusion`, LoadData.py), every
difference and which way we go: the paper's text first, the code where the paper is
silent. "Same" marks agreement; "(was: ...)" what ser did before issue 14.

- Input layers. Text: the paper's "FC layer to reduce the vector to 100" is the code's
  `Bert_Linear_text` (768 -> 100, no activation): same (was: FC + ReLU). Audio: the
  paper's FC from the 6373 IS13 functionals to 100 is part of feature extraction (3.2.1);
  the code feeds those 100-d vectors straight into the Bi-GRU. We learn that FC with the
  model when the audio set has another width (is13), and feed a set that already has d
  dimensions in unchanged, as the code (was: FC + ReLU on every set).
- Normalisation: no layer or batch norm anywhere: same. The paper z-scores IS13 before
  its FC: ours z-scores openSMILE sets per fold's training side (`ser.train.data`); BERT
  and imported vectors are used as stored, as in the code.
- Bi-GRU: one layer, 50 per direction (the code's `gru_hidden`; the paper's "hidden
  states of 100 dimensions" are the two directions together), zero initial state, each
  dialog's real utterances only (the code packs the padded sequences): same.
- Self-attention: `nn.MultiheadAttention(100, 4 heads, dropout=0.2)` on the Bi-GRU
  outputs with a key padding mask, no residual connection or norm: same. The code also
  computes queries at padded positions and masks them later; we zero them (no effect
  on real utterances).
- After the attention: the paper names one FC to the classes, and ReLU as its
  non-linearity without saying where; the code has FC 100 -> 100, ReLU, dropout, FC
  100 -> 4 (`Linear_audio`, `Classify_Linear_audio`), which we follow (was: one FC, and
  the ReLU after the input FC, where the code has none).
- Dropout, p 0.2: on the Bi-GRU outputs, on the attention weights, after the hidden
  FC's ReLU: same (was: also on the attention's output, where the code has none).
- Fusion at logits: the branches' logits added, then softmax: same.
- Loss: L_p = L_s + L_a + L_t with weights 1, each a sum over utterances (eq. 3-6).
  Reduction: a sum over the batch's labelled utterances in paper and code, so ours
  trains on the sum (`summed_loss`; was: the mean, which with Adam changes how the L2
  decay weighs against the data term and how much a batch of long dialogs counts).
  The code applies `nn.CrossEntropyLoss` to probabilities, softmax already taken, for
  all three terms: -log softmax(softmax(z))_y, a bounded loss whose gradient fades as
  the probabilities sharpen. The paper writes -log P(y), the cross-entropy of the
  logits, and so do we: the one difference kept (benchmarks/README.md, "Fidelity to
  the fusion study's published code", measures what it is worth).
- Batching: 20 dialogs a batch in a fresh uniform shuffle each epoch, the last batch
  short (`DataLoader(shuffle=True, drop_last=False)`): same (was: length-bucketed
  batches, long dialogs together). Sessions 1-4 train, 5 tests, no validation, the
  last epoch's model tested (`--protocol session5 --val none`); the code also prints
  its best epoch on the test set, a selection on test data we do not make.
- Optimiser: `torch.optim.Adam(lr=1e-3, weight_decay=1e-5)`, L2 added to the
  gradient, betas (0.9, 0.999), eps 1e-8, one group for every parameter: same
  (`ser.train.optim.MemberAdam`). The paper's "decay of 0.00001" and "L2 regularization
  with the weight of 0.00001" are that one setting in the code: no learning-rate decay.
  (An earlier main.py made four groups, a speaker head's with lr 0: not this model's.)
- Initialisation: PyTorch's defaults: FC weights and biases U(+-1/sqrt(fan_in)), GRU
  U(+-1/sqrt(50)), the attention's input projection Xavier-uniform with zero bias and
  its output projection's bias zero: same (was: a uniform output bias).
- Utterances: the code's 4-class pickle holds only the 4-class utterances of each
  dialog, as our context holds the class set's utterances only: same. Metric: the
  code's "WA" weighs each utterance by 1 / its class's count, i.e. our UA.
- Seeds: the code sets none; ours draws initialisation, shuffling and dropout from
  `--seed` (per member, `ser.train.run`).

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
    """The FC to d (stage 1): linear, no activation. A feature set that already has d
    dimensions goes in unchanged (the published code's 100-d audio vectors)."""

    def __init__(self, members: int, d_in: int, d: int) -> None:
        super().__init__()
        self.fc = Linear(members, d_in, d) if d_in != d else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor, drop: Dropper) -> torch.Tensor:
        return x if self.fc is None else self.fc(x)  # [K, B, U, d]


class BiGRU(nn.Module):
    """Bi-GRU over the dialog's real utterances (stage 2); d/2 per direction; dropout after."""

    def __init__(self, members: int, d: int, layers: int) -> None:
        super().__init__()
        self.gru = StackedBiGRU(members, d, d // 2, layers)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, drop: Dropper) -> torch.Tensor:
        return BiGRU.side_by_side([self], [x], mask, drop)[0]  # [K, B, U, d]

    @staticmethod
    def side_by_side(
        modules: Sequence[BiGRU], xs: Sequence[torch.Tensor], mask: torch.Tensor, drop: Dropper
    ) -> list[torch.Tensor]:
        """Module m on xs[m] [K, B, U, d] for all m in one recurrence -> M of [K, B, U, d]."""
        out = StackedBiGRU.run(
            [m.gru for m in modules], xs, mask, between=lambda h: drop(h, UTTERANCES)
        )
        return [drop(o, UTTERANCES) for o in out]


class SelfAttention(nn.Module):
    """Multi-head self-attention across utterances (stage 3), `nn.MultiheadAttention`'s
    maths and initialisation with dropout on the attention weights. Padded utterances
    are masked as keys; their outputs are 0."""

    def __init__(self, members: int, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = Linear(members, d, 3 * d, init="xavier")
        self.out = Linear(members, d, d, init="zero_bias")

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
        return torch.where(mask.unsqueeze(-1), self.out(out), 0.0)  # [K, B, U, d]


class Classifier(nn.Module):
    """FC + ReLU, dropout, FC to the emotion classes (stage 4)."""

    def __init__(self, members: int, d: int, n_classes: int) -> None:
        super().__init__()
        self.hidden = Linear(members, d, d)
        self.fc = Linear(members, d, n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, drop: Dropper) -> torch.Tensor:
        return self.fc(drop(torch.relu(self.hidden(x)), UTTERANCES))  # [K, B, U, C]


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
        return BiGRU.side_by_side(grus, xs, mask, drop)
    return [m(x, mask, drop) for m, x in zip(modules, xs, strict=True)]


class DialogModel(SerModel):
    """The fusion study's models (two feature sets) or its unimodal framework (one)."""

    summed_loss = True  # eq. 3-6: sums over the utterances

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
