"""What a plan makes of `ser train`'s options, given the store's corpus kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from ser.corpus.registry import KINDS
from ser.errors import ConfigError
from ser.models import ModelConfig
from ser.train.recipe import TrainConfig, make_plan


def _config(tmp_path: Path, target: str) -> TrainConfig:
    return TrainConfig(store=str(tmp_path / "s.zarr"), features=("logmel",),
                       model=ModelConfig(fusion="none"), target=target)  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "target", "heads"),
    [
        ("cmu-mosei", "sentiment", ["sentiment-score"]),
        ("cmu-mosi", "emotion+sentiment", ["emotion", "sentiment-score"]),
        ("cmu-mosei", "sentiment+emotions", ["sentiment-score", "emotions"]),
        ("cmu-mosei", "sentiment-score", ["sentiment-score"]),  # the old spelling stays
        ("meld", "emotion+sentiment", ["emotion", "sentiment"]),  # MELD's three classes
    ],
)
def test_sentiment_means_what_the_stores_corpus_means_by_it(
    tmp_path: Path, kind: str, target: str, heads: list[str]
) -> None:
    plan = make_plan(_config(tmp_path, target), KINDS[kind])
    assert [h.name for h in plan.targets.heads] == heads
    assert plan.targets.record_keys()["target"] == "+".join(heads)
    assert plan.name.endswith(f"_target-{'+'.join(heads)}")  # either spelling: one run


def test_an_emotions_option_without_the_emotions_head_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, "sentiment")
    with pytest.raises(ConfigError, match="--emotions-as trains the emotions head"):
        make_plan(TrainConfig(**{**vars(config), "emotions_as": "intensity"}), KINDS["cmu-mosi"])
