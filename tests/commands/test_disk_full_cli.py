"""A full disk under `ser extract`, `ser train`, `ser sweep` and `ser predict`: one line
naming the file and what it holds, exit 2, no traceback; the same command run again once
there is room finishes, keeping what was written before. The full disk is a write
patched to fail as the kernel does (ENOSPC)."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import ser.cache.shards as shards
import ser.cache.zarr_backend as zarr_backend
import ser.train.checkpoint as checkpoint
from ser.cache import FeatureStore
from ser.cli import main

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def ser(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line(result: Result) -> str:
    """The error a full disk gave: exit 2, one `error:` line, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "run the same command again" in errors[0]
    return errors[0]


def failing_from(call: int, error: OSError, write: Callable[..., Any]) -> Callable[..., Any]:
    """`write`, failing with `error` from its `call`th call on."""
    calls = [0]

    def patched(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] >= call:
            raise error
        return write(*args, **kwargs)

    return patched


@pytest.mark.slow
def test_extract_on_a_full_disk_resumes_with_the_shards_written(
    synthetic_corpus: tuple[Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "f.zarr"
    args = ("extract", synthetic_corpus[0], "--store", store, "--features", "logmel")
    args += ("--shard-size", "16", "--quiet")
    # the disk full while the third shard's rows are staged (a set whose row counts only
    # extracting tells: placed rows are `test_extract_placed_on_a_full_disk_resumes`)
    monkeypatch.setattr(FeatureStore, "scattered_writer", lambda *args: None)
    monkeypatch.setattr(shards, "save_rows", failing_from(3, ENOSPC, shards.save_rows))
    line = one_line(ser(*args))
    assert line.startswith("error: the disk is full (No space left on device) writing ")
    assert "writing shard 2 of logmel80 to " in line and "shard-000002.npy" in line
    assert "it resumes where it stopped, keeping what was written before" in line
    monkeypatch.undo()
    assert FeatureStore.open(store).done_shards("logmel80") == {0, 1}
    # Then the store's own arrays: every shard is in, consolidating fills the disk.
    write_blocks = zarr_backend.ZarrBackend.write_blocks
    monkeypatch.setattr(zarr_backend.ZarrBackend, "write_blocks", failing_from(1, ENOSPC, None))
    line = one_line(ser(*args))
    assert (
        f"error: the disk is full (No space left on device) writing the store's sets to {store};"
        in line
    )
    monkeypatch.setattr(zarr_backend.ZarrBackend, "write_blocks", write_blocks)
    done = ser(*args)
    assert done.exit_code == 0, done.output
    finished = FeatureStore.open(store)
    assert finished.info("logmel80").complete and finished.verify() == []


@pytest.mark.slow
def test_extract_placed_on_a_full_disk_resumes(
    synthetic_corpus: tuple[Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows written straight into the store: the disk fills as a shard's rows go in place;
    the shards recorded before are kept, the one under way is written again."""
    store = tmp_path / "f.zarr"
    args = ("extract", synthetic_corpus[0], "--store", store, "--features", "logmel")
    args += ("--shard-size", "16", "--quiet")
    monkeypatch.setattr(os, "pwrite", failing_from(40, ENOSPC, os.pwrite))
    line = one_line(ser(*args))
    assert line.startswith(
        f"error: the disk is full (No space left on device) writing the store's sets to {store};"
    )
    monkeypatch.undo()
    kept = FeatureStore.open(store).done_shards("logmel80")
    assert kept == set(range(len(kept))) and len(kept) >= 1
    done = ser(*args)
    assert done.exit_code == 0, done.output
    finished = FeatureStore.open(store)
    assert finished.info("logmel80").complete and finished.verify() == []


@pytest.fixture(scope="module")
def store_path(labelled_stores: Callable[..., Path]) -> Path:
    return labelled_stores({"is13": ("is13", "audio", "utterance", 7, "float32")}, per_dialog=4)


SMALL = ("--features", "is13", "--fusion", "none", "--classes", "4", "--epochs", "2")
SMALL += ("--batch-size", "8", "--device", "cpu", "--processes", "1", "--threads", "1")


def test_train_on_a_full_disk_resumes_with_the_folds_it_saved(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One member a group: the second's checkpoint does not fit; the first is kept."""
    args = ("train", "--store", store_path, *SMALL, "--seeds", "2", "--members-at-once", "1")
    args += ("--protocol", "session5", "--val", "none", "--out", tmp_path, "--name", "run")
    monkeypatch.setattr(checkpoint, "save_file", failing_from(2, ENOSPC, checkpoint.save_file))
    line = one_line(ser(*args))
    assert "error: the disk is full (No space left on device) writing the checkpoint " in line
    assert f"to {tmp_path / 'run' / 'checkpoints'}" in line and ".safetensors;" in line
    monkeypatch.undo()
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert len(record["folds"]) == 1 and not record["complete"]
    done = ser(*args, "--json")
    assert done.exit_code == 0, done.output
    again = json.loads((tmp_path / "run" / "run.json").read_text())
    assert again["complete"] and again["folds"][0] == record["folds"][0]  # kept, not retrained


def test_sweep_on_a_full_disk_stops_and_resumes_with_the_cells_it_finished(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a 'failed' line per cell left: the sweep stops at the first full disk."""
    spec = tmp_path / "two.toml"
    spec.write_text('name = "two"\n[grid]\nlr = [0.01, 0.02]\n')
    fixed = [
        x for a, b in zip(SMALL[::2], SMALL[1::2], strict=True) for x in ("--fix", f"{a[2:]}={b}")
    ]
    args = ("sweep", spec, "--store", store_path, "--out", tmp_path / "out", *fixed)
    args += ("--fix", "seeds=1", "--fix", "protocol=session5", "--fix", "val=none")
    first_cell: list[Path] = []
    write_text = Path.write_text

    def full_after_the_first_cell(path: Path, *a: Any, **k: Any) -> int:
        if path.name.startswith(".run.json."):  # atomic's temp file of a run record
            first_cell[:] = first_cell or [path.parent]
            if path.parent != first_cell[0]:
                raise ENOSPC
        return write_text(path, *a, **k)

    monkeypatch.setattr(Path, "write_text", full_after_the_first_cell)
    line = one_line(ser(*args))
    assert "writing the run record to " in line and f"{tmp_path / 'out' / 'cells'}" in line
    monkeypatch.undo()
    done = ser(*args)
    assert done.exit_code == 0, done.output
    assert "sweep two: 2 cells, 1 trained, 1 finished before" in done.output


def test_predict_on_a_full_disk_prints_its_predictions_and_names_the_csv(
    trained_run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "p.csv"
    args = ("predict", "--run", trained_run.run_dir, trained_run.wavs[0], "--text", "hello")
    args += ("--device", "cpu", "--json", "--csv", out)
    write_text = Path.write_text
    monkeypatch.setattr(Path, "write_text", failing_from(1, ENOSPC, write_text))
    first = ser(*args)
    line = one_line(first)
    assert json.loads(first.stdout)["predictions"][0]["label"]  # printed, not lost
    assert f"writing the predictions to {out}; " in line
    assert line.endswith("again: it predicts anew (the predictions are printed above)")
    monkeypatch.undo()
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no half file, no temp
    done = ser(*args)
    assert done.exit_code == 0, done.output
    assert out.read_text().startswith("path,label,")
