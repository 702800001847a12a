"""A store hands out its corpus (`FeatureStore.corpus`): the kind its attrs record (IEMOCAP
for stores made before kinds were), and the groups its manifest holds, stored and
derived, for every kind."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ser.cache import FeatureStore, Manifest
from ser.cache.corpus import StoreCorpus
from ser.corpus.registry import KINDS, read_corpus
from ser.synth.acted import write_manifest

# Per kind: the fixture of its synthetic corpus and the groups its store holds.
KIND_GROUPS = {
    "iemocap": ("synthetic_corpus", {"session", "kind", "script"}),
    "crema-d": ("crema_d_corpus", {"sentence", "level"}),
    "ravdess": ("ravdess_corpus", {"kind", "intensity", "statement", "repetition"}),
    "msp-podcast": ("msp_podcast_corpus", {"split"}),
    "meld": ("meld_corpus", {"split", "sentiment", "season", "episode"}),
}


def _root(fixture: str, request: pytest.FixtureRequest) -> Path:
    found = request.getfixturevalue(fixture)
    return found[0] if isinstance(found, tuple) else found.root


def _store(root: Path, path: Path, corpus: str | None = None) -> FeatureStore:
    kind, reading = read_corpus(root, corpus)
    manifest = Manifest.from_utterances(reading.utterances, reading.root)
    FeatureStore.create(path, manifest, kind.attrs())
    return FeatureStore.open(path)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(KIND_GROUPS))
def test_a_store_of_each_kind_hands_out_its_kind(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    fixture, groups = KIND_GROUPS[name]
    corpus = _store(_root(fixture, request), tmp_path / "f.zarr").corpus
    assert corpus.kind is KINDS[name] and corpus.title == KINDS[name].title
    assert set(corpus.columns) == {"speaker", *groups}
    assert corpus.papers == (name == "iemocap")
    offered = [p.name for p in corpus.kind.protocols]
    assert ("official" in offered) == ("split" in groups)
    assert corpus.fold_count(corpus.kind.protocol) >= 1


def test_a_manifests_store_groups_by_its_own_columns(crema_d_corpus: Any, tmp_path: Path) -> None:
    listed = write_manifest(crema_d_corpus, tmp_path / "corpus.csv")
    corpus = _store(listed, tmp_path / "m.zarr").corpus
    assert corpus.name == "manifest" and "split" in corpus.columns
    assert corpus.fold_count("logo:split") == 3


def test_iemocap_groups_and_a_store_made_before_kinds(
    synthetic_corpus: Any, tmp_path: Path
) -> None:
    root, truth = synthetic_corpus
    store = _store(root, tmp_path / "f.zarr")
    scripts = store.corpus.columns["script"].tolist()
    assert scripts == [u.dialog.split("_", 1)[1] for u in truth.utterances]  # from the dialog
    assert store.corpus.fold_count("loso") == 5
    assert store.corpus.fold_count("logo:script") == len(set(scripts)) > 1
    before = FeatureStore.create(tmp_path / "old.zarr", store.manifest)  # no corpus attrs
    assert FeatureStore.open(before.path).corpus.kind is KINDS["iemocap"]


# The columns every store's digest hashed (those its manifest had, in this order) before
# each kind said which identify its stores: frozen here, so that a rule that re-keys the
# stores (and the sweep cells) made before fails.
OLD_IDENTITY = ("utt_id", "label", "session", "speaker", "dialog", "order", "split")


def _old_digest(manifest: Manifest) -> str:
    digest = hashlib.sha256()
    for name in (n for n in OLD_IDENTITY if n in manifest.names):
        digest.update(f"\0{name}\0".encode())
        digest.update("\x1f".join(map(str, np.asarray(manifest.column(name)))).encode())
    return digest.hexdigest()[:16]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(KIND_GROUPS))
def test_the_stores_of_each_kind_keep_their_identity(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    corpus = _store(_root(KIND_GROUPS[name][0], request), tmp_path / "f.zarr").corpus
    assert corpus.digest == _old_digest(corpus.manifest)


def test_a_new_kinds_store_is_identified_by_its_manifests_groups(
    crema_d_corpus: Any, tmp_path: Path
) -> None:
    """A kind that pins no identity (`CorpusKind.identity` None) hashes the record columns
    and every group its manifest holds: a changed group value is another store."""
    manifest = _store(crema_d_corpus.root, tmp_path / "f.zarr").manifest
    new = replace(KINDS["crema-d"], identity=None)
    levels = manifest.column("level").astype(str)
    other = Manifest({**{n: manifest.column(n) for n in manifest.names},
                      "level": np.where(levels == "HI", "LO", levels)})  # fmt: skip
    digests = {StoreCorpus(new, manifest).digest, StoreCorpus(new, other).digest}
    assert len(digests) == 2 and _old_digest(manifest) not in digests
    assert StoreCorpus(KINDS["crema-d"], other).digest == _old_digest(manifest)  # pinned
