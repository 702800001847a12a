"""Every corpus kind end to end without licensed data: a synthetic corpus in its layout
read, extracted (logmel) and trained on (the unimodal model, a few epochs) with the
corpus's default protocol, its folds recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ser.cli import main

SMALL = ("--fusion", "none", "--epochs", "2", "--batch-size", "8", "--device", "cpu")


def _ser(*args: str | Path) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def _extract(root: Path, store: Path, failed: tuple[str, ...], features: str = "logmel") -> None:
    """Extract `features`: exit 1 naming each of `failed` (an empty or missing wav), else 0."""
    _extracted(_ser("extract", root, "--store", store, "--features", features, "--quiet"), failed)


def _extracted(result: Any, failed: tuple[str, ...]) -> None:
    """`ser extract`'s `result` exits 1 naming each of `failed`, else 0."""
    assert result.exit_code == (1 if failed else 0), result.output
    assert all(utt_id in result.output for utt_id in failed)


def _train(store: Path, out: Path, name: str, *args: str) -> tuple[Any, dict[str, Any]]:
    """A `ser train --json` run that succeeds, and the run.json it writes as `name`."""
    result = _ser("train", "--store", store, *args, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    return result, json.loads((out / name / "run.json").read_text())


@pytest.fixture(scope="module")
def crema_d_logmel(crema_d_corpus: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic CREMA-D extracted to logmel (its empty wav named), read only."""
    store = tmp_path_factory.mktemp("crema-d") / "c.zarr"
    _extract(crema_d_corpus.root, store, crema_d_corpus.empty)
    return store


@pytest.fixture(scope="module")
def ravdess_logmel(ravdess_corpus: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic RAVDESS extracted to logmel, read only."""
    store = tmp_path_factory.mktemp("ravdess") / "r.zarr"
    _extract(ravdess_corpus.root, store, ravdess_corpus.empty)
    return store


@pytest.mark.slow
@pytest.mark.parametrize("corpus", ["crema_d_corpus", "ravdess_corpus"])
def test_acted_corpora_train_on_speaker_folds(corpus: str, request: Any, tmp_path: Path) -> None:
    store = request.getfixturevalue(corpus.replace("_corpus", "_logmel"))
    name = "logmel_none_speaker-kfold_c4"
    result, record = _train(store, tmp_path, name, "--features", "logmel", *SMALL)
    assert json.loads(result.stdout)["protocol"] == "speaker-kfold"
    assert record["classes"] == ["neu", "hap", "sad", "ang"] and record["speaker_independent"]
    assert record["validation"].startswith("the next group of the training side held out")
    tested = [g for entry in record["folds"] for g in entry["test_groups"]]
    assert len(record["folds"]) == 5 and len(set(tested)) == 5


def test_a_manifest_trains_on_its_official_partitions(
    crema_d_corpus: Any, crema_d_manifest_store: Any, tmp_path: Path
) -> None:
    store, extracted = crema_d_manifest_store
    _extracted(extracted, crema_d_corpus.empty)
    args = ("--features", "logmel", "--classes", "all", "--protocol", "official", *SMALL)
    _, record = _train(store, tmp_path, "logmel_none_official_call", *args)
    (fold,) = record["folds"]
    assert fold["fold"] == "official" and fold["val_groups"] == ["dev"]
    assert record["validation"].startswith("the official dev partition")  # not "a session"
    assert len(record["classes"]) == 6


def test_iemocap_class_sets_refused_on_another_corpus(ravdess_logmel: Path) -> None:
    args = ("--features", "logmel", *SMALL, "--classes", "5")
    result = _ser("train", "--store", ravdess_logmel, *args)
    assert result.exit_code == 2 and "ravdess has no class set '5'" in result.stderr


def test_msp_podcast_trains_on_its_official_partitions(
    msp_podcast_corpus: Any, tmp_path: Path
) -> None:
    store = tmp_path / "p.zarr"
    _extract(msp_podcast_corpus.root, store, msp_podcast_corpus.empty)
    args = ("--features", "logmel", "--classes", "8", *SMALL)
    result, record = _train(store, tmp_path, "logmel_none_official_c8", *args)
    assert json.loads(result.stdout)["protocol"] == "official"
    (fold,) = record["folds"]
    assert fold["test_groups"] == ["test"] and fold["val_groups"] == ["dev"]
    assert fold["left_out"] == ["test2"]  # Test2 is not Test1's
    # The Unknown speaker is in Train and Test1: recorded speaker-dependent, named.
    assert fold["shared_speakers"] == ["Unknown"] and not record["speaker_independent"]
    assert len(record["classes"]) == 8


@pytest.mark.slow
def test_meld_trains_the_dialog_context_model_on_its_official_partitions(
    meld_corpus: Any, tmp_path: Path
) -> None:
    store = tmp_path / "meld.zarr"
    _extract(meld_corpus.root, store, meld_corpus.empty, "is13")  # the missing clip
    context = ("--fusion", "none", "--context", "--epochs", "2", "--seeds", "1", "--device", "cpu")
    args = ("--features", "is13", "--classes", "7", *context)
    result, record = _train(store, tmp_path, "is13_none_official_c7_context", *args)
    assert json.loads(result.stdout)["protocol"] == "official"
    (fold,) = record["folds"]
    assert fold["val_groups"] == ["dev"] and "left_out" not in fold
    # Friends' characters speak in every split: official is speaker-dependent, named.
    assert not record["speaker_independent"] and "Joey" in fold["shared_speakers"]
    assert len(record["classes"]) == 7
    # MELD's skew: balanced class weights by default, said and recorded.
    assert "class weights balanced (MELD's default" in result.stderr
    assert record["config"]["class_weights"] == "balanced"
    assert list(fold["class_weights"]) == record["classes"]
    sentiment = ("--features", "is13", "--classes", "sentiment", *SMALL, "--class-weights", "none")
    name = "is13_none_official_csentiment_class-weights-none"
    _, record = _train(store, tmp_path, name, *sentiment)
    assert record["classes"] == ["neg", "neu", "pos"]
    assert record["config"]["class_weights"] is None and "class_weights" not in record["folds"][0]


def test_a_dialog_model_is_refused_on_a_corpus_without_dialogs(
    crema_d_logmel: Path, tmp_path: Path
) -> None:
    args = ("--features", "logmel", "--fusion", "none", "--context", "--device", "cpu")
    result = _ser("train", "--store", crema_d_logmel, *args, "--out", tmp_path)
    assert result.exit_code == 2
    assert "needs dialogs and their order, and CREMA-D" in result.stderr
    assert "each utterance is a dialog of its own" in result.stderr
