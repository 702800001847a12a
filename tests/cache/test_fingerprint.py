"""Provenance attributes and their fingerprint."""

from __future__ import annotations

from pathlib import Path

import pytest

from ser import __version__
from ser.cache import FeatureStore, Manifest
from ser.cache import fingerprint as fingerprint_module
from ser.cache.fingerprint import (
    differences,
    fingerprint,
    matches,
    model_location,
    provenance,
)
from ser.errors import StoreError
from tests.stores import EXAMPLE_ATTRS, fill

BASE = {"extractor": "bert", "modality": "text", "level": "token", "dim": 8, "dtype": "float16"}


def test_provenance_normalises_and_adds_version() -> None:
    prov = provenance({**BASE, "layers": (6, 9), "complete": True, "fingerprint": "x"})
    assert prov["layers"] == [6, 9] and prov["ser_version"] == __version__
    assert "complete" not in prov and "fingerprint" not in prov


def test_fingerprint_ignores_order_and_bookkeeping() -> None:
    a = provenance(BASE)
    b = provenance(dict(reversed(BASE.items())))
    assert fingerprint(a) == fingerprint(b) == fingerprint({**a, "complete": True})
    assert fingerprint(a) != fingerprint({**a, "dim": 9})


def test_recorded_checksum_is_bookkeeping_not_identity() -> None:
    """A set's content checksum, recorded when it is completed (or again after a repair),
    never changes its fingerprint: sets written before it have the same one."""
    a = provenance(BASE)
    recorded = {**a, "fingerprint": fingerprint(a), "complete": True, "data_sha256": "ab" * 32}
    assert fingerprint(recorded) == fingerprint(a) and matches(recorded)
    assert "data_sha256" not in provenance(recorded)
    assert differences(a, recorded) == []


def test_the_decoder_is_recorded_not_identity(store_path: Path, manifest: Manifest) -> None:
    """A set begun before decoders were recorded resumes when a run that records them
    extracts it again, and a decoder upgrade is no other set."""
    store = FeatureStore.create(store_path, manifest)
    fill(store)  # EXAMPLE_ATTRS: no decoder
    decoded = {**EXAMPLE_ATTRS, "decoder": "soundfile 0.14.0 / libsndfile 1.2.2; av 99"}
    store.begin_feature_set("hubert.L3", decoded)
    assert store.info("hubert.L3").complete  # resumed: nothing to redo
    upgraded = provenance({**decoded, "decoder": "soundfile 1.0 / libsndfile 2; av 100"})
    assert fingerprint(upgraded) == fingerprint(provenance(decoded))
    assert differences(provenance(decoded), upgraded) == []
    assert provenance(decoded)["decoder"].startswith("soundfile")  # recorded all the same


def test_differences_name_each_key() -> None:
    old = provenance({**BASE, "model": "bert-base", "layer": 12})
    new = provenance({**BASE, "model": "bert-large", "revision": "main"})
    assert differences(old, new) == [
        "layer: 12 -> (absent)",
        'model: "bert-base" -> "bert-large"',
        'revision: (absent) -> "main"',
    ]


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({k: v for k, v in BASE.items() if k != "level"}, "lack level"),
        ({**BASE, "dtype": "float64"}, "dtype='float64'"),
        ({**BASE, "modality": "video"}, "modality"),
        ({**BASE, "dim": 0}, "positive integer"),
        ({**BASE, "dim": True}, "positive integer"),
        ({**BASE, "path": object()}, "plain JSON"),
    ],
)
def test_bad_attrs(attrs: dict, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        provenance(attrs)


def test_model_location_is_not_identity_when_its_checksum_is_recorded() -> None:
    hubert = provenance({**BASE, "model": "models/tiny", "weights_sha256": "ab" * 32})
    moved = {**hubert, "model": "/elsewhere/tiny"}
    assert fingerprint(hubert) == fingerprint(moved)
    assert fingerprint(hubert) != fingerprint({**moved, "weights_sha256": "cd" * 32})
    # Without a checksum the location is all that names the model: it stays.
    assert fingerprint({**BASE, "model": "a"}) != fingerprint({**BASE, "model": "b"})
    asr = {**BASE, "asr_model": "w", "asr_weights_sha256": "ef"}
    assert fingerprint(asr) == fingerprint({**asr, "asr_model": "/abs/w"})


def test_model_location_resolves_folders_only(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    resolved = str((tmp_path / "models" / "tiny").resolve())
    assert model_location("models/tiny") == model_location(resolved) == resolved
    assert model_location("facebook/hubert-base-ls960") == "facebook/hubert-base-ls960"


def test_sets_fingerprinted_with_their_location_still_match(
    store_path: Path, manifest: Manifest, monkeypatch
) -> None:
    """A set written before locations left the fingerprint: verify accepts its stored
    fingerprint, and extracting it again with the folder given otherwise resumes it."""
    store = FeatureStore.create(store_path, manifest)
    with monkeypatch.context() as legacy:
        legacy.setattr(fingerprint_module, "LOCATIONS", {})  # the hash over every key
        fill(store, attrs={**EXAMPLE_ATTRS, "model": "models/tiny-hubert"})
    info = store.info("hubert.L3")
    assert info.fingerprint != fingerprint(info.attrs) and matches(info.attrs)
    assert store.verify() == []
    store.begin_feature_set("hubert.L3", {**EXAMPLE_ATTRS, "model": "/abs/models/tiny-hubert"})
    assert store.info("hubert.L3").complete  # resumed: nothing to redo
    broken = {**info.attrs, "dim": 7}
    assert not matches(broken)
