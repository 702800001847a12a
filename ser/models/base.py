"""`SerModel`, the base of every model family, and `ModelOutput`.

A model is one plain PyTorch module, one member, knowing nothing of stacking: many members
train at once through `ser.train.engine.ensemble`, so a forward pass must run under
`torch.func.vmap` unchanged (what that asks of it: `ser.models.nn`, docs/dev/train.md).

An input of several stored layers (`InputSpec.layers` > 1) is summed by the model's own
learnt `LayerMix` (`ser.models.nn.layer_mix`) in a forward pre-hook, before the family's
forward sees the batch: every family takes it, and a family's code never knows. The hook
runs wherever the module is called, `functional_call` under `vmap` included, so each
member of a stack learns its own layer weights.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from ser.cache.fingerprint import MODALITIES
from ser.models.batch import Batch, InputSpec
from ser.models.config import FamilyConfig
from ser.models.losses import cross_entropy, perspective_loss
from ser.models.nn.layer_mix import LayerMixes, learnt_weights
from ser.models.targets import Targets

#: The attribute (and state-dict prefix) of a model's layer mixes.
LAYER_MIX = "layer_mix"


@dataclass
class ModelOutput:
    """logits: [B, C] (utterance unit) or [B, U, C] (dialog unit); aux: modality -> the
    logits of its own head, shaped alike, for the perspective loss (else empty). The last
    axis holds every head's outputs side by side, the class logits first
    (`ser.heads.targets.Targets.split`)."""

    logits: torch.Tensor
    aux: dict[str, torch.Tensor] = field(default_factory=dict)


class SerModel(nn.Module):
    """Base class: inputs, the loss, the eval-mask switch, schedules and stages."""

    #: `loss` gives the mean over the labelled items; True: the loop trains on that mean
    #: times their number (the sum), as a paper whose loss is a sum does.
    summed_loss: bool = False
    #: What the model predicts (`build_model` sets a run's): the category alone by default.
    targets: Targets = Targets()
    #: The run's class set's size (`build_model` sets it): what the heads' widths follow.
    n_classes: int = 0

    def __init__(
        self, config: FamilyConfig, inputs: list[InputSpec], layer_mix: LayerMixes | None = None
    ) -> None:
        """`layer_mix`: the mixes of the model this one is a stage of (`stages()`), whose
        weights a stage of a layered input trains; None: this model's own."""
        super().__init__()
        self.config = config
        self.inputs: tuple[InputSpec, ...] = tuple(inputs)
        self.modalities = [m for m in MODALITIES if any(s.modality == m for s in inputs)]
        # A modality dropped from every sample in eval mode (MSMSER's Table 3), or None; the
        # loop sets it around a test. Its config and `plan_inputs` have checked the value.
        self.eval_mask: str | None = config.eval_mask
        # Only a model with a layered input holds mixes: every other keeps its parameters,
        # state-dict keys and initialisation draws as before (zeros draw nothing).
        if any(s.layers > 1 for s in self.inputs):
            self.layer_mix = LayerMixes(self.inputs, of=layer_mix)
            self.register_forward_pre_hook(_mix_layers)

    def spec(self, modality: str) -> InputSpec:
        """The input of one modality (families taking one set per modality)."""
        for spec in self.inputs:
            if spec.modality == modality:
                return spec
        raise KeyError(modality)

    def forward(self, batch: Batch) -> ModelOutput:
        raise NotImplementedError

    def mixes(self) -> LayerMixes | None:
        """The layer mixes of this model's layered inputs (None: it has none)."""
        mixes = getattr(self, LAYER_MIX, None)
        return mixes if isinstance(mixes, LayerMixes) else None

    def layer_weights(self, state: dict[str, torch.Tensor] | None = None) -> dict[str, list[float]]:
        """Each layered input's softmax layer weights (layer order), of this model or of
        one of its members' `state` (`state_dict()`); {} without a layered input."""
        if self.mixes() is None:
            return {}
        return learnt_weights(self.state_dict() if state is None else state, self.inputs, LAYER_MIX)

    def loss(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        """The weighed sum of the `targets`' heads' losses, each of its own outputs (the
        main head's: `aux` carries none): `class_loss` for a head whose loss is the
        family's (the category's), the head's own of its gold for any other."""
        parts = self.split(out.logits)
        aux = {m: self.split(logits) for m, logits in out.aux.items()}
        terms = []
        for i, (head, part) in enumerate(zip(self.targets.heads, parts, strict=True)):
            if head.category:
                term = self.class_loss(ModelOutput(part, {m: a[i] for m, a in aux.items()}), batch)
            else:
                term = head.loss(part, head.trained_gold(batch))
            terms.append(head.weight * term)
        return torch.stack(terms).sum() if len(terms) > 1 else terms[0]

    def split(self, logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Each head's outputs of `logits` [..., W]: a model built by a family itself (not
        `build_model`) predicts the category alone, all W classes."""
        return self.targets.split(logits, self.n_classes or logits.shape[-1])

    def class_loss(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        """Cross-entropy (ignore_index -100), or the perspective loss when configured;
        weighted per class by `batch.class_weights` where it has them, against the vote
        distributions `batch.soft` where it has them."""
        weight, soft = batch.class_weights, batch.soft
        if self.config.loss == "perspective":
            aux = out.aux
            return perspective_loss(
                out.logits, aux["audio"], aux["text"], batch.labels, weight, soft
            )
        return cross_entropy(out.logits, batch.labels, weight, soft)

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """Called by the loop before each training epoch (0-based); no-op by default."""

    def step_variant(self) -> Hashable:
        """What, beside its batch's shapes, changes which operations a training step runs
        (a schedule switched on or off by `set_epoch`): a graphed run captures a graph per
        variant (`ser.train.engine.graphs`). None by default: one variant."""
        return None

    def stages(self) -> list[tuple[str, nn.Module]]:
        """Training stages run, in order, before the whole model is trained: (name, module
        whose parameters are some of this model's, with `forward`, `loss`, `set_epoch`
        and `eval_mask` as here). None by default."""
        return []


def _mix_layers(model: SerModel, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The forward pre-hook: the batch with each layered input summed by its `LayerMix`."""
    batch, *rest = args
    mixes = model.mixes()
    if mixes is None:  # registered only where there are mixes
        return args
    return (replace(batch, x=mixes(batch.x)), *rest)
