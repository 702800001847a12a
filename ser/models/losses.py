"""Classification losses: cross-entropy and Wu, Lu & Dai's perspective loss.

Logits [B, C] or [B, U, C], labels [B] or [B, U] with -100 where there is nothing to
predict; the mean runs over labelled items only, with no branch on the data (vmap).

    L_p = CE(fused) + CE(audio) + CE(text)        (Wu et al. eq. 4-6)

>>> import torch
>>> logits, labels = torch.zeros(2, 3), torch.tensor([0, -100])
>>> round(cross_entropy(logits, labels).item(), 4)  # log(3)
1.0986
>>> round(perspective_loss(logits, logits, logits, labels).item(), 4)
3.2958
>>> cross_entropy(logits, torch.tensor([-100, -100])).item()  # nothing labelled: 0
0.0
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

IGNORE_INDEX = -100


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean CE over labelled items; 0 (still attached to the graph) when none are."""
    flat_labels = labels.reshape(-1)  # [N]
    each = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),  # [N, C]
        flat_labels,
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )  # [N], 0 where unlabelled
    return each.sum() / (flat_labels != IGNORE_INDEX).sum().clamp_min(1)


def perspective_loss(
    fused: torch.Tensor, audio: torch.Tensor, text: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Fused CE + audio CE + text CE, each over the same labelled items."""
    return cross_entropy(fused, labels) + cross_entropy(audio, labels) + cross_entropy(text, labels)
