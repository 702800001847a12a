"""The `msp-podcast-challenge` preset: its two cells on an MSP-Podcast store (classes,
weights, target, protocol, metric), refused on another corpus, and a tiny sweep of both
tasks end to end with its report beside the published Test3 numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from ser.cli import main
from ser.errors import ConfigError
from ser.sweep.challenge import challenge_table, published
from ser.sweep.presets import CHALLENGE
from ser.sweep.spec import load_spec


@pytest.fixture(scope="module")
def msp_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic MSP-Podcast root (3 rounds of every class a speaker) as a logmel store."""
    from ser.synth.talk import TalkConfig, write_msp_podcast

    tmp = tmp_path_factory.mktemp("challenge")
    truth = write_msp_podcast(tmp / "MSP-Podcast", TalkConfig(speakers=5, rounds=3))
    store = tmp / "msp.zarr"
    args = ["extract", str(truth.root), "--store", str(store), "--features", "logmel", "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (0, 1), result.output  # 1: the corpus's unreadable files
    return store


def test_the_preset_s_cells_are_the_challenge_s_tasks(msp_store: Path) -> None:
    made = challenge_table([str(msp_store)])
    spec = load_spec(CHALLENGE, params={"audio": "logmel"}, store=[str(msp_store)], made=made)
    cells = {c.row.label: c for c in spec.cells}
    task1, task2 = cells["Task 1: 8 emotions"], cells["Task 2: attributes"]
    assert task1.options["classes"] == "8" and task1.options["class_weights"] == "balanced"
    assert task2.options["target"] == "attributes" and task2.options["classes"] is None
    for cell in (task1, task2):
        assert cell.options["protocol"] == "official:dev" and cell.options["val"] == "random10"
        assert cell.options["features"] == "logmel" and cell.options["fusion"] == "none"
    assert (task1.row.meta["metric"], task2.row.meta["metric"]) == ("f1", "ccc_mean")
    assert task1.row.published["baseline (WavLM)"] == 0.311
    assert task1.row.published["best (Sheffield-MINI)"] == 0.3569
    assert task2.row.published["baseline (WavLM; ranked first)"] == 0.5327
    assert {p["edition"] for p in published("1")} == {"Odyssey 2024", "Interspeech 2025"}


def test_another_corpus_is_refused(crema_store: Path) -> None:
    with pytest.raises(ConfigError, match=r"crema-d corpus.*MSP-Podcast"):
        challenge_table([str(crema_store)])
    with pytest.raises(ConfigError, match=r"give --store"):
        load_spec(CHALLENGE)


def test_a_tiny_sweep_of_both_tasks_reports_them_beside_test3(msp_store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "sweep"
    args = ["sweep", CHALLENGE, "--store", str(msp_store), "--out", str(out), "--set",
            "audio=logmel", "--fix", "epochs=1", "--fix", "device=cpu"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = CliRunner().invoke(main, ["report", str(out)])
    assert report.exit_code == 0, report.output
    text = report.output
    assert "ours (Development)" in text and "published (Test3)" in text
    assert "labels are not released" in text and "official:dev" in text
    assert "0.311" in text and "0.357" in text and "0.533" in text and "0.410" in text
    lines = [line for line in text.splitlines() if line.startswith("| Task")]
    assert len(lines) == 2 and not any("not run" in line for line in lines)
    for line in lines:  # ours: a fraction to 3 decimals (macro F1 / 100, a mean CCC)
        ours = line.split(" | ")[2]
        assert re.fullmatch(r"-?0\.\d{3} \(n = 1\)", ours), line
