"""A run resumed under its name with an option it did not train with, or without one it
did, is refused naming each key, and its record is left as it was: run.json names every
option that can change a result, on or off (null), and a resume compares the two configs
whole. A record written before every option was recorded reads a key it lacks as off."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from ser.errors import ConfigError
from ser.report.runs import settings_label
from ser.runs.record import RECORD, read
from ser.train.recipe import train
from ser.train.record import ONCE_LEFT_OUT, config_changes
from tests.refused import one_line, ser
from tests.train.conftest import SETS, small_config

SMALL = ("train", "--features", "is13", "--fusion", "none", "--classes", "4", "--epochs", "2")
SMALL += ("--batch-size", "8", "--device", "cpu", "--processes", "1", "--threads", "1")
SMALL += ("--protocol", "session5", "--lr", "0.01")


@pytest.fixture(scope="module")
def store(labelled_stores: Callable[..., Path]) -> Path:
    return labelled_stores({"is13": SETS["is13"]})


def test_off_and_absent_are_the_same_and_on_against_off_is_a_change() -> None:
    old = {"features": "is13", "mixup": 0.2, "d_model": 64, "device": "cpu"}
    new = {"features": "is13", "mixup": None, "calibrate": None, "device": "cuda:0"}
    assert config_changes(old, new) == ["mixup: 0.2 -> off"]  # device: where, not what
    del old["d_model"]  # a key of the family's options only the record has: not compared
    assert config_changes(new, old | {"calibrate": "temperature"}) == [
        "mixup: off -> 0.2",
        "calibrate: off -> 'temperature'",
    ]


def test_a_run_resumed_without_its_option_is_refused_and_kept(store: Path, tmp_path: Path) -> None:
    """`ser train` under a finished run's name, without --mixup: refused in one line that
    names the key, run.json byte for byte as it was (it had said "already done" and
    rewritten the record without the option)."""
    out = ("--store", store, "--out", tmp_path, "--name", "mixed")
    assert ser(*SMALL, *out, "--mixup", "0.2").exit_code == 0
    record = tmp_path / "mixed" / RECORD
    before = record.read_bytes()
    line = one_line(ser(*SMALL, *out))
    assert "mixup: 0.2 -> off" in line and str(record) in line
    assert record.read_bytes() == before
    # and the reverse: an option the run did not train with
    line = one_line(ser(*SMALL, *out, "--mixup", "0.2", "--sampler", "balanced"))
    assert "sampler: off -> 'balanced'" in line
    assert record.read_bytes() == before


def test_a_member_missing_does_not_train_without_the_option(store: Path, tmp_path: Path) -> None:
    """A run with a (seed, fold) left to train is refused alike, so that member never
    trains without what its siblings had."""
    base = small_config(store, tmp_path, epochs=2, seeds=2, calibrate="temperature")
    done = train(base)
    run = tmp_path / done.name
    for path in (run / "checkpoints").glob("seed1_*"):
        path.unlink()
    with pytest.raises(ConfigError, match="calibrate: 'temperature' -> off"):
        train(replace(base, calibrate="none", name=done.name))
    assert read(run / RECORD).config["calibrate"] == "temperature"


def test_a_record_without_the_keys_resumes_as_off(store: Path, tmp_path: Path) -> None:
    """A record written before every option was recorded (the keys of options that were
    off left out) resumes with them off, training nothing again, and is refused with one
    of them on."""
    base = small_config(store, tmp_path, epochs=2)
    done = train(base)
    path = tmp_path / done.name / RECORD
    written = json.loads(path.read_text())
    assert set(written["config"]) >= ONCE_LEFT_OUT  # every key, on or off
    written["config"] = {k: v for k, v in written["config"].items() if k not in ONCE_LEFT_OUT}
    path.write_text(json.dumps(written))
    assert train(base).folds == done.folds  # nothing trained again
    with pytest.raises(ConfigError, match="calibrate: off -> 'temperature'"):
        train(replace(base, calibrate="temperature", name=done.name))


def test_a_calibrated_run_and_its_twin_are_told_apart_in_a_table(
    store: Path, tmp_path: Path
) -> None:
    base = small_config(store, tmp_path, epochs=2)
    plain, calibrated = train(base), train(replace(base, calibrate="temperature"))
    assert "calibrate=temperature" in settings_label(calibrated)
    assert "calibrate" not in settings_label(plain)


def test_folds_trained_on_another_device_say_so(store: Path, tmp_path: Path) -> None:
    """The device is where a run executes, so a resume may change it; the folds trained
    before then name the device they trained on, so the record never says they trained
    where they did not."""
    base = small_config(store, tmp_path, epochs=2, seeds=2)
    done = train(base)
    path = tmp_path / done.name / RECORD
    written = json.loads(path.read_text())
    written["config"]["device"] = "cuda:0"  # as if its first session ran on a GPU
    path.write_text(json.dumps(written))
    for checkpoint in (tmp_path / done.name / "checkpoints").glob("seed1_*"):
        checkpoint.unlink()
    resumed = train(base)
    assert resumed.config["device"] == "cpu"
    assert {(e.seed, e.device) for e in resumed.folds} == {(0, "cuda:0"), (1, None)}
    again = read(path)  # written back and read: the key survives
    assert {(e.seed, e.device) for e in again.folds} == {(0, "cuda:0"), (1, None)}
