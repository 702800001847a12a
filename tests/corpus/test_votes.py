"""The annotators' votes as soft targets: the distribution rules, and the votes of a
feature store's utterances read again from its corpus (IEMOCAP's evaluators, MSP-Podcast's
labels_detailed.csv, a manifest's votes column), wherever that corpus is now."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ser.cache.manifest import Manifest
from ser.cache.store import FeatureStore
from ser.corpus.labels import LABEL_SETS
from ser.corpus.registry import read_corpus
from ser.corpus.votes import soft_targets, store_votes, vote_distribution
from ser.errors import ConfigError, CorpusError

FOUR = LABEL_SETS["4"]  # neu hap sad ang; exc -> hap


def store_of(path: Path, root: Path, classes: str = "all", corpus: str | None = None) -> Any:
    """A store of the corpus at `root` holding only its manifest, with the attrs `ser
    extract` records."""
    kind, reading = read_corpus(root, corpus, classes)
    manifest = Manifest.from_utterances(reading.utterances, reading.root)
    return FeatureStore.create(path, manifest, kind.attrs(reading))


def test_each_annotator_weighs_one_shared_among_their_categories() -> None:
    votes = [("E1", "ang"), ("E1", "sad"), ("E2", "ang"), ("E3", "exc"), ("E3", "hap")]
    got = vote_distribution(votes, FOUR, consensus=3)
    # E1: ang 1/2 sad 1/2; E2: ang 1; E3: exc and hap both hap in set 4, 1 in all.
    assert got == pytest.approx(np.array([0.0, 1.0, 0.5, 1.5]) / 3)
    assert got.dtype == np.float64 and got.sum() == pytest.approx(1.0)
    twice = vote_distribution([("E1", "sad"), ("E1", "sad"), ("E2", "ang")], FOUR, 3)
    assert twice == pytest.approx([0.0, 0.0, 0.5, 0.5])  # one choice, named twice


def test_agreeing_votes_give_a_one_hot() -> None:
    agreed = vote_distribution([("E1", "neu"), ("E2", "neu"), ("E3", "neu")], FOUR, 0)
    assert agreed.tolist() == [1.0, 0.0, 0.0, 0.0]
    merged = vote_distribution([("E1", "hap"), ("E2", "exc")], FOUR, 1)  # exc is hap in set 4
    assert merged.tolist() == [0.0, 1.0, 0.0, 0.0]


def test_votes_outside_the_set_are_dropped_and_the_rest_renormalised() -> None:
    votes = [("E1", "ang"), ("E1", "fru"), ("E2", "fru"), ("E3", "sad"), ("E4", "oth")]
    # E1's fru takes its half with it: ang 1/2, sad 1 of 1.5 inside the set.
    assert vote_distribution(votes, FOUR, 3) == pytest.approx([0.0, 0.0, 2 / 3, 1 / 3])
    six = vote_distribution(votes, LABEL_SETS["6"], 3)  # fru is a class of set 6
    assert six[LABEL_SETS["6"].classes.index("fru")] == pytest.approx(1.5 / 3)  # oth dropped


def test_no_vote_inside_the_set_falls_back_to_the_consensus() -> None:
    assert vote_distribution([("E1", "fru"), ("E2", "xxx")], FOUR, 2).tolist() == [0, 0, 1, 0]
    assert vote_distribution((), FOUR, 1).tolist() == [0, 1, 0, 0]
    with pytest.raises(ValueError, match="consensus class 4 is not an index"):
        vote_distribution((), FOUR, 4)


def _rewrite_votes(root: Path, utt_id: str, lines: list[str]) -> None:
    """Replace the `C-` lines of `utt_id`'s block in its EmoEvaluation file."""
    session = int(utt_id[4])
    path = root / f"Session{session}" / "dialog" / "EmoEvaluation" / f"{utt_id[:-5]}.txt"
    blocks = path.read_text().split("\n\n")
    for k, block in enumerate(blocks):
        if f"\t{utt_id}\t" in block:
            kept = [line for line in block.split("\n") if not line.startswith("C-")]
            blocks[k] = "\n".join([kept[0], *lines, *kept[1:]])
    path.write_text("\n\n".join(blocks))


def test_iemocap_evaluators_with_several_categories(corpus_copy: Path, tmp_path: Path) -> None:
    store = store_of(tmp_path / "s.zarr", corpus_copy, classes="4")
    ids = [str(u) for u in store.manifest.column("utt_id").tolist()]
    labels = dict(zip(ids, store.manifest.column("label").tolist(), strict=True))
    angry = next(u for u in ids if labels[u] == "ang")
    _rewrite_votes(
        corpus_copy,
        angry,
        ["C-E1:\tAnger; Frustration;\t()", "C-E2:\tAnger;\t()", "C-E4:\tExcited; Sadness;\t()"],
    )
    votes = store_votes(store)
    assert set(votes) == set(ids)
    chosen = (("E1", "ang"), ("E1", "fru"), ("E2", "ang"), ("E4", "exc"), ("E4", "sad"))
    assert votes[angry] == chosen
    targets, fallbacks = soft_targets(store, [angry, ids[0]], FOUR)
    assert targets.dtype == np.float32 and targets.shape == (2, 4)
    assert targets[0] == pytest.approx(np.array([0.0, 0.5, 0.5, 1.5]) / 2.5)
    assert targets.sum(axis=1) == pytest.approx([1.0, 1.0]) and fallbacks == 0
    every, _ = soft_targets(store, ids, FOUR)
    consensus = [FOUR.index_of(labels[u]) for u in ids]
    assert (every.argmax(axis=1) == consensus).mean() > 0.8  # the votes mostly agree


