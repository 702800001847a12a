"""Receipts answer only for the same request and a store that still holds its sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ser.cache import FeatureStore
from ser.cache.manifest import Manifest
from ser.cache.receipts import check_receipt, receipt_backup, request_key, write_receipt
from tests.stores import EXAMPLE_ATTRS, example_columns

IDS = ["Ses01F_impro01_F000", "Ses01F_impro01_M000"]


def _store(tmp_path: Path) -> Path:
    path = tmp_path / "f.zarr"
    store = FeatureStore.create(path, Manifest.from_columns(example_columns(IDS)))
    store.begin_feature_set("x", EXAMPLE_ATTRS)
    store.shard_writer("x").write(
        0, {0: np.ones((2, EXAMPLE_ATTRS["dim"])), 1: np.ones((1, EXAMPLE_ATTRS["dim"]))}
    )
    store.consolidate("x", 1)
    return path


def test_same_key_and_complete_sets_answer(tmp_path: Path) -> None:
    path = _store(tmp_path)
    summary = {"n_utterances": 2, "sets": [{"name": "x", "failed": 0}], "failures": []}
    write_receipt(path, "k1", summary)
    assert check_receipt(path, "k1") == summary
    assert check_receipt(path, "k2") is None
    with FeatureStore.open(path, "a").lock():  # another writer at work: no answer
        assert check_receipt(path, "k1") is None
    FeatureStore.open(path, "a").delete_feature_set("x")
    assert check_receipt(path, "k1") is None


def test_a_receipt_with_asr_transcripts_needs_them_complete(tmp_path: Path) -> None:
    path = _store(tmp_path)
    store = FeatureStore.open(path, "a")
    store.begin_transcripts("asr-w", {"kind": "asr", "asr_model": "w"})
    store.write_transcripts("asr-w", {0: "hello", 1: "there"})
    store.finish_transcripts("asr-w")
    summary = {"n_utterances": 2, "sets": [{"name": "x", "failed": 0}], "failures": [],
               "transcripts": {"name": "asr-w"}}  # fmt: skip
    write_receipt(path, "k", summary)
    assert check_receipt(path, "k") == summary
    store.delete_transcripts("asr-w")
    assert check_receipt(path, "k") is None


def test_key_follows_options_corpus_and_models(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "Session1/dialog/EmoEvaluation").mkdir(parents=True)
    labels = corpus / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    labels.write_text("% header\n")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    key = request_key(corpus, {"layers": "12"}, {"hubert": str(model)})
    assert key is not None
    assert request_key(corpus, {"layers": "12"}, {"hubert": str(model)}) == key
    assert request_key(corpus, {"layers": "9"}, {"hubert": str(model)}) != key
    (model / "model.safetensors").write_bytes(b"weights")
    assert request_key(corpus, {"layers": "12"}, {"hubert": str(model)}) != key
    labels.write_text("% header\nchanged\n")
    assert request_key(corpus, {"layers": "12"}, {"hubert": str(model)}) != key


def test_an_uncached_hub_id_cannot_be_answered_cheaply(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert request_key(tmp_path, {}, {"bert": "bert-base-uncased"}) is None


def test_a_receipt_keeps_a_copy_of_the_stores_attributes(tmp_path: Path) -> None:
    """What `ser store repair` extracts again when the store cannot be opened at all."""
    path = _store(tmp_path)
    assert receipt_backup(path) is None  # no receipt yet
    write_receipt(path, "k1", {"n_utterances": 2, "sets": [], "failures": []})
    backup = receipt_backup(path)
    assert backup is not None and backup["store"] == FeatureStore.open(path).attrs
    assert backup["sets"] == {"x": FeatureStore.open(path).info("x").attrs}
    write_receipt(path, None, None)  # the backup written anew, the request kept
    assert check_receipt(path, "k1") is not None
