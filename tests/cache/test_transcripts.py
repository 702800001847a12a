"""Transcript sets in the store: staged, resumed, finished, never among feature sets."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import numpy as np
import pytest

from ser.cache import FeatureStore, Manifest, atomic
from ser.errors import DiskFullError, FingerprintMismatch, StoreError

ATTRS = {"kind": "asr", "asr_model": "tiny-whisper", "asr_max_new_tokens": 16}


def test_transcripts_round_trip_and_stay_apart(store_path: Path, manifest: Manifest) -> None:
    store = FeatureStore.create(store_path, manifest)
    store.begin_transcripts("asr-tiny", ATTRS)
    n = len(manifest)
    store.write_transcripts("asr-tiny", {i: f"text {i} café" for i in range(0, n, 2)})
    store.write_transcripts(
        "asr-tiny", {i: f"text {i} café" for i in range(1, n - 1, 2)}, {n - 1: "no audio"}
    )
    assert store.staged_transcripts("asr-tiny").done == set(range(n))
    store.finish_transcripts("asr-tiny")

    reopened = FeatureStore.open(store_path)
    got = reopened.read_transcripts("asr-tiny")
    assert got.texts[:3] == ("text 0 café", "text 1 café", "text 2 café")
    assert got.texts[-1] == "" and got.failures == {n - 1: "no audio"}
    assert got.attrs["complete"] and got.attrs["asr_model"] == "tiny-whisper"
    assert reopened.transcript_sets() == ["asr-tiny"]
    assert reopened.feature_sets() == []  # a transcript set is not a feature set
    assert reopened.verify() == []
    assert not store_path.with_name(store_path.name + ".staging").exists()


def test_transcripts_resume_and_fingerprint(store_path: Path, manifest: Manifest) -> None:
    store = FeatureStore.create(store_path, manifest)
    store.begin_transcripts("asr-tiny", ATTRS)
    store.write_transcripts("asr-tiny", {0: "kept"})
    with pytest.raises(StoreError, match="lacks 15 utterance"):
        store.finish_transcripts("asr-tiny")
    with pytest.raises(StoreError, match="incomplete"):
        store.read_transcripts("asr-tiny")
    assert store.verify() == ["transcripts asr-tiny: incomplete (transcription has not finished)"]
    store.begin_transcripts("asr-tiny", dict(ATTRS))  # same provenance: resume
    assert store.staged_transcripts("asr-tiny").texts == {0: "kept"}
    other = {**ATTRS, "asr_max_new_tokens": 32}
    with pytest.raises(FingerprintMismatch, match="asr_max_new_tokens: 16 -> 32"):
        store.begin_transcripts("asr-tiny", other)
    store.begin_transcripts("asr-tiny", other, overwrite=True)
    assert store.staged_transcripts("asr-tiny").done == set()


def test_begin_drops_transcripts_staged_for_a_set_gone(
    store_path: Path, manifest: Manifest
) -> None:
    """As for feature sets: a store made again at the same path never takes up the old
    one's staged transcripts (its rows may be other utterances)."""
    store = FeatureStore.create(store_path, manifest)
    store.begin_transcripts("asr-tiny", ATTRS)
    store.write_transcripts("asr-tiny", {0: "old store"})
    shutil.rmtree(store_path) if store_path.is_dir() else store_path.unlink()
    again = FeatureStore.create(store_path, manifest)
    again.begin_transcripts("asr-tiny", ATTRS)
    assert again.staged_transcripts("asr-tiny").done == set()


def test_reserved_and_at_names(store_path: Path, manifest: Manifest) -> None:
    store = FeatureStore.create(store_path, manifest)
    attrs = {"extractor": "bert", "modality": "text", "level": "token", "dim": 2,
             "dtype": "float32"}  # fmt: skip
    with pytest.raises(StoreError, match="not 'manifest' or 'transcripts'"):
        store.begin_feature_set("transcripts", attrs)
    store.begin_feature_set("tiny-bert@asr-tiny", attrs)
    store.shard_writer("tiny-bert@asr-tiny").write(
        0, {i: np.ones((2, 2), np.float32) for i in range(len(manifest))}
    )
    store.consolidate("tiny-bert@asr-tiny", 1)
    assert FeatureStore.open(store_path).feature_sets() == ["tiny-bert@asr-tiny"]


def test_a_full_disk_names_the_transcripts(
    store_path: Path, manifest: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FeatureStore.create(store_path, manifest)
    store.begin_transcripts("asr-tiny", ATTRS)

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", full)
    with pytest.raises(DiskFullError, match="writing transcripts of asr-tiny to "):
        store.write_transcripts("asr-tiny", {0: "hello"})
