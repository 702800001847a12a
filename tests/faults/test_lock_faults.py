"""A store or run another process writes, and stores that are not what they seem: a
reader says who writes it (pid, host, the `ser` command) instead of calling it damaged;
a set folder this user may not read keeps no other set from training, and verify names
it; a Zarr v2 folder, a store copied without its receipt and the precision a set was
computed at are each said in one line.

The writer is this process holding the lock as `ser` would (its command line in
`sys.argv`): `writer` looks through a file descriptor of its own, as another process
does. Tests run as root, whom `chmod` does not stop: an unreadable folder is a patched
read that raises `PermissionError` for what lies in it.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from ser.cache import FeatureStore
from ser.cache.lock import try_lock
from ser.cache.receipts import receipt_path, write_receipt
from ser.train.record import RUN_LOCK
from tests.refused import one_line, ser
from tests.stores import damage_chunk

SETS = {
    "is13": ("is13", "audio", "utterance", 4, "float16"),
    "logmel80": ("logmel", "audio", "frame", 3, "float16"),
}
HOST = socket.gethostname()


@pytest.fixture
def store(labelled_stores: Callable[..., Path], tmp_path: Path) -> Path:
    """A private copy of a labelled store with two sets."""
    copy = tmp_path / "features.zarr"
    shutil.copytree(labelled_stores(SETS), copy)
    return copy


def train_args(store: Path, tmp_path: Path, features: str) -> list[str | Path]:
    return ["train", "--store", store, "--features", features, "--fusion", "none", "--classes",
            "4", "--epochs", "1", "--protocol", "session5", "--device", "cpu", "--out",
            tmp_path / "runs"]  # fmt: skip


def as_command(monkeypatch: pytest.MonkeyPatch, *words: str | Path) -> str:
    """This process seen as `ser WORDS` (what a lock it takes records); that line."""
    monkeypatch.setattr(sys, "argv", ["/venv/bin/ser", *map(str, words)])
    return " ".join(["ser", *map(str, words)])


def writing(store: Path, command: str) -> str:
    """What a reader says of `store` while `command` holds its lock from this process."""
    return (
        f"error: {store} is being written by another ser process (pid {os.getpid()} on "
        f"{HOST}) running `{command}`; wait for it to finish, then run this again"
    )


def test_train_while_a_repair_rewrites_a_damaged_set_is_told_it_is_being_written(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ser train` read the chunk `ser store repair` was about to write back and called
    the set damaged, advising the repair already running."""
    fs = FeatureStore.open(store, mode="a")
    damage_chunk(fs, "logmel80/data", chunk=0)
    command = as_command(monkeypatch, "store", "repair", store)
    with fs.lock():
        for args in (train_args(store, tmp_path, "logmel80"), ["store", "verify", store]):
            line = one_line(ser(*args))
            assert line == writing(store, command), args
    assert "logmel80" in one_line(ser(*train_args(store, tmp_path, "logmel80")))  # damaged