def test_msp_podcast_votes_from_labels_detailed(msp_podcast_corpus: Any, tmp_path: Path) -> None:
    root = tmp_path / "MSP-Podcast"
    shutil.copytree(msp_podcast_corpus.root, root)
    (root / "Labels" / "labels_detailed.csv").write_text(
        "FileName,Detailed\n"
        "MSP-PODCAST_0001_0001.wav,W1; Angry; ; A:5; V:2; D:5\n"
        "MSP-PODCAST_0001_0001.wav,W2; Angry; ; A:5; V:2; D:5\n"
        "MSP-PODCAST_0001_0001.wav,W3; Contempt; ; A:4; V:3; D:5\n"
        "MSP-PODCAST_0001_0001.wav,W4; Neutral; ; A:4; V:4; D:4\n"
    )
    store = store_of(tmp_path / "s.zarr", root, classes="4")
    ids = [str(u) for u in store.manifest.column("utt_id").tolist()]
    targets, fallbacks = soft_targets(store, ids, FOUR)
    first = ids.index("MSP-PODCAST_0001_0001")
    assert targets[first] == pytest.approx([1 / 3, 0.0, 0.0, 2 / 3])  # contempt dropped
    assert fallbacks == len(ids) - 1  # the others have no row: their consensus one-hot
    others = np.delete(targets, first, axis=0)
    assert set(others.max(axis=1).tolist()) == {1.0}


def test_a_manifest_votes_column(tmp_path: Path) -> None:
    manifest = tmp_path / "corpus.csv"
    manifest.write_text(
        "utt_id,wav,label,speaker,votes\n"
        "a,a.wav,neu,s1,neu;neu;neu\n"
        "b,b.wav,ang,s1,ang;sad;fru\n"
        "c,c.wav,hap,s2,\n"
        "d,d.wav,sad,s2,fru\n"
    )
    store = store_of(tmp_path / "m.zarr", manifest)
    assert store_votes(store)["b"] == (("1", "ang"), ("2", "sad"), ("3", "fru"))
    targets, fallbacks = soft_targets(store, ["a", "b", "c", "d"], FOUR)
    assert targets.tolist() == [[1, 0, 0, 0], [0, 0, 0.5, 0.5], [0, 1, 0, 0], [0, 0, 1, 0]]
    assert fallbacks == 2  # c has no votes, d's are all outside the set
    with pytest.raises(ValueError, match="holds no utterance 'z'"):
        soft_targets(store, ["z"], FOUR)


def test_a_store_whose_corpus_moved(corpus_copy: Path, tmp_path: Path) -> None:
    store = store_of(tmp_path / "s.zarr", corpus_copy, classes="4")
    before = store_votes(store)
    moved = corpus_copy.rename(tmp_path / "elsewhere")
    with pytest.raises(CorpusError, match=rf"not at {corpus_copy} .*--corpus-root"):
        store_votes(FeatureStore.open(store.path))
    assert store_votes(FeatureStore.open(store.path), root=moved) == before
    with pytest.raises(CorpusError, match=r"not at .*nowhere \(given\)"):
        store_votes(store, root=tmp_path / "nowhere")
    empty = tmp_path / "other" / "IEMOCAP_full_release"
    (empty / "Session1" / "dialog" / "EmoEvaluation").mkdir(parents=True)
    with pytest.raises(CorpusError, match=rf"{empty} lacks {len(before)} of the {len(before)}"):
        store_votes(store, root=empty)
    with pytest.raises(CorpusError, match=r"cannot read the IEMOCAP corpus .*--corpus-root"):
        store_votes(store, root=tmp_path / "other")


def test_a_store_that_records_no_root(corpus_copy: Path, tmp_path: Path) -> None:
    """Stores `ser extract` made before it recorded the root: the caller says where."""
    kind, reading = read_corpus(corpus_copy, classes="4")
    manifest = Manifest.from_utterances(reading.utterances, reading.root)
    store = FeatureStore.create(tmp_path / "old.zarr", manifest, kind.attrs())
    with pytest.raises(ConfigError, match=r"old.zarr does not record where .*--corpus-root"):
        store_votes(store)
    assert len(store_votes(store, root=corpus_copy)) == len(manifest)


def test_corpora_without_votes(
    crema_d_corpus: Any, msp_podcast_corpus: Any, tmp_path: Path
) -> None:
    kind, reading = read_corpus(crema_d_corpus.root)
    manifest = Manifest.from_utterances(reading.utterances, reading.root)
    gone = {**kind.attrs(reading), "corpus_root": str(tmp_path / "gone")}
    crema = FeatureStore.create(tmp_path / "c.zarr", manifest, gone)
    assert store_votes(crema) == {}  # CREMA-D ships none: its corpus is not even looked for
    with pytest.raises(ConfigError, match="soft labels need the annotators' votes: the CREMA-D"):
        soft_targets(crema, [], FOUR)
    root = tmp_path / "MSP-Podcast"
    shutil.copytree(msp_podcast_corpus.root, root)
    (root / "Labels" / "labels_detailed.csv").unlink()
    assert store_votes(store_of(tmp_path / "m.zarr", root, classes="4")) == {}
