"""Faults of the heads a run trains (`--target`), each one line."""

from __future__ import annotations

from pathlib import Path

from tests.heads.test_every_head import NOISE, synthetic_store
from tests.refused import one_line, ser


def test_multilabel_without_the_category_is_refused_in_one_line(tmp_path: Path) -> None:
    """Its outputs are the category's classes: alone, a run has none, and the model's
    zero-width layer ended in a traceback from the loss."""
    store = synthetic_store("iemocap", tmp_path)  # IEMOCAP's evaluators' votes
    result = ser("train", "--store", store, "--features", NOISE, "--fusion", "none",
                 "--epochs", "1", "--device", "cpu", "--target", "multilabel",
                 "--out", tmp_path / "runs")  # fmt: skip
    line = one_line(result)
    assert "--target multilabel" in line and "--target emotion+multilabel" in line
