"""`ser extract --repair`: what `ser store verify` finds damaged is extracted again, only
the shards holding the damaged utterances (a set whose offsets are lost: whole), and the
store verifies healthy again with the bytes it was completed with. Damaged ASR
transcripts, transcribed again: tests/extract/test_asr_text.py (on its ASR store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from ser.cache import FeatureStore
from ser.cache import store as store_module
from ser.cache.repair_writer import RepairWriter
from ser.cli import main
from tests.stores import damage_chunk


def ser(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_repair_reextracts_what_verify_finds_damaged(
    short_corpus: tuple[Path, Any],
    tiny_models: Any,
    tmp_path: Path,
    suffix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store_module, "CHUNK_BYTES", 8 * 2**10)  # an utterance or two a chunk
    root, _ = short_corpus  # four shards of 16, many chunks of 8 KiB
    store = tmp_path / f"features{suffix}"
    extract = ("extract", root, "--store", store, "--features", "hubert,logmel", "--layers", "2",
               "--hubert-model", tiny_models.hubert, "--shard-size", "16", "--quiet")  # fmt: skip
    assert ser(*extract).exit_code == 0
    fs = FeatureStore.open(store)
    names = ("tiny-hubert.L2", "logmel80")
    before = {name: fs.read(name) for name in names}
    recorded = {name: fs.info(name).attrs["data_sha256"] for name in names}
    offsets = fs.read("tiny-hubert.L2").offsets
    assert fs.info("tiny-hubert.L2").attrs["data_sha256"] == fs.checksum("tiny-hubert.L2")

    damage_chunk(fs, "tiny-hubert.L2/data", chunk=3)
    damage_chunk(fs, "logmel80/offsets")
    verify = ser("store", "verify", store)
    assert verify.exit_code == 1
    assert (
        "tiny-hubert.L2: rows" in verify.stdout and "logmel80: its offsets array" in verify.stdout
    )
    # The store records the corpus it was extracted from: the repair command names it.
    assert f"repair tiny-hubert.L2: ser extract {root} --corpus iemocap --store {fs.path}" in (
        verify.stdout
    )
    damaged = fs.damage("tiny-hubert.L2").utterances
    assert 0 < len(damaged) < len(offsets) - 1

    staged: list[int] = []  # the utterances the repair extracted again
    real = RepairWriter.write

    def spy(writer: RepairWriter, shard: int, rows: Any, failures: Any = None) -> None:
        staged.extend(rows)
        real(writer, shard, rows, failures)

    monkeypatch.setattr(RepairWriter, "write", spy)
    result = ser(*extract, "--repair")
    assert result.exit_code == 0, result.output
    # Only the batches holding them (a few utterances each on the CPU), not their shards.
    assert set(damaged) <= set(staged) and len(staged) < 16
    assert (
        f"repaired tiny-hubert.L2: {len(damaged)} damaged utterance(s) re-extracted; its bytes "
        "are those recorded when it was completed"
    ) in result.stdout
    assert "extracted 1 feature set(s)" in result.stdout  # logmel80, whole
    assert ser("store", "verify", store).exit_code == 0
    fs = FeatureStore.open(store)
    for name in names:
        np.testing.assert_array_equal(fs.read(name).data, before[name].data)
        np.testing.assert_array_equal(fs.read(name).offsets, before[name].offsets)
        assert fs.info(name).attrs["data_sha256"] == recorded[name]

    again = ser(*extract, "--repair")
    assert again.exit_code == 0 and "repair: no damage found" in again.stdout


def test_a_manifest_rebuilt_from_the_corpus_says_how_far_its_read_is(
    crema_d_corpus: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The corpus read behind a rebuilt manifest counts its audio headers, as `ser store
    init`'s does: at 150,000 utterances it is seconds of reading."""
    from io import StringIO

    from rich.console import Console

    from ser.extract import store_repair
    from ser.runtime import progress

    assert ser("store", "init", tmp_path / "f.zarr", crema_d_corpus.root, "-q").exit_code == 0
    store = FeatureStore.open(tmp_path / "f.zarr")
    monkeypatch.setattr(progress, "SHORT", 0.0)  # a read however short is said
    said = StringIO()
    console = Console(file=said, soft_wrap=True)
    rebuilt = next(store_repair._candidates(str(crema_d_corpus.root), store.attrs, console))
    n = len(store.manifest)
    assert len(rebuilt) == n
    assert f"audio headers: {n}/{n} utterances" in said.getvalue(), said.getvalue()