def test_train_with_views_while_augment_writes_them_is_told_it_is_being_written(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ser train --views` while `ser extract --augment` wrote a view said the view was
    incomplete: "run the same `ser extract --augment` command again"."""
    fs = FeatureStore.open(store, mode="a")
    clean = {k: v for k, v in fs.info("is13").attrs.items() if k not in ("data_sha256",)}
    clean = {k: v for k, v in clean.items() if k not in ("fingerprint", "complete")}
    fs.begin_feature_set("is13.speed0.9", {**clean, "view_of": "is13", "view": "speed=0.9"})
    command = as_command(monkeypatch, "extract", "/data/IEMOCAP", "--augment", "speed=0.9")
    with fs.lock():
        line = one_line(ser(*train_args(store, tmp_path, "is13"), "--views", "all"))
        assert line == writing(store, command)
        # A set the writer does not touch still trains.
        result = ser(*train_args(store, tmp_path, "logmel80"))
        assert result.exit_code == 0, result.output


def test_export_and_predict_of_a_run_being_trained_are_told_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ser export` and `ser predict --run` of a run another `ser train` still trains read
    its unfinished folder: "not a run that can be exported", "holds no checkpoints"."""
    run = tmp_path / "runs" / "mit"
    run.mkdir(parents=True)
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"")
    command = as_command(monkeypatch, "train", "--store", "f.zarr", "--name", "mit")
    said = (
        f"error: {run} is being trained by another ser process (pid {os.getpid()} on {HOST}) "
        f"running `{command}`; wait for it to finish, then run this again"
    )
    with try_lock(run / RUN_LOCK) as holder:
        assert holder is None
        assert one_line(ser("export", run, tmp_path / "out")) == said
        assert one_line(ser("predict", "--run", run, wav)) == said
    assert "is being trained" not in ser("export", run, tmp_path / "out").output  # free


def test_a_lock_without_a_command_names_the_process_alone(store: Path, tmp_path: Path) -> None:
    """A writer that runs no `ser` command (the Python API) is named by pid and host."""
    fs = FeatureStore.open(store, mode="a")
    damage_chunk(fs, "logmel80/data", chunk=0)
    with fs.lock():
        line = one_line(ser(*train_args(store, tmp_path, "logmel80")))
    assert line == (
        f"error: {store} is being written by another ser process (pid {os.getpid()} on "
        f"{HOST}); wait for it to finish, then run this again"
    )


@pytest.fixture
def unreadable_folder(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """`deny(folder)`: whatever lies in `folder` cannot be read or looked at, and the
    folder cannot be listed, as with `chmod 000` for anyone but root."""
    denied: list[Path] = []

    def inside(path: Any, listing: bool) -> bool:
        if isinstance(path, int):
            return False
        p = Path(os.fsdecode(path)).absolute()
        return any(p.is_relative_to(d) and (listing or p != d) for d in denied)

    def wrap(call: Callable[..., Any], listing: bool = False) -> Callable[..., Any]:
        def denying(path: Any, *args: Any, **kwargs: Any) -> Any:
            if inside(path, listing):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return call(path, *args, **kwargs)

        return denying

    monkeypatch.setattr(os, "stat", wrap(os.stat))
    monkeypatch.setattr(os, "listdir", wrap(os.listdir, listing=True))
    monkeypatch.setattr(os, "scandir", wrap(os.scandir, listing=True))
    monkeypatch.setattr(io, "open", wrap(io.open))
    monkeypatch.setattr(builtins, "open", wrap(builtins.open))
    return denied.append


def test_an_unreadable_set_folder_stops_no_other_set_and_verify_names_it(
    store: Path, tmp_path: Path, unreadable_folder: Callable[[Path], None]
) -> None:
    """A set's folder this user may not read stopped training on any other set (one line:
    its zarr.json, Permission denied) and verify, info with it."""
    folder = store / "logmel80"
    unreadable_folder(folder)
    trained = ser(*train_args(store, tmp_path, "is13"))
    assert trained.exit_code == 0, trained.output
    verify = ser("store", "verify", store)
    assert verify.exit_code == 1 and "Traceback" not in verify.output
    said = (
        f"  - logmel80: {folder} cannot be read (Permission denied): give this user read "
        f"access to it (chmod -R u+rX {folder}), then run this again"
    )
    assert verify.stdout.splitlines()[:2] == [f"{store}: 1 problems", said]
    assert "repair" not in verify.stdout.replace("then run this again", "")
    info = ser("store", "info", store)
    assert info.exit_code == 0 and "unreadable (below)" in info.stdout
    assert f"unreadable: {store}: feature set 'logmel80': {folder} cannot be read" in info.stdout
    asked = one_line(ser(*train_args(store, tmp_path, "logmel80")))
    assert f"{folder} cannot be read (Permission denied)" in asked and "repair" not in asked


def test_a_zarr_v2_folder_is_said_to_be_one(
    synthetic_corpus: tuple[Path, Any], tmp_path: Path
) -> None:
    """A Zarr v2 store given as a store: "[Errno 39] Directory not empty" (init,
    extract), "no feature store here" (info, verify)."""
    old = tmp_path / "old.zarr"
    zarr.open_group(str(old), mode="w", zarr_format=2).create_array("x", shape=(3,), dtype="f4")
    said = (
        f"error: {old}: a Zarr v2 store (it has .zgroup, no zarr.json), which ser does not "
        "read: ser's stores are Zarr v3; give a new path (ser extract or ser store init "
        "makes the store there), and bring features computed elsewhere in with `ser store "
        "import`"
    )
    commands: list[list[str | Path]] = [
        ["store", "info", old],
        ["store", "verify", old],
        ["store", "init", old, synthetic_corpus[0]],
    ]
    for args in commands:
        assert one_line(ser(*args)) == said, args
    assert sorted(p.name for p in old.iterdir()) == [".zattrs", ".zgroup", "x"]  # untouched


def test_a_store_copied_without_its_receipt_says_missing_sets_cannot_be_found(
    store: Path, tmp_path: Path
) -> None:
    """`cp -r features.zarr elsewhere/` leaves the receipt behind: a set folder deleted from
    the copy verified "all healthy", with no word that there was nothing to check against."""
    write_receipt(store, "key", {"sets": []})
    copy = tmp_path / "elsewhere" / store.name
    shutil.copytree(store, copy)
    shutil.rmtree(copy / "logmel80")
    verify = ser("store", "verify", copy)
    assert verify.exit_code == 0, verify.output
    receipt = receipt_path(store).name
    assert verify.stdout.splitlines() == [
        f"ok: {copy}: 1 feature sets, all healthy",
        f"note: no receipt beside the store ({receipt}), so a set deleted from it cannot be "
        f"found: a copy of a store needs its receipt copied beside it too (cp SOURCE/"
        f"{receipt} {copy.parent}/), or run the `ser extract` that made the store on it, "
        "which writes one (and extracts a set that is gone)",
    ]
    assert json.loads(ser("store", "verify", copy, "--json").stdout)["receipt"] is None
    shutil.copy2(receipt_path(store), receipt_path(copy))  # as the note says
    found = FeatureStore.open(copy).verify_report()
    assert [p.split(":")[0] for p in found.problems] == ["logmel80"]
    # a set whose provenance lacks its settings (this one's sample rate) is never a crash
    # of verify: no flags make it again, so its command is `ser store repair`
    verify = ser("store", "verify", copy)
    assert verify.exit_code == 1 and "Traceback" not in verify.output, verify.output
    assert f"ser store repair {copy}" in verify.output


def test_info_shows_the_precision_a_set_was_computed_at(store: Path) -> None:
    """A set extracted with `--precision fp32` (stored as float16) showed float16 alone,
    in the table and in --json."""
    fs = FeatureStore.open(store, mode="a")
    attrs = {"extractor": "hubert", "modality": "audio", "level": "frame", "dim": 5,
             "dtype": "float16", "precision": "fp32"}  # fmt: skip
    fs.begin_feature_set("hubert.L2", attrs)
    fs.shard_writer("hubert.L2").write(0, {i: np.ones((2, 5)) for i in range(len(fs.manifest))})
    fs.consolidate("hubert.L2", 1)
    table = ser("store", "info", store)
    assert table.exit_code == 0, table.output
    cells = {cols[0]: cols for line in table.stdout.splitlines() if (cols := _cells(line))}
    assert (cells["hubert.L2"][4], cells["hubert.L2"][5]) == ("float16", "fp32")
    assert (cells["is13"][4], cells["is13"][5]) == ("float16", "unknown")  # records none
    sets = json.loads(ser("store", "info", store, "--json").stdout)["feature_sets"]
    assert (sets["hubert.L2"]["dtype"], sets["hubert.L2"]["precision"]) == ("float16", "fp32")
    assert sets["is13"]["precision"] is None


def _cells(line: str) -> list[str]:
    """A table row's cells ([] for a rule or the title)."""
    return [c.strip() for c in line.strip().strip("│").split("│")] if "│" in line else []
