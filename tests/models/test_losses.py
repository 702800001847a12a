"""Cross-entropy with ignored items, and the perspective loss."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ser.models.losses import cross_entropy, perspective_loss


def test_perspective_loss_equals_the_sum_of_its_three_cross_entropies() -> None:
    g = torch.Generator().manual_seed(0)
    fused, audio, text = (torch.randn(4, 6, 5, generator=g) for _ in range(3))  # [B, U, C]
    labels = torch.randint(0, 5, (4, 6), generator=g)
    labels[0, 4:] = -100
    flat = labels.reshape(-1)
    expected = sum(
        F.cross_entropy(t.reshape(-1, 5), flat, ignore_index=-100) for t in (fused, audio, text)
    )
    torch.testing.assert_close(perspective_loss(fused, audio, text, labels), expected)
    assert perspective_loss(fused, audio, text, labels) > cross_entropy(fused, labels)


def test_ignored_items_do_not_count() -> None:
    logits = torch.randn(3, 4)
    labels = torch.tensor([1, -100, 2])
    garbage = logits.clone()
    garbage[1] = 1000.0
    torch.testing.assert_close(cross_entropy(garbage, labels), cross_entropy(logits, labels))
    torch.testing.assert_close(
        cross_entropy(logits, labels), F.cross_entropy(logits[[0, 2]], labels[[0, 2]])
    )


def test_no_labelled_item_gives_zero_with_a_gradient() -> None:
    logits = torch.randn(2, 3, 4, requires_grad=True)
    loss = cross_entropy(logits, torch.full((2, 3), -100))
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None and (logits.grad == 0).all()
