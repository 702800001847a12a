"""`ser store import` stopped part-way, on Zarr and HDF5: killed (the rows written are
kept and the same command goes on from them, never writing them again), interrupted
(Ctrl-C says the command that goes on), out of disk (one line; the same command goes
on), killed after its last row (completed by the same command); and a record of its
progress that does not fit is no harm."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ser.cache.store as store_module
from ser.cache import FeatureStore, Manifest
from ser.cache.placed import RECORD, PlacedRows
from ser.synth.manifest import example_columns
from tests.refused import one_line, ser

REPO = Path(__file__).resolve().parents[2]
IDS = [f"Ses01F_impro01_F{i:03d}" for i in range(40)]
DIM = 3
CHUNK_ROWS = 7
ARGS = ["--name", "emb", "--modality", "audio", "--level", "frame"]


def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {u: rng.standard_normal((1 + i % 4, DIM)).astype(np.float32) for i, u in enumerate(IDS)}


def rows() -> int:
    return sum(len(a) for a in arrays().values())


@pytest.fixture(params=[".zarr", ".h5"], ids=["zarr", "hdf5"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    """A store of IDS and an .npz of frames for all of them."""
    store = tmp_path / f"f{request.param}"
    FeatureStore.create(store, Manifest.from_columns(example_columns(IDS)))
    np.savez(tmp_path / "emb.npz", **arrays())
    return store, tmp_path / "emb.npz"


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "CHUNK_BYTES", CHUNK_ROWS * DIM * 4)


def killed(store: Path, npz: Path, code: str) -> None:
    """`ser store import STORE NPZ` in chunks of `CHUNK_ROWS` rows, killed (``os._exit``)
    where ``code`` (patching the modules imported below) says."""
    script = textwrap.dedent(
        f"""
        import os
        import ser.cache.placed as placed
        import ser.cache.store as store_module
        from ser.cli import main
        store_module.CHUNK_BYTES = {CHUNK_ROWS * DIM * 4}
        """
    ) + textwrap.dedent(code)
    script += f"\nmain(['store', 'import', {str(store)!r}, {str(npz)!r}, *{ARGS!r}])\n"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert done.returncode == 9, done.stderr.decode()


KILLED_AFTER_TWO_CHUNKS = """
flush, flushed = placed.PlacedRows._flush, []
def dies(self):
    if self._fill:
        flushed.append(1)
    if len(flushed) == 3:
        os._exit(9)
    flush(self)
placed.PlacedRows._flush = dies
"""


def written_rows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows each flush of this process writes, from here on."""
    written: list[int] = []
    flush = PlacedRows._flush

    def counted(self: PlacedRows) -> None:
        written.append(self._fill)
        flush(self)

    monkeypatch.setattr(PlacedRows, "_flush", counted)
    return written


def expected() -> np.ndarray:
    return np.concatenate([arrays()[u] for u in IDS])


def test_a_killed_import_goes_on_from_the_rows_it_wrote(
    source: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, npz = source
    killed(store, npz, KILLED_AFTER_TWO_CHUNKS)
    info = FeatureStore.open(store).info("emb")
    assert not info.complete and info.rows == 2 * CHUNK_ROWS
    assert f"incomplete ({2 * CHUNK_ROWS} rows written)" in ser("store", "info", store).stdout
    verify = ser("store", "verify", store)
    assert verify.exit_code == 1
    assert "emb: incomplete (import has not finished)" in verify.stdout
    again = f"ser store import {store} emb.npz --name emb --modality audio --level frame "
    assert f"repair emb: {again}--dtype float32\n" in verify.stdout  # no --overwrite: it goes on
    written = written_rows(monkeypatch)
    done = ser("store", "import", store, npz, *ARGS)
    assert done.exit_code == 0, done.output
    assert sum(w for w in written if w) == rows() - 2 * CHUNK_ROWS  # none written again
    fs = FeatureStore.open(store)
    np.testing.assert_array_equal(fs.read("emb").data, expected())
    assert fs.verify() == []  # the checksum recorded: the rows read back, then those written
    assert not store.with_name(store.name + ".staging").exists()
    assert "no receipt" not in ser("store", "verify", store).stdout


def test_an_interrupted_import_says_the_command_that_goes_on(
    source: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, npz = source
    flush, flushed = PlacedRows._flush, []

    def interrupted(self: PlacedRows) -> None:
        flushed.append(1)
        if len(flushed) == 2:
            raise KeyboardInterrupt
        flush(self)

    monkeypatch.setattr(PlacedRows, "_flush", interrupted)
    stopped = ser("store", "import", store, npz, *ARGS, "--overwrite")
    assert stopped.exit_code == 130
    line = stopped.stderr.strip().splitlines()[-1]
    command = f"ser store import {store} {npz} --name emb --modality audio --level frame"
    assert line == f"interrupted: the rows imported so far are kept; `{command}` goes on from them"
    monkeypatch.setattr(PlacedRows, "_flush", flush)
    done = ser("store", "import", store, npz, *ARGS)
    assert done.exit_code == 0, done.output
    np.testing.assert_array_equal(FeatureStore.open(store).read("emb").data, expected())


def test_an_import_killed_after_its_last_row_is_completed_by_the_same_command(
    source: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, npz = source
    killed(
        store,
        npz,
        """
        def dies(*args, **kwargs):
            os._exit(9)
        store_module.FeatureStore._complete_set = dies
        """,
    )
    written = written_rows(monkeypatch)
    done = ser("store", "import", store, npz, *ARGS)
    assert done.exit_code == 0, done.output
    assert not any(written)
    fs = FeatureStore.open(store)
    np.testing.assert_array_equal(fs.read("emb").data, expected())
    assert fs.verify() == []


@pytest.mark.parametrize("record", ["not json", '{"fingerprint": "other"}', ""])
def test_a_record_that_does_not_fit_the_set_starts_it_anew(
    source: tuple[Path, Path], record: str
) -> None:
    store, npz = source
    killed(store, npz, KILLED_AFTER_TWO_CHUNKS)
    kept = store.with_name(store.name + ".staging") / "emb" / RECORD
    if record:
        kept.write_text(record)
    else:
        kept.unlink()
    done = ser("store", "import", store, npz, *ARGS)
    assert done.exit_code == 0, done.output
    fs = FeatureStore.open(store)
    np.testing.assert_array_equal(fs.read("emb").data, expected())
    assert fs.verify() == []


def test_a_full_disk_stops_an_import_in_one_line_and_the_same_command_goes_on(
    source: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, npz = source
    backend = type(FeatureStore.open(store)._backend)
    write, calls = backend.write_blocks, []

    def full(self: object, name: str, blocks: list) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(self, name, blocks)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "write_blocks", full)
    line = one_line(ser("store", "import", store, npz, *ARGS))
    assert line.startswith(
        f"error: the disk is full (No space left on device) writing the rows of feature set "
        f"'emb' to {store}; free some space and run the same command again: it resumes"
    )
    assert FeatureStore.open(store).info("emb").rows == 2 * CHUNK_ROWS
    monkeypatch.setattr(backend, "write_blocks", write)
    written = written_rows(monkeypatch)
    done = ser("store", "import", store, npz, *ARGS)
    assert done.exit_code == 0, done.output
    assert sum(written) == rows() - 2 * CHUNK_ROWS
    np.testing.assert_array_equal(FeatureStore.open(store).read("emb").data, expected())
