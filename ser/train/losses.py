"""Classification losses: single cross-entropy and Wu, Lu & Dai's perspective loss.

Logits are [B, C] (utterances) or [B, U, C] (dialogs); labels are [B] or [B, U] with
-100 where there is nothing to predict (padding, utterances outside the split). The mean
runs over labelled items only (the paper sums over utterances; with Adam the two differ
only in how the weight decay weighs against the data term).

    L_p = CE(fused) + CE(audio) + CE(text)        (Wu et al. eq. 4-6)

>>> import torch
>>> logits = torch.zeros(2, 3)
>>> labels = torch.tensor([0, -100])
>>> round(cross_entropy(logits, labels).item(), 4)  # log(3)
1.0986
>>> round(perspective_loss(logits, logits, logits, labels).item(), 4)
3.2958
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

IGNORE_INDEX = -100


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean CE over labelled items; 0 (still attached to the graph) when none are labelled."""
    flat_logits = logits.reshape(-1, logits.shape[-1])  # [N, C]
    flat_labels = labels.reshape(-1)  # [N]
    if not bool((flat_labels != IGNORE_INDEX).any()):
        return flat_logits.sum() * 0.0  # mean over nothing would be NaN
    return F.cross_entropy(flat_logits, flat_labels, ignore_index=IGNORE_INDEX)


def perspective_loss(
    fused: torch.Tensor, audio: torch.Tensor, text: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Fused CE + audio CE + text CE, each over the same labelled items."""
    return cross_entropy(fused, labels) + cross_entropy(audio, labels) + cross_entropy(text, labels)


def member_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each member's mean CE over its labelled items: logits [K, ..., C], labels [K, ...]
    -> [K]; 0 (still attached to the graph) for a member with none."""
    k, classes = logits.shape[0], logits.shape[-1]
    flat = labels.reshape(k, -1)  # [K, N]
    each = F.cross_entropy(
        logits.reshape(-1, classes).float(),
        flat.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view(k, -1)  # [K, N], 0 where unlabelled
    count = (flat != IGNORE_INDEX).sum(dim=1).clamp_min(1)  # [K]
    return each.sum(dim=1) / count


def member_perspective_loss(
    fused: torch.Tensor, audio: torch.Tensor, text: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Per member [K]: fused CE + audio CE + text CE, each over the same labelled items."""
    return (
        member_cross_entropy(fused, labels)
        + member_cross_entropy(audio, labels)
        + member_cross_entropy(text, labels)
    )
