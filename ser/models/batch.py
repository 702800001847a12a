"""The contract between the data side and the models: a model declares what it consumes
with `InputSpec`s; the data side builds `Batch`es of exactly those views, on the device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

View = Literal["sequence", "vector"]
Unit = Literal["utterance", "dialog"]
Modality = Literal["audio", "text"]


@dataclass(frozen=True)
class InputSpec:
    """One feature set as a model sees it."""

    name: str  # feature set name in the store, e.g. "hubert.L12", "mpnet", "is13"
    modality: Modality
    dim: int  # feature dimension
    view: View  # "sequence": [B, T, D] + mask; "vector": [B, D] (mean-pooled if frame/token)
    # Stored layers of one encoder read as one input ("hubert.L0-12"): the data side gives
    # [B, T, L, D] / [B, L, D] ([B, U, L, D] for dialogs), which the model's `LayerMix`
    # sums to the view above before its family's forward sees it. 1: a plain set.
    layers: int = 1
    # The view the data side gathers when not `view`: an input whose top encoder layers
    # train (`ser.finetune`) comes as rows [B, T, D] and their mask, which the model's top
    # layers turn into `view` before its family's forward sees the batch. None: `view`.
    gather: View | None = None

    @property
    def gathered(self) -> View:
        """The view the data side builds for this input."""
        return self.gather or self.view


@dataclass
class Batch:
    """A batch of utterances (unit "utterance") or of dialogs (unit "dialog").

    One member's batch, as the data side (`Batches`) yields it (stacked batches, each
    tensor leading with the member dimension K: docs/dev/train.md).

    unit "utterance":
      x[name]     sequence view: [B, T, D] float, zero-padded;  vector view: [B, D]
                  (an input of L layers: [B, T, L, D] / [B, L, D] until the model mixes them)
      mask[name]  sequence view only: [B, T] bool, True = real frame/token
      labels      [B] long
      index       [B] long, manifest row of each utterance
    unit "dialog" (utterances of one dialog in `order`, only vector views):
      x[name]     [B, U, D] float, zero-padded over utterances
      utt_mask    [B, U] bool, True = real utterance (labelled and in this split)
      labels      [B, U] long, -100 where utt_mask is False
      index       [B, U] long, manifest row, -1 where utt_mask is False
    class_weights [C] float32, each class's weight in the loss (a training side of
                  `--class-weights balanced`: its member's own); None: unweighted
    targets       [B, A] / [B, U, A] float32, the attribute targets on the corpus's scale,
                  NaN where an item has none (padding too); None: no attribute targets
    target_mean, target_std
                  [A] float32, the training side's z-score of the targets (member's own)
    soft          [B, C] / [B, U, C] float32, each item's vote distribution (`--labels
                  soft`), zeros for padding; None: hard labels
    gold          head name -> [B, G] / [B, U, G] float32, each of the run's heads' gold
                  (`ser.heads.base.Head.gold`), NaN where an item has none (padding too)
    """

    x: dict[str, torch.Tensor]
    mask: dict[str, torch.Tensor]
    labels: torch.Tensor
    index: torch.Tensor
    utt_mask: torch.Tensor | None = None
    class_weights: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    target_mean: torch.Tensor | None = None
    target_std: torch.Tensor | None = None
    soft: torch.Tensor | None = None
    gold: dict[str, torch.Tensor] = field(default_factory=dict)
