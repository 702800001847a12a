"""Faults around a trained run's checkpoints, `ser predict` and `ser export`, tried as a
user meets them: a checkpoint's sidecar deleted or its weights cut short (the command
names the file and refuses, unless told which members to use), a killed export's staging
folder (the next export removes it and says so), a full disk under an export (one line,
nothing half written), and an export without its encoders (it names the folder it needs).
That nothing of this machine is in an exported folder: tests/export/test_onnx.py, beside
the other tests of the same export.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from ser.export.folder import CARD, CONFIG, MODEL
from tests.refused import one_line, ser

MEMBERS = ("seed0_session5", "seed1_session5", "seed2_session5")


@pytest.fixture(scope="module")
def three_seeds(trained_run: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A text-only run of three seeds on the predict tests' store (no audio model: cheap)."""
    from ser.models import ModelConfig
    from ser.train.recipe import TrainConfig, train

    out = tmp_path_factory.mktemp("three-seeds")
    train(
        TrainConfig(
            store=str(trained_run.store), features=("bert",), model=ModelConfig(fusion="none"),
            classes="4", protocol="session5", epochs=1, batch_size=8, seeds=3, device="cpu",
            out=str(out), name="three",
        )
    )  # fmt: skip
    return out / "three"


def _copy(run: Path, tmp_path: Path) -> Path:
    """A copy of `run` to damage (its record names the same store)."""
    copy = tmp_path / "runs" / run.name
    shutil.copytree(run, copy)
    return copy


def _predict(run: Path, wav: str, *more: str) -> Result:
    return ser("predict", "--run", run, wav, "--text", "hi", "--device", "cpu", *more)


# -- a member missing or unreadable -----------------------------------------------------


def test_predict_names_a_deleted_sidecar_and_refuses_unless_told(
    three_seeds: Path, trained_run: Any, tmp_path: Path
) -> None:
    run = _copy(three_seeds, tmp_path)
    sidecar = run / "checkpoints" / f"{MEMBERS[1]}.json"
    sidecar.unlink()
    line = one_line(_predict(run, trained_run.wavs[0]))
    assert f"checkpoint {sidecar} (the sidecar of {MEMBERS[1]}) is missing" in line
    assert f"--checkpoint={MEMBERS[0]},{MEMBERS[2]}" in line
    told = _predict(run, trained_run.wavs[0], "--checkpoint", f"{MEMBERS[0]},{MEMBERS[2]}")
    assert told.exit_code == 0, told.output
    assert f"2 checkpoint(s): {MEMBERS[0]}, {MEMBERS[2]}" in told.stdout


def test_a_cut_short_or_deleted_weights_file_is_named(
    three_seeds: Path, trained_run: Any, tmp_path: Path
) -> None:
    run = _copy(three_seeds, tmp_path)
    cut = run / "checkpoints" / f"{MEMBERS[0]}.safetensors"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    gone = run / "checkpoints" / f"{MEMBERS[2]}.safetensors"
    gone.unlink()
    line = one_line(_predict(run, trained_run.wavs[0]))
    assert f"checkpoint {cut} (seed 0, fold session5) cannot be read" in line
    assert f"checkpoint {gone} (the weights of seed 2, fold session5) is missing" in line
    assert f"--checkpoint={MEMBERS[1]}, or " in line
    asked = one_line(_predict(run, trained_run.wavs[0], "--checkpoint", MEMBERS[0]))
    assert f"checkpoint {cut} (seed 0, fold session5) cannot be read" in asked


def flip_bytes(path: Path) -> None:
    """Change bytes among a weights file's tensors, past its header (a failing disk, a
    bad copy): safetensors still reads the file."""
    data = bytearray(path.read_bytes())
    data[-40:-36] = bytes(b ^ 0x7F for b in data[-40:-36])
    path.write_bytes(bytes(data))


def test_weights_whose_bytes_changed_are_named_not_predicted_with(
    three_seeds: Path, trained_run: Any, tmp_path: Path
) -> None:
    # Such weights predicted NaN (or other numbers) for every input, with exit code 0.
    run = _copy(three_seeds, tmp_path)
    out = tmp_path / "model"
    assert ser("export", run, out, "--members", MEMBERS[0]).exit_code == 0
    flip_bytes(run / "checkpoints" / f"{MEMBERS[1]}.safetensors")
    line = one_line(_predict(run, trained_run.wavs[0]))
    assert f"{MEMBERS[1]}.safetensors (seed 1, fold session5) is damaged (its bytes" in line
    assert f"--checkpoint={MEMBERS[0]},{MEMBERS[2]}" in line
    flip_bytes(out / MODEL)
    said = one_line(ser("predict", "--model", out, trained_run.wavs[0], "--text", "hi"))
    assert f"{out / MODEL} is damaged (its bytes differ from those written" in said


