"""The `mosei-sentiment` preset: its three cells on a CMU-MOSEI store, refused on another
corpus; a tiny sweep end to end, reported beside the published rows, and claim (d)
against the training median computed again here; the layer probe on the sentiment
score, its best layer the one of lowest MAE."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from ser.cache import FeatureStore
from ser.errors import ConfigError
from ser.sweep.presets import SENTIMENT
from ser.sweep.sentiment import sentiment_table
from ser.sweep.spec import load_spec
from tests.refused import said as _ser

TINY = ("--set", "audio=tiny-hubert.L2", "--set", "text=tiny-bert", "--fix", "epochs=2",
        "--fix", "seeds=2", "--fix", "d_model=8", "--fix", "batch_size=8")  # fmt: skip


@pytest.fixture(scope="module")
def store(mosei_score_store: Path) -> Path:
    return mosei_score_store


@pytest.fixture(scope="module")
def swept(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sentiment") / "sweep"
    code, shown = _ser("sweep", SENTIMENT, "--store", store, "--out", out, *TINY)
    assert code == 0, shown
    return out


def test_the_preset_s_cells_are_text_audio_and_both(store: Path) -> None:
    spec = load_spec(SENTIMENT, store=[str(store)], made=sentiment_table([str(store)]))
    cells = {c.row.label: c.options for c in spec.cells}
    assert list(cells) == ["Text", "Audio", "Text + Audio (MSMSER)"]
    assert [o["features"] for o in cells.values()] == ["bert", "hubert", "hubert+bert"]
    assert [o["fusion"] for o in cells.values()] == ["none", "none", "mit"]
    for options in cells.values():
        assert options["target"] == "sentiment-score" and options["seeds"] == 3
        assert options["protocol"] == "standard"


def test_the_fused_row_trains_at_its_own_rate_unless_fixed(store: Path) -> None:
    made = sentiment_table([str(store)])
    spec = load_spec(SENTIMENT, store=[str(store)], made=made)
    rates = {c.row.label: c.options["lr"] for c in spec.cells}
    assert rates == {"Text": None, "Audio": None, "Text + Audio (MSMSER)": 1e-4}
    fixed = load_spec(SENTIMENT, store=[str(store)], made=made, fixed={"lr": "3e-3"})
    assert {c.options["lr"] for c in fixed.cells} == {3e-3}


def test_another_corpus_or_no_store_is_refused(crema_store: Path) -> None:
    with pytest.raises(ConfigError, match=r"crema-d corpus.*cmu-mosi or cmu-mosei"):
        sentiment_table([str(crema_store)])
    with pytest.raises(ConfigError, match=r"give --store"):
        load_spec(SENTIMENT)
    code, shown = _ser("sweep", SENTIMENT, "--store", crema_store, "--out", crema_store.parent)
    assert code != 0 and "Traceback" not in shown and "cmu-mosi or cmu-mosei" in shown


def test_the_report_sets_ours_beside_the_published_rows(swept: Path) -> None:
    code, shown = _ser("report", swept)
    assert code == 0, shown
    section = shown[shown.index("### CMU-MOSEI") :]
    ours = [line for line in section.splitlines() if line.startswith("| Text")]
    assert len(ours) == 2 and all(line.count(" ± ") == 7 for line in ours)
    assert "| Audio | tiny-hubert.L2 |" in section
    published = section[section.index("| published |") :]
    assert "| MulT (Tsai et al., ACL 2019) |" in published and "| 0.580 |" in published
    assert "| Self-MM (Yu et al., AAAI 2021) |" in published and "| 0.765 |" in published
    assert "not a same-features comparison" in section


def _constant(store: Path, predictions: Path) -> tuple[float, float, float]:
    """The training median's Acc-2 (has0, non0) and MAE on the segments tested, computed
    again."""
    manifest = FeatureStore.open(store).manifest
    scores = np.asarray(manifest.column("sentiment"), dtype=np.float64)
    train = np.asarray(manifest.column("split")).astype(str) == "train"
    median = np.median(scores[train & np.isfinite(scores)])
    rows = [r for r in csv.DictReader(predictions.open()) if r["seed"] == "0"]
    gold = np.array([float(r["sentiment-score_gold"]) for r in rows])
    nonzero = gold[gold != 0]
    has0 = 100 * np.mean((gold >= 0) == (median >= 0))
    non0 = 100 * np.mean((nonzero > 0) == (median > 0))
    return float(has0), float(non0), float(np.mean(np.abs(gold - median)))


def test_claim_d_sets_each_row_against_the_training_median(store: Path, swept: Path) -> None:
    code, shown = _ser("claims", "--sentiment", swept)
    assert code == 0, shown
    assert "(d) the sentiment score beats a constant predictor (the training median)" in shown
    verdicts = re.findall(r"^  (.+): (SHOWN|NOT SHOWN|REVERSED)$", shown, re.M)
    assert len(verdicts) == 9  # Acc-2 both ways and MAE of each of the three rows
    key = next((swept / "cells").iterdir()).name  # every cell tested the same segments
    *accuracies, mae = _constant(store, swept / "cells" / key / "predictions.csv")
    for acc in accuracies:
        assert re.search(rf"the training median, constant\s+{acc:.2f} ± 0\.00 \(n = 2\)", shown)
    assert re.search(rf"the training median, constant\s+{mae:.3f} ± 0\.000 \(n = 2\)", shown)


def test_claim_d_needs_a_sentiment_sweep(tmp_path: Path) -> None:
    (tmp_path / "sweeps").mkdir()
    code, shown = _ser("claims", "--sentiment", tmp_path)
    assert code != 0 and "Traceback" not in shown


@pytest.mark.slow
def test_the_probe_on_the_score_picks_the_layer_of_lowest_mae(store: Path, tmp_path: Path) -> None:
    args = ("--fix", "target=sentiment-score", "--fix", "epochs=3", "--fix", "seeds=2")
    code, shown = _ser("sweep", "probe", "--store", store, "--out", tmp_path, *args)
    assert code == 0, shown
    code, shown = _ser("report", tmp_path)
    assert code == 0, shown
    assert "| MAE (ours) | Acc-2 (ours) | n |" in shown and "target sentiment-score" in shown
    rows = re.findall(
        r"^\| tiny-bert \| (\d)( \(best\))? \| frames[^|]+ \| ([\d.]+) ± ", shown, re.M
    )
    assert len(rows) == 3
    best = min(rows, key=lambda r: (float(r[2]), int(r[0])))
    assert [r[0] for r in rows if r[1]] == [best[0]]
