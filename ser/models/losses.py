"""Classification losses: cross-entropy and Wu, Lu & Dai's perspective loss.

Logits [B, C] or [B, U, C], labels [B] or [B, U] with -100 where there is nothing to
predict; the mean runs over labelled items only, with no branch on the data (vmap).

    L_p = CE(fused) + CE(audio) + CE(text)        (Wu et al. eq. 4-6)

`weight` [C] (`ser train --class-weights balanced`: `balanced_weights`): item i's CE times
weight[y_i], still divided by the number of labelled items, not by the sum of their
weights as torch's ``reduction="mean"`` is: the loss of a batch is then the sum of its
parts' (a dialog batch trained in two parts, `summed_loss`), and balanced weights average 1
over the training side, so the loss keeps its scale. None: the unweighted CE, unchanged.

`soft` [B, C] / [B, U, C] (`ser train --labels soft`): each item's target distribution
(the annotators' votes) in place of its one class: -sum_c w_c q_c log p_c, which is the
CE above, exactly, for a one-hot q; items labelled -100 still count nothing.

>>> import torch
>>> logits, labels = torch.zeros(2, 3), torch.tensor([0, -100])
>>> round(cross_entropy(logits, labels).item(), 4)  # log(3)
1.0986
>>> round(perspective_loss(logits, logits, logits, labels).item(), 4)
3.2958
>>> cross_entropy(logits, torch.tensor([-100, -100])).item()  # nothing labelled: 0
0.0
>>> one_hot = torch.tensor([[1.0, 0, 0], [0, 0, 0]])
>>> cross_entropy(logits, labels, soft=one_hot).item() == cross_entropy(logits, labels).item()
True
>>> balanced_weights(np.array([0, 0, 0, 1]), 3).tolist()  # n / (C n_c); absent class: 0
[0.4444444444444444, 1.3333333333333333, 0.0]
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

IGNORE_INDEX = -100


def cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor | None = None,
    soft: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean CE over labelled items, each weighted by its class's `weight` [C] if given,
    against its `soft` distribution if given (module docstring); 0 (still attached to the
    graph) when none are labelled."""
    flat_labels = labels.reshape(-1)  # [N]
    if soft is not None:
        return _soft_cross_entropy(logits, flat_labels, soft, weight)
    each = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),  # [N, C]
        flat_labels,
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )  # [N], 0 where unlabelled
    if weight is not None:  # a gather, not F.cross_entropy's weight: a member's own under vmap
        each = each * weight.float()[flat_labels.clamp_min(0)]  # [N]
    return each.sum() / (flat_labels != IGNORE_INDEX).sum().clamp_min(1)


def _soft_cross_entropy(
    logits: torch.Tensor,
    flat_labels: torch.Tensor,
    soft: torch.Tensor,
    weight: torch.Tensor | None,
) -> torch.Tensor:
    """-sum_c w_c q_c log p_c per labelled item, averaged over them."""
    log_p = F.log_softmax(logits.reshape(-1, logits.shape[-1]).float(), dim=-1)  # [N, C]
    q = soft.reshape(log_p.shape).float()  # [N, C]
    if weight is not None:
        q = q * weight.float()
    each = -(q * log_p).sum(-1)  # [N]
    labelled = flat_labels != IGNORE_INDEX
    return torch.where(labelled, each, 0.0).sum() / labelled.sum().clamp_min(1)


def perspective_loss(
    fused: torch.Tensor,
    audio: torch.Tensor,
    text: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor | None = None,
    soft: torch.Tensor | None = None,
) -> torch.Tensor:
    """Fused CE + audio CE + text CE, each over the same labelled items (and weights)."""
    return (
        cross_entropy(fused, labels, weight, soft)
        + cross_entropy(audio, labels, weight, soft)
        + cross_entropy(text, labels, weight, soft)
    )


def balanced_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """[C] float64 n / (C n_c) of a training side's class indices `labels` (sklearn's
    "balanced"): each class weighs as much in the loss as any other. A class the side lacks
    weighs 0 (no item of it is trained on)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes)[:n_classes]
    return np.divide(len(labels), n_classes * counts, out=np.zeros(n_classes), where=counts > 0)