def test_export_refuses_a_run_with_a_member_gone_and_counts_what_it_writes(
    three_seeds: Path, tmp_path: Path
) -> None:
    run = _copy(three_seeds, tmp_path)
    sidecar = run / "checkpoints" / f"{MEMBERS[1]}.json"
    sidecar.unlink()
    out = tmp_path / "model"
    for members in ("all", "best", "2"):
        line = one_line(ser("export", run, out, "--members", members))
        assert f"checkpoint {sidecar} (the sidecar of {MEMBERS[1]}) is missing" in line
        assert f"--members={MEMBERS[0]},{MEMBERS[2]}" in line
    assert not out.exists()
    done = ser("export", run, out, "--members", f"{MEMBERS[0]},{MEMBERS[2]}")
    assert done.exit_code == 0, done.output
    config = json.loads((out / CONFIG).read_text())
    assert [m["key"] for m in config["members"]] == [MEMBERS[0], MEMBERS[2]]
    assert config["run"]["seeds"] == [0, 2]
    card = (out / CARD).read_text()
    assert "mean over 3 seeds)" not in card and "- Members (2): " in card
    assert "not of this folder's 2" in card and "This folder holds 2 member(s)" in card


# -- a killed export's staging folder ---------------------------------------------------


def _dead_pid() -> int:
    """The id of a process that has ended (not reused this soon)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_export_s_staging_folder_is_removed_by_the_next(
    audio_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "model"
    dead = tmp_path / f".model.partial-{_dead_pid()}"
    (dead / "encoders").mkdir(parents=True)
    (dead / MODEL).write_bytes(b"\0" * 1024)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".model.partial-{sleeper.pid}"
        live.mkdir()
        other = tmp_path / ".other.partial-1"  # another target's: not this export's to judge
        other.mkdir()
        done = ser("export", audio_run, out)
        assert done.exit_code == 0, done.output
        assert f"removed a staging folder left by a killed export: {dead}" in done.stderr
        assert not dead.exists() and live.is_dir() and other.is_dir()
        assert str(live) not in done.stderr
    finally:
        sleeper.kill()
        sleeper.wait()


# -- a full disk ------------------------------------------------------------------------


@pytest.mark.parametrize("raised", ["oserror", "safetensors"])
def test_an_export_onto_a_full_disk_is_one_line_and_leaves_the_target(
    audio_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raised: str
) -> None:
    """The weights' writer fails as on a full disk: as the kernel says it (ENOSPC), and
    as safetensors' Rust writer words it (its own exception, the OS error in its text)."""
    from safetensors import SafetensorError

    import ser.export.write as write

    out = tmp_path / "model"
    assert ser("export", audio_run, out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    full: Exception = (
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if raised == "oserror"
        else SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No '
            'space left on device" })'
        )
    )

    def no_room(*args: Any, **kwargs: Any) -> None:
        Path(args[1]).write_bytes(b"\0" * 16)  # what a full disk leaves: a cut short file
        raise full

    monkeypatch.setattr(write, "save_file", no_room)
    line = one_line(ser("export", audio_run, out, "--members", "all", "--overwrite"))
    assert "error: the disk is full (No space left on device) writing the exported weights" in line
    assert MODEL in line and "run the same command again: it writes the export anew" in line
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


# -- an export without its encoders -------------------------------------------------


def test_an_export_without_its_encoders_asks_for_the_folder_by_its_name(
    audio_run: Path, trained_run: Any, tiny_models: Any, tmp_path: Path
) -> None:
    """Its local model is named, not located: on this machine too, `--encoder` gives it."""
    out = tmp_path / "model"
    assert ser("export", audio_run, out).exit_code == 0
    wav = trained_run.wavs[0]
    line = one_line(ser("predict", "--model", out, wav, "--device", "cpu"))
    assert "needs the encoder tiny-hubert (weights sha256 " in line and "--encoder FOLDER" in line
    given = ser("predict", "--model", out, wav, "--device", "cpu", "--encoder", tiny_models.hubert)
    assert given.exit_code == 0, given.output
