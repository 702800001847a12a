"""`--corpus` on `ser corpus summary`, `ser store init` and `ser extract`: guessed from the
layout, one message for an ambiguous root, and the kind recorded in the store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from ser.cache import FeatureStore
from ser.cli import main


def _run(*args: str | Path) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def test_summary_of_each_kind(crema_d_corpus: Any, ravdess_corpus: Any) -> None:
    result = _run("corpus", "summary", crema_d_corpus.root, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert sorted(summary["per_speaker"]) == ["1001", "1002", "1003", "1004", "1005"]
    assert summary["utterances"] == len(crema_d_corpus.files)
    assert [p["utt_id"] for p in summary["problems"]] == list(crema_d_corpus.empty)
    table = _run("corpus", "summary", ravdess_corpus.root, "--classes", "8").stdout
    header = next(line for line in table.splitlines() if "speaker" in line)
    assert header.split() == [
        "speaker",
        "neu",
        "cal",
        "hap",
        "sad",
        "ang",
        "fea",
        "dis",
        "sur",
        "total",
    ]
    assert "RAVDESS, 8 classes" in table


def test_an_ambiguous_root_names_the_candidates(ravdess_corpus: Any, tmp_path: Path) -> None:
    root = tmp_path / "both"
    shutil.copytree(ravdess_corpus.root, root)
    (root / "AudioWAV").mkdir()
    result = _run("corpus", "summary", root)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert (
        "several corpora: crema-d" in result.stderr and "say which with --corpus" in result.stderr
    )
    assert _run("corpus", "summary", root, "--corpus", "ravdess").exit_code == 0


def test_store_init_and_extract_record_the_kind(ravdess_corpus: Any, tmp_path: Path) -> None:
    store = tmp_path / "r.zarr"
    result = _run("store", "init", store, ravdess_corpus.root, "--classes", "4")
    assert result.exit_code == 0, result.output
    attrs = FeatureStore.open(store).attrs
    assert (attrs["corpus"], attrs["corpus_layout"], attrs["classes"]) == ("ravdess", 1, "4")
    result = _run("extract", ravdess_corpus.root, "--store", store, "--classes", "4",
                  "--features", "logmel", "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    opened = FeatureStore.open(store)
    assert opened.info("logmel80").complete and len(opened.manifest) == 5 * 7
    assert set(opened.manifest.column("label").tolist()) == {"neu", "hap", "sad", "ang"}


def test_extract_a_manifest_file(crema_d_corpus: Any, crema_d_manifest_store: Any) -> None:
    store, result = crema_d_manifest_store
    assert result.exit_code == 1, result.output  # the empty wav fails, named
    assert f"{crema_d_corpus.empty[0]} [logmel80]" in result.output
    opened = FeatureStore.open(store)
    assert opened.attrs["corpus"] == "manifest"
    assert "split" in opened.manifest.names
