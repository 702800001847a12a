"""Cross-entropy with ignored items and class weights, and the perspective loss."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from ser.models.losses import balanced_weights, cross_entropy, perspective_loss


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


def test_weighted_cross_entropy_is_torchs_weighted_sum_over_the_labelled_count() -> None:
    """Item i's CE times weight[y_i], divided by the labelled items (not by the sum of
    their weights, torch's "mean": a batch's loss stays the sum of its parts')."""
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 6, 5, generator=g)  # [B, U, C]
    labels = torch.randint(0, 5, (4, 6), generator=g)
    labels[1, 3:] = -100
    weight = torch.rand(5, generator=g) + 0.1
    flat, flat_logits = labels.reshape(-1), logits.reshape(-1, 5)
    n = int((flat != -100).sum())
    summed = F.cross_entropy(flat_logits, flat, weight=weight, ignore_index=-100, reduction="sum")
    torch.testing.assert_close(cross_entropy(logits, labels, weight) * n, summed)
    torch_mean = F.cross_entropy(flat_logits, flat, weight=weight, ignore_index=-100)
    used = weight[flat[flat != -100]].sum()
    torch.testing.assert_close(cross_entropy(logits, labels, weight) * n / used, torch_mean)
    fused, audio, text = logits, logits.flip(0), logits * 2
    expected = sum(cross_entropy(t, labels, weight) for t in (fused, audio, text))
    torch.testing.assert_close(perspective_loss(fused, audio, text, labels, weight), expected)
    # Weights of 1 are the unweighted loss, bit for bit.
    ones = torch.ones(5)
    assert torch.equal(cross_entropy(logits, labels, ones), cross_entropy(logits, labels))


def test_balanced_weights_make_every_class_weigh_alike() -> None:
    labels = np.array([0] * 6 + [1] * 3 + [2])
    weights = balanced_weights(labels, 4)  # class 3 absent: weighs 0
    np.testing.assert_allclose(weights, [10 / (4 * 6), 10 / (4 * 3), 10 / 4, 0.0])
    per_class = np.bincount(labels, minlength=4) * weights
    np.testing.assert_allclose(per_class[:3], per_class[0])  # each class's total weight


def test_weighted_cross_entropy_under_vmap_uses_each_members_weights() -> None:
    g = torch.Generator().manual_seed(2)
    logits, labels = torch.randn(3, 8, 4, generator=g), torch.randint(0, 4, (3, 8), generator=g)
    weights = torch.rand(3, 4, generator=g)  # [K, C]
    stacked = torch.func.vmap(cross_entropy)(logits, labels, weights)
    alone = torch.stack([cross_entropy(logits[k], labels[k], weights[k]) for k in range(3)])
    torch.testing.assert_close(stacked, alone)
