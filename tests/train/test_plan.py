"""What a plan makes of `ser train`'s options, given the store's corpus kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from ser.corpus.registry import KINDS
from ser.errors import ConfigError
from ser.models import ModelConfig
from ser.train.plan import run_targets
from ser.train.recipe import TrainConfig, resolve


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
    resolved = resolve(_config(tmp_path, target), KINDS[kind])
    targets = run_targets(resolved)
    assert [h.name for h in targets.heads] == heads
    assert targets.record_keys()["target"] == "+".join(heads)
    named = f"_target-{'+'.join(heads)}"
    assert resolved.name is not None and resolved.name.endswith(named)  # either spelling: one run


def test_an_emotions_option_without_the_emotions_head_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, "sentiment")
    with pytest.raises(ConfigError, match="--emotions-as trains the emotions head"):
        resolve(TrainConfig(**{**vars(config), "emotions_as": "intensity"}), KINDS["cmu-mosi"])
