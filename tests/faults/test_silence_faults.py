"""Long steps that said nothing, or said the wrong thing: `ser store verify` of a big
store (half an hour, no word), `ser train`'s first ETA timed on a first step that held
the set-up (hours for a fold of a minute and a half), `ser sweep --dry-run` of unimodal
cells (8-30x under their time). Each as a user runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ser.runtime import progress
from ser.track.progress import Heartbeat, Progress
from tests.refused import ser

SETS = {"is13": ("is13", "audio", "utterance", 7, "float32")}


@pytest.fixture(scope="module")
def store(labelled_stores) -> Path:  # type: ignore[no-untyped-def]
    return labelled_stores(SETS, per_dialog=12)


def test_a_long_verify_says_how_far_it_is_with_its_pace(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "SHORT", 0.0)  # a pass as long as a 60 GB store's
    result = ser("store", "verify", store)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: ")  # the result alone on stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("verify: ")]
    assert lines and " elapsed " in lines[-1] and lines[-1].endswith("eta 0:00")


class Clock:
    """A second a reading."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


class SlowStart(Heartbeat):
    """`ser train`'s heartbeat on `Clock`, the fold's set-up (everything before its first
    step: models, z-scores, a compilation) taking 1000 s."""

    def __init__(self, inner: Progress) -> None:
        super().__init__(inner, interval=1e9, first=0, clock=Clock())
        self.started_up = False

    def step(self, phase: str, done: int, total: int | None) -> None:
        if not self.started_up:
            self.clock.now += 1000.0  # type: ignore[attr-defined]
            self.started_up = True
        super().step(phase, done, total)


def test_the_first_eta_of_ser_train_leaves_a_slow_set_up_out(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timed from the fold's start, the first step's 1000 s made the first ETA hours; at
    the steady pace (a second a step) it is under a minute, the set-up said apart."""
    monkeypatch.setattr("ser.commands.train.Heartbeat", SlowStart)
    args = ["train", "--store", store, "--features", "is13", "--fusion", "none", "--classes",
            "4", "--protocol", "session5", "--epochs", "3", "--batch-size", "4", "--device",
            "cpu", "--out", tmp_path]  # fmt: skip
    result = ser(*args)
    assert result.exit_code == 0, result.output
    beats = [line for line in result.stderr.splitlines() if " s a step, " in line]
    assert beats and "1.00 s a step, set-up 16:4" in beats[0]  # 1000 s, said once
    assert beats[0].split("eta ~")[1].count(":") == 1  # m:ss, not h:mm:ss


def test_a_dry_run_of_unimodal_cells_times_them(store: Path, tmp_path: Path) -> None:
    spec = tmp_path / "uni.toml"
    spec.write_text(
        "[fixed]\nfusion = 'none'\nfeatures = 'is13'\nepochs = 2\nprotocol = 'session5'\n"
        "classes = '4'\n[[cells]]\nlabel = 'audio'\n"
    )
    out = tmp_path / "sweep"
    result = ser("sweep", str(spec), "--store", store, "--out", out, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "probe: unimodal: timed on audio: " in result.stdout
    assert "(from 1 timed probe(s) on this machine)" in result.stdout
    assert not out.exists()  # the probe trained in a folder of its own, since gone
