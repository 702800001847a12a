"""Faults of `ser train` and `ser sweep` a user meets: a full disk while the checkpoints
of a stack of members are written (one line; the members saved before it are kept and
the same command trains only the others), Ctrl-C of a sweep (one line saying how to
resume), and a training-time estimate that counts the padding of long utterances."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors import SafetensorError

import ser.train.checkpoint as checkpoint
import ser.train.processes as train_processes
import ser.train.recipe as recipe
from tests.faults.test_cli_faults import quiet, started
from tests.refused import one_line, ser
from tests.stores import labelled_store

IS13 = ("is13", "audio", "utterance", 7, "float32")
SMALL = ("--features", "is13", "--fusion", "none", "--classes", "4", "--epochs", "2")
SMALL += ("--batch-size", "8", "--device", "cpu", "--processes", "1", "--threads", "1")
# What safetensors' Rust writer raises on a full disk (no errno: its text says it).
FULL = "Error while serializing: I/O error: No space left on device (os error 28)"


@pytest.fixture(scope="module")
def store(labelled_stores: Callable[..., Path]) -> Path:
    return labelled_stores({"is13": IS13}, per_dialog=4)


def full_from(call: int, write: Callable[..., Any]) -> Callable[..., Any]:
    """`write`, failing as safetensors does on a full disk from its `call`th call on."""
    calls = [0]

    def patched(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] >= call:
            raise SafetensorError(FULL)
        return write(*args, **kwargs)

    return patched


def counting(trained: list[int]) -> Callable[..., Any]:
    """`train_group`, each group's member count noted in `trained`."""
    train_group = recipe.train_group

    def spy(group: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
        trained.append(len(group))
        return train_group(group, *args, **kwargs)

    return spy


def folds(run_dir: Path) -> list[dict[str, Any]]:
    record = json.loads((run_dir / "run.json").read_text())
    assert record["complete"]
    return list(record["folds"])


def results(run_dir: Path) -> list[tuple[Any, ...]]:
    return [(f["seed"], f["fold"], f["metrics"], f["curves"]) for f in folds(run_dir)]


@pytest.mark.slow
def test_a_full_disk_among_stacked_checkpoints_keeps_those_written(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three members stacked in one group; the third's checkpoint does not fit."""
    args = ("train", "--store", store, *SMALL, "--seeds", "3", "--members-at-once", "3")
    args += ("--protocol", "session5", "--val", "none", "--out", tmp_path, "--name")
    monkeypatch.setattr(checkpoint, "save_file", full_from(3, checkpoint.save_file))
    line = one_line(ser(*args, "run"))
    assert line.startswith("error: the disk is full (No space left on device) writing the ")
    assert "checkpoint seed2_session5 to " in line and "seed2_session5.safetensors;" in line
    assert "run the same command again" in line
    monkeypatch.undo()
    folder = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == [
        f"seed{s}_session5.{e}" for s in (0, 1) for e in ("json", "safetensors")
    ]  # no temp file, no half checkpoint
    trained: list[int] = []
    monkeypatch.setattr(recipe, "train_group", counting(trained))
    again = ser(*args, "run")
    assert again.exit_code == 0, again.output
    assert trained == [1]  # seed 2 alone: seeds 0 and 1 were kept
    assert "resuming run: 2 (seed, fold) run(s) already done" in again.output
    # The kept members are the stack's as a clean run trains them; the one trained again
    # is a one-member group's (a member's draws are its group's).
    for name, at_once in (("stacked", "3"), ("alone", "1")):
        clean = ser(*args, name, "--members-at-once", at_once)
        assert clean.exit_code == 0, clean.output
    ours = results(tmp_path / "run")
    assert ours[:2] == results(tmp_path / "stacked")[:2]
    assert ours[2] == results(tmp_path / "alone")[2]


@pytest.mark.slow
def test_sweep_ctrl_c_says_what_it_keeps_and_how_to_resume(store: Path, tmp_path: Path) -> None:
    """Click's "Aborted!" and exit 1 before: now one line, exit 130 as `ser train`'s."""
    spec = tmp_path / "two.toml"
    spec.write_text('name = "two"\n[grid]\nepochs = [2, 40]\n')
    out = tmp_path / "out"
    fixed = [x for a, b in zip(SMALL[::2], SMALL[1::2], strict=True) if a != "--epochs"
             for x in ("--fix", f"{a[2:]}={b}")]  # fmt: skip
    args = ("sweep", spec, "--store", store, "--out", out, *fixed)
    args += ("--fix", "seeds=1", "--fix", "protocol=session5", "--fix", "val=none")

    def one_finished() -> bool:
        for path in out.glob("cells/*/run.json"):
            with contextlib.suppress(OSError, ValueError):
                if json.loads(path.read_text())["complete"]:
                    return True
        return False

    with started(*args, folder=tmp_path) as sweep:
        sweep.wait_for(one_finished)
        code, stderr = sweep.ctrl_c()
    assert code == 130, stderr
    quiet(stderr)
    last = stderr.strip().splitlines()[-1]
    said = re.fullmatch(
        r"interrupted: 1 of 2 cells finished, kept in (\S+) with the finished folds of the "
        r"others; to resume, run the same command again: (.+)",
        last,
    )
    assert said is not None, stderr
    assert said[1] == str(out)
    resume = shlex.split(said[2])
    assert resume[:2] == ["ser", "sweep"]
    done = ser(*resume[1:])
    assert done.exit_code == 0, done.output
    assert "sweep two: 2 cells, 1 trained, 1 finished before" in done.output


def frames_store(path: Path, longest: int) -> Path:
    """`labelled_store`'s utterances with a frame-level audio set of 2-6 frames each, the
    first's `longest` frames."""
    store = labelled_store(path, {})
    rng = np.random.default_rng(0)
    n = len(store.manifest)
    rows = {i: rng.normal(size=(longest if i == 0 else 2 + i % 5, 4)) for i in range(n)}
    attrs = {"extractor": "logmel", "modality": "audio", "level": "frame", "dim": 4,
             "dtype": "float32", "frame_shift": 0.02}  # fmt: skip
    store.begin_feature_set("frames", attrs)
    store.shard_writer("frames").write(0, rows, {})
    store.consolidate("frames", 1)
    return path


class Chosen(Exception):
    """Raised once the execution is chosen: the estimate is all the test wants."""


def test_the_training_estimate_counts_the_padding_of_a_long_utterance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches are padded to their longest member: one utterance 50x the others' length
    made an MSMSER epoch take 98 s against an estimate of under 40 s."""
    works: list[int] = []

    def chosen(training: Any, **kwargs: Any) -> Any:
        works.append(training.work)
        raise Chosen

    monkeypatch.setattr(train_processes, "for_training", chosen)
    for longest in (4, 200):
        store = frames_store(tmp_path / f"{longest}.zarr", longest)
        args = ("train", "--store", store, "--features", "frames", "--fusion", "mit")
        args += ("--d-model", "8", "--heads", "2", "--classes", "4", "--epochs", "2")
        args += ("--device", "cpu", "--protocol", "session5", "--out", tmp_path / "runs")
        result = ser(*args, "--name", str(longest))
        assert isinstance(result.exception, Chosen), result.output
    plain, padded = works
    assert padded > 3 * plain  # its batch of 8 counts 200 / 4 = 50 times over
