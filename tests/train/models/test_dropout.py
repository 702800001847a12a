"""The CPU dropout sampler: rate, scale, reproducibility, gradient, odd sizes."""

from __future__ import annotations

import doctest

import pytest
import torch

import ser.train.models.dropout
from ser.train.models import native
from ser.train.models.dropout import LANE_VALUES, Dropout, dropout, keep_factors


def test_doctests() -> None:
    assert doctest.testmod(ser.train.models.dropout).failed == 0


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5, 0.6])
def test_drops_at_the_rate_and_keeps_the_expectation(p: float, path: str) -> None:
    torch.manual_seed(0)
    x = torch.full((1000, 1001), 3.0)  # an odd size: the last draw is partly used
    y = dropout(x, p, training=True)
    rate = round(p * LANE_VALUES) / LANE_VALUES
    dropped = (y == 0).double().mean().item()
    assert dropped == pytest.approx(rate, abs=4 * (rate * (1 - rate) / x.numel()) ** 0.5)
    kept = y[y != 0]
    assert torch.allclose(kept, torch.tensor(3.0 / (1 - rate)))
    assert y.double().mean().item() == pytest.approx(3.0, rel=5e-3)


def test_every_lane_is_uniform(path: str) -> None:
    # Each 64-bit draw feeds four entries; the generator's top bit is always 0, so a
    # sampler reading all 16 bits of the last lane would drop entry 4k+3 far more often.
    torch.manual_seed(1)
    y = dropout(torch.ones(400_000), 0.5, training=True).view(-1, 4)
    for lane in range(4):
        assert (y[:, lane] == 0).double().mean().item() == pytest.approx(0.5, abs=0.006)


def test_masks_follow_the_seed_and_gradients_use_the_mask(path: str) -> None:
    x = torch.randn(7, 33, requires_grad=True)
    torch.manual_seed(5)
    a = dropout(x, 0.2, training=True)
    torch.manual_seed(5)
    b = dropout(x, 0.2, training=True)
    assert torch.equal(a, b)
    a.sum().backward()
    assert x.grad is not None
    keep = x.grad  # d(x * keep)/dx
    scale = LANE_VALUES / (LANE_VALUES - round(0.2 * LANE_VALUES))
    values = keep.unique()
    assert len(values) == 2 and values[0] == 0 and values[1].item() == pytest.approx(scale)
    torch.testing.assert_close(a.detach(), x.detach() * keep)


def test_eval_mode_zero_rate_and_full_rate() -> None:
    x = torch.randn(5, 4)
    module = Dropout(0.3).eval()
    assert module(x) is x
    assert dropout(x, 0.0, training=True) is x
    assert torch.equal(dropout(x, 1.0, training=True), torch.zeros_like(x))


def test_kernel_masks_do_not_depend_on_the_thread_count() -> None:
    if native.kernels() is None:
        pytest.skip("no C kernels here")
    threads = torch.get_num_threads()
    masks = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            torch.manual_seed(3)
            masks.append(keep_factors((5, 10_001), 0.2, torch.float32))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(masks[0], m) for m in masks[1:])
    torch.manual_seed(4)
    assert not torch.equal(masks[0], keep_factors((5, 10_001), 0.2, torch.float32))


def test_consecutive_masks_differ_and_are_uncorrelated(path: str) -> None:
    torch.manual_seed(6)
    a, b = (keep_factors((200_000,), 0.5, torch.float32) > 0 for _ in range(2))
    assert 0.49 < (a == b).double().mean().item() < 0.51
