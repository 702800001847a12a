"""Manifest: columns, validation, equality, and records from a corpus reading."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ser.cache import FeatureStore, Manifest
from ser.cache.manifest import AUDIO_PRINT, COLUMNS, LEGACY
from ser.errors import StoreError
from tests.stores import example_columns

IDS = ["Ses01F_impro01_F000", "Ses01F_impro01_M001", "Ses01F_impro01_F002"]


def test_columns_have_their_kinds() -> None:
    m = Manifest.from_columns(example_columns(IDS))
    assert m.names == [*COLUMNS, "kind", "session"] and len(m) == 3
    assert m.groups == ["kind", "session"]  # IEMOCAP's, beside the record every corpus has
    assert m.column("session").dtype == np.int64 and m.column("order").dtype == np.int64
    assert m.column("valence").dtype == np.float64 and m.column("utt_id").dtype.kind == "U"
    assert m.utt_ids.tolist() == IDS and m.index(IDS[2]) == 2 and IDS[1] in m


def test_columns_are_read_only_views_and_copies() -> None:
    m = Manifest.from_columns(example_columns(IDS))
    with pytest.raises(ValueError, match="read-only"):
        m.column("label")[0] = "ang"
    columns = m.columns()
    columns["label"][0] = "ang"
    assert m.column("label")[0] == "neu"


def test_equality_is_columnwise() -> None:
    a = Manifest.from_columns(example_columns(IDS))
    assert a == Manifest.from_columns(example_columns(IDS))
    columns = example_columns(IDS)
    columns["transcript"][1] = "hello there "  # one trailing space
    b = Manifest.from_columns(columns)
    assert a != b and a.differences(b) == ["transcript"]
    assert a != Manifest.from_columns(example_columns(IDS[:2]))


def test_a_stored_manifest_with_the_legacy_columns_holds_one_without() -> None:
    """Manifests of every corpus carried session (0) and kind before groups: a store of
    them holds a corpus read again without those columns, and nothing else differs."""
    legacy = example_columns(IDS) | {"session": [0, 0, 0], "kind": ["acted"] * 3}
    stored = Manifest.from_columns(legacy)
    new = Manifest.from_columns({k: v for k, v in legacy.items() if k not in LEGACY})
    assert stored.holds(new) and stored != new
    assert not new.holds(stored)  # a new group column is a difference
    relabelled = {**legacy, "label": ["ang", "neu", "neu"]}
    assert not Manifest.from_columns(relabelled).holds(new)


@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_audio_prints_added_to_a_store_hold_the_corpus_s_manifest_and_are_no_group(
    tmp_path: Path, suffix: str
) -> None:
    """The prints ser makes at extraction sit in the manifest beside the corpus's columns:
    a store with them still holds the manifest the corpus gives (extract resumes, create
    reopens it), and no protocol reads them as a group."""
    corpus = Manifest.from_columns(example_columns(IDS))
    store = FeatureStore.create(tmp_path / f"f{suffix}", corpus)
    store.add_derived_column(AUDIO_PRINT, ["a1", "", "c3"])
    stored = FeatureStore.open(store.path).manifest
    assert stored.column(AUDIO_PRINT).tolist() == ["a1", "", "c3"]
    assert stored.holds(corpus) and not corpus.holds(stored)
    assert stored.groups == ["kind", "session"]
    assert FeatureStore.create(store.path, corpus).manifest == stored  # reopened, not refused
    with pytest.raises(StoreError, match="'label' is no column ser derives"):
        store.add_derived_column("label", ["x"] * 3)


def test_extra_columns_round_trip(tmp_path: Path) -> None:
    columns = {**example_columns(IDS), "fold": [0, 1, 2], "note": ["", "é", "x"]}
    m = Manifest.from_columns(columns)
    assert m.names[-4:] == ["fold", "kind", "note", "session"]  # after COLUMNS, sorted
    for suffix in (".zarr", ".h5"):
        FeatureStore.create(tmp_path / f"m{suffix}", m)
        assert FeatureStore.open(tmp_path / f"m{suffix}").manifest == m


@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_labels_read_back_as_plain_strings(tmp_path: Path, suffix: str) -> None:
    FeatureStore.create(tmp_path / f"m{suffix}", Manifest.from_columns(example_columns(IDS)))
    labels = FeatureStore.open(tmp_path / f"m{suffix}").manifest.column("label")
    assert labels.dtype.kind == "U" and labels.astype(str).tolist() == ["neu"] * 3


def test_string_columns_given_as_bytes_or_string_dtype_become_plain_text() -> None:
    # What h5py hands over without asstr(), and what zarr 3 reads with numpy 2.
    columns = example_columns(IDS)
    columns["label"] = np.array([b"neu", b"h\xc3\xa4p", b"sad"], dtype=object)
    columns["note"] = np.array(["a", "b", "c"], dtype=np.dtypes.StringDType())
    m = Manifest.from_columns(columns)
    assert m.column("label").tolist() == ["neu", "häp", "sad"]  # not "b'neu'"
    assert m.column("label").astype(str).dtype.kind == "U"
    assert m.column("note").dtype.kind == "U" and m.column("note").tolist() == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.pop("label"), "lacks columns: label"),
        (lambda c: c["valence"].pop(), "differ in length"),
        (lambda c: c["utt_id"].__setitem__(2, IDS[0]), "duplicate utt_id values: " + IDS[0]),
        (lambda c: c["order"].__setitem__(0, 0.5), "'order' must hold integers"),
        (lambda c: c.update(extra=[1j, 2j, 3j]), "strings or numbers, got complex128"),
    ],
)
def test_bad_columns_are_refused(change, message: str) -> None:
    columns = example_columns(IDS)
    change(columns)
    with pytest.raises(StoreError, match=message):
        Manifest.from_columns(columns)


def test_unknown_id_and_column() -> None:
    m = Manifest.from_columns(example_columns(IDS))
    with pytest.raises(StoreError, match="'Ses09' is not in the manifest"):
        m.index("Ses09")
    with pytest.raises(StoreError, match="no column 'speaker_id'"):
        m.column("speaker_id")


def test_from_utterances_of_a_reading(synthetic_corpus, tmp_path: Path) -> None:
    root, truth = synthetic_corpus
    utterances = list(truth.utterances)
    utterances[0] = replace(utterances[0], wav_path=None)
    m = Manifest.from_utterances(utterances, root)
    assert m.utt_ids.tolist() == [u.utt_id for u in utterances]
    for name in COLUMNS:
        if name != "wav":
            assert m.column(name).tolist() == [getattr(u, name) for u in utterances], name
    assert m.groups == ["kind", "session"]  # IEMOCAP's groups, as columns
    assert m.column("session").tolist() == [u.group("session") for u in utterances]
    assert m.column("session").dtype == np.int64 and "span_start" not in m.names
    wavs = m.column("wav").tolist()
    assert wavs[0] == ""
    assert wavs[1:] == [u.wav_path.relative_to(root).as_posix() for u in utterances[1:]]
    store = FeatureStore.create(tmp_path / "f.h5", m)
    assert FeatureStore.open(store.path).manifest == m


def test_from_utterances_without_root_keeps_paths(synthetic_corpus) -> None:
    _, truth = synthetic_corpus
    m = Manifest.from_utterances(truth.utterances[:2])
    assert m.column("wav").tolist() == [str(u.wav_path) for u in truth.utterances[:2]]
