"""The random modality masking schedule and sampler."""

from __future__ import annotations

import pytest
import torch

from ser.errors import ConfigError
from ser.models.rmm import RmmSchedule


@pytest.mark.parametrize(
    ("epoch", "total", "p"),
    [(0, 100, 0.8), (7, 100, 0.72), (35, 100, 0.4), (69, 100, 0.8 / 70), (70, 100, 0.0),
     (99, 100, 0.0), (0, 10, 0.8), (7, 10, 0.0), (3, 10, 0.8 * (1 - 3 / 7))],
)  # fmt: skip
def test_probability_decays_linearly_to_zero_at_70_percent(
    epoch: int, total: int, p: float
) -> None:
    assert RmmSchedule().probability(epoch, total) == pytest.approx(p)


def test_custom_schedule() -> None:
    schedule = RmmSchedule(p0=0.5, end_fraction=0.5)
    assert [schedule.probability(e, 10) for e in (0, 1, 5)] == pytest.approx([0.5, 0.4, 0.0])


@pytest.mark.parametrize("p", [0.0, 0.3, 0.8, 1.0])
def test_empirical_frequencies(p: float) -> None:
    n = 200_000
    torch.manual_seed(1)
    drops = RmmSchedule().sample(n, p)
    text, audio = drops["text"], drops["audio"]
    assert text.shape == audio.shape == (n,) and text.dtype == torch.bool
    assert not bool((text & audio).any())  # never both
    applied = (text | audio).float().mean().item()
    assert applied == pytest.approx(p, abs=0.005)
    if p > 0:
        assert text.float().sum().item() / (text | audio).float().sum().item() == pytest.approx(
            0.6, abs=0.01
        )


def test_sampling_follows_the_seed() -> None:
    schedule = RmmSchedule()
    torch.manual_seed(3)
    first = schedule.sample(50, 0.5)
    torch.manual_seed(3)
    second = schedule.sample(50, 0.5)
    assert all(torch.equal(first[k], second[k]) for k in ("text", "audio"))


@pytest.mark.parametrize(
    "kwargs", [{"p0": 1.2}, {"text_share": -0.1}, {"end_fraction": 0.0}, {"end_fraction": 1.5}]
)
def test_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RmmSchedule(**kwargs)
