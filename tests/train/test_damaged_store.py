"""A chunk of a feature set damaged on disk stops `ser train` before anything trains,
with one line naming the store, the set, the utterances and the command that mends them
(not a traceback, and never training on the damaged values)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ser.cache import store as store_module
from ser.cache.verify import utterances_in
from ser.cli import main
from tests.stores import damage_chunk, labelled_store

IS13 = ("is13", "audio", "utterance", 7, "float32")


@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_damaged_chunk_stops_training_with_the_repair_command(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "CHUNK_BYTES", 10 * 7 * 4)  # 10 utterances a chunk
    store = labelled_store(tmp_path / f"features{suffix}", {"is13": IS13})
    offsets = store.read("is13").offsets
    damage_chunk(store, "is13/data", chunk=2)  # finite garbage over rows 20-29
    held = [str(store.manifest.utt_ids[i]) for i in sorted(utterances_in(offsets, [(20, 30)]))]

    args = ["train", "--store", store.path, "--features", "is13", "--fusion", "none",
            "--classes", "4", "--epochs", "1", "--device", "cpu",
            "--out", tmp_path / "runs"]  # fmt: skip
    result = CliRunner().invoke(main, [str(a) for a in args])

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: {store.path}: feature set 'is13' is damaged: rows 20-29 ")
    assert f"(10 utterances: {held[0]}, {held[1]}, {held[2]} and 7 more)" in line
    assert f"`ser store repair {store.path} CORPUS_ROOT`" in line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("run.json"))
