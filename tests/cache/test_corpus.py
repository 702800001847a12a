"""A store hands out its corpus (`FeatureStore.corpus`): the kind its attrs record (IEMOCAP
for stores made before kinds were), and the groups its manifest holds, stored and
derived, for every kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ser.cache import FeatureStore, Manifest
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
