"""`ser store rechunk` killed part-way, on Zarr and HDF5: the set reads as before (its
rows, chunks and checksum), the store verifies clean, and the rechunk run again does it;
and what it refuses, it refuses in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ser.cache import FeatureStore, Manifest
from tests.refused import one_line, ser
from tests.stores import EXAMPLE_ATTRS, add_incomplete_set, example_columns, fill

REPO = Path(__file__).resolve().parents[2]
ROW_BYTES = EXAMPLE_ATTRS["dim"] * 2


def killed(store: Path, code: str) -> None:
    """`ser store rechunk STORE hubert.L3 --chunk-size` 3 rows, killed (``os._exit``) where
    ``code`` (patching the modules imported below) says: a kill leaves files as they are."""
    script = textwrap.dedent(
        """
        import os, sys
        import ser.cache.store as store_module
        import ser.cache.zarr_backend as zarr_backend
        from ser.cli import main
        store_module.BLOCK_BYTES = 1  # a block a chunk: the kill lands part-way
        """
    ) + textwrap.dedent(code)
    script += f"\nmain(['store', 'rechunk', {str(store)!r}, 'hubert.L3', '--chunk-size', "
    script += f"'{3 * ROW_BYTES}'])\n"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert done.returncode == 9, done.stderr.decode()


def state(path: Path) -> tuple:
    store = FeatureStore.open(path)
    data = store.read("hubert.L3")
    return data.data.tobytes(), data.offsets.tolist(), data.attrs


def manifest() -> Manifest:
    return Manifest.from_columns(example_columns([f"Ses01F_impro01_F{i:03d}" for i in range(16)]))


@pytest.fixture(params=[".zarr", ".h5"], ids=["zarr", "hdf5"])
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / f"features{request.param}"
    fill(FeatureStore.create(path, manifest()))
    return path


def test_rechunk_killed_mid_copy_leaves_the_set_as_it_was(filled: Path) -> None:
    before, rows = state(filled), FeatureStore.open(filled).info("hubert.L3").rows
    killed(
        filled,
        """
        copy = store_module.FeatureStore._checked_blocks
        def dies(self, *args):
            for n, block in enumerate(copy(self, *args)):
                if n == 2:
                    os._exit(9)
                yield block
        store_module.FeatureStore._checked_blocks = dies
        """,
    )
    assert state(filled) == before
    assert FeatureStore.open(filled).chunk_rows("hubert.L3") == rows
    assert FeatureStore.open(filled, mode="a").verify() == []
    done = ser("store", "rechunk", filled, "hubert.L3", "--chunk-size", 3 * ROW_BYTES)
    assert done.exit_code == 0, done.output
    assert "hubert.L3: rechunked from " in done.output and "to 3 rows (36 B) a chunk" in done.output
    assert state(filled) == before
    assert FeatureStore.open(filled).chunk_rows("hubert.L3") == 3
    assert sorted(p.name for p in filled.glob("hubert.L3/.*")) == []


def test_rechunk_killed_between_its_renames_reads_the_new_chunks(tmp_path: Path) -> None:
    path = tmp_path / "features.zarr"
    fill(FeatureStore.create(path, manifest()))
    before = state(path)
    killed(
        path,
        """
        rename, renames = os.rename, []
        def dies(a, b):
            renames.append(b)
            if len(renames) == 3:  # the old data set aside, the new not yet in its place
                os._exit(9)
            rename(a, b)
        zarr_backend.os.rename = dies
        """,
    )
    assert not (path / "hubert.L3" / "data").exists()
    assert state(path) == before  # read-only: the whole new array, where it lies
    assert FeatureStore.open(path).chunk_rows("hubert.L3") == 3
    assert FeatureStore.open(path, mode="a").verify() == []
    with FeatureStore.open(path, mode="a").lock():  # the next writer puts it in place
        assert (path / "hubert.L3" / "data").is_dir()
    assert sorted(p.name for p in path.glob("hubert.L3/.*")) == []
    assert state(path) == before


def test_rechunk_refusals_are_one_line(filled: Path) -> None:
    add_incomplete_set(FeatureStore.open(filled, mode="a"), "logmel80")
    line = one_line(ser("store", "rechunk", filled, "nope", "--chunk-size", "1MiB"))
    assert "no feature set 'nope'" in line
    line = one_line(ser("store", "rechunk", filled, "hubert.L3", "--chunk-size", "4"))
    assert "under one row" in line
    line = one_line(ser("store", "rechunk", filled, "logmel80", "--chunk-size", "1MiB"))
    assert "incomplete" in line
    line = one_line(ser("store", "rechunk", filled, "hubert.L3", "--chunk-size", "big"))
    assert "--chunk-size" in line and "not a size" in line
