"""An EmoBox checkout end to end: `ser corpus summary`, `ser extract --corpus emobox
--audio-root` and `ser train` under protocol emobox, its folds exactly as the files list
them (the valid file validating where there is one), and a track2 test store."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ser.cache import FeatureStore
from ser.cli import main
from ser.extract.remake import repair_command
from ser.synth.emobox import EmoBoxConfig, write_emobox


def ser(*args: str | Path) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def test_summary_says_speakers_folds_and_the_audio_root(tmp_path: Path) -> None:
    truth = write_emobox(tmp_path / "EmoBox", EmoBoxConfig(("mer2023", "savee"), speakers=2))
    result = ser("corpus", "summary", truth.folder("mer2023"), "--corpus", "emobox", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["speakers"] == "unknown" and summary["title"] == "MER2023"
    assert summary["speaker_source"].startswith("unknown: EmoBox names none")
    assert summary["folds"] == {f"fold_{k}": {"train": 6, "test": 6} for k in (1, 2)}
    assert summary["problems"][0]["problem"].startswith("12 of 12 wavs missing")  # video: none
    table = ser("corpus", "summary", truth.folder("savee"), "--corpus", "emobox").stdout
    assert "EmoBox SAVEE (English); speakers: the key" in table
    assert "folds: fold_1 train 6, test 6; fold_2 train 6, test 6" in table
    guessed = ser("corpus", "summary", truth.folder("savee"), "--audio-root", truth.root)
    assert guessed.exit_code == 0 and "EmoBox SAVEE" in guessed.stdout  # the layout is EmoBox's
    refused = ser("corpus", "summary", tmp_path, "--corpus", "crema-d", "--audio-root", tmp_path)
    assert refused.exit_code == 2 and "CREMA-D takes no --audio-root" in refused.stderr


def _extract(folder: Path, store: Path, *more: str | Path) -> None:
    result = ser("extract", folder, "--corpus", "emobox", "--store", store, "--features",
                 "logmel", "--quiet", *more)  # fmt: skip
    assert result.exit_code == 0, result.output


def _train(store: Path, out: Path) -> dict[str, Any]:
    small = ("--epochs", "2", "--batch-size", "8", "--out", out)
    result = ser("train", "--store", store, "--features", "logmel", "--fusion", "none",
                 "--protocol", "emobox", *small)  # fmt: skip
    assert result.exit_code == 0, result.output
    (run,) = out.iterdir()
    record: dict[str, Any] = json.loads((run / "run.json").read_text())
    with (run / "predictions.csv").open() as file:
        record["tested"] = {}
        for row in csv.DictReader(file):
            record["tested"].setdefault(row["fold"], []).append(row["utt_id"])
    return record


@pytest.mark.slow
def test_extract_and_train_on_emobox_folds(tmp_path: Path) -> None:
    config = EmoBoxConfig(("savee", "msppodcast"), speakers=4, takes=5, folds=2, track2=())
    truth = write_emobox(tmp_path / "EmoBox", config)
    audio = tmp_path / "audio"
    shutil.move(truth.root / "downloads", audio / "downloads")  # wavs elsewhere: --audio-root
    for name, val_groups in (("savee", []), ("msppodcast", ["valid"])):
        store = tmp_path / f"{name}.zarr"
        _extract(truth.folder(name), store, "--audio-root", audio)
        attrs = FeatureStore.open(store).attrs
        assert (attrs["corpus"], attrs["audio_root"]) == ("emobox", str(audio))
        assert attrs["corpus_root"] == str(truth.folder(name))
        repair = repair_command(FeatureStore.open(store), "logmel80")
        assert f"{truth.folder(name)} --corpus emobox --audio-root {audio} --store" in repair
        again = ser("extract", truth.folder(name), "--corpus", "emobox", "--store", store,
                    "--features", "logmel", "--audio-root", audio)  # fmt: skip
        assert again.exit_code == 0 and "nothing to do" in again.output
        record = _train(store, tmp_path / f"runs-{name}")
        every = sorted({label for label, _ in truth.files[name].values()})
        assert record["protocol"] == "emobox" and record["classes"] == every  # class set all
        assert "valid file where the corpus has one" in record["validation"]
        assert record["speaker_independent"]
        folds = truth.folds[name]
        assert [f["fold"] for f in record["folds"]] == list(folds)
        for entry in record["folds"]:
            sides = folds[entry["fold"]]
            assert sorted(record["tested"][entry["fold"]]) == sorted(sides["test"])
            assert entry["val_groups"] == val_groups
            trained = entry["sizes"]["train"] + entry["sizes"]["val"]
            assert trained == len(sides["train"]) + len(sides.get("valid", ()))
            if val_groups:
                assert entry["sizes"]["val"] == len(sides["valid"])


def test_a_track2_file_is_a_test_store(tmp_path: Path) -> None:
    truth = write_emobox(tmp_path / "EmoBox", EmoBoxConfig((), speakers=2, takes=1))
    store = tmp_path / "savee2.zarr"
    _extract(truth.track2["SAVEE"], store, "--audio-root", truth.track2_audio)
    opened = FeatureStore.open(store)
    assert len(opened.manifest) == 8 and opened.corpus.name == "emobox"
    assert set(opened.manifest.column("label").tolist()) == {"Neutral", "Happy", "Sad", "Angry"}
    assert set(opened.manifest.column("speaker").tolist()) == {"DC", "JE"}
    result = ser("train", "--store", store, "--features", "logmel", "--fusion", "none",
                 "--out", tmp_path / "runs")  # fmt: skip
    assert result.exit_code == 2 and "no EmoBox folds" in result.stderr


def test_demo_corpus_writes_an_emobox_checkout(tmp_path: Path) -> None:
    result = ser("demo-corpus", tmp_path / "box", "--layout", "emobox")
    assert result.exit_code == 0, result.output
    assert "in the emobox layout" in result.output
    summary = ser("corpus", "summary", tmp_path / "box" / "data" / "iemocap", "--json")
    assert summary.exit_code == 0 and not json.loads(summary.stdout)["problems"]
