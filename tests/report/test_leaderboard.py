"""EmoBox's published tables as package data (`ser.report.leaderboard`): the CSVs parse,
hold the tables' shapes, agree with the numbers quoted elsewhere, and are found by Hugging
Face ids, set stems and ser's corpus names."""

from __future__ import annotations

import doctest
import tomllib
from pathlib import Path

import pytest

from ser.corpus.kinds.emobox_corpora import CORPORA as EMOBOX_CORPORA
from ser.corpus.kinds.emobox_corpora import emobox_corpus
from ser.report import leaderboard
from ser.report.leaderboard import (
    CROSS,
    INTRA,
    Published,
    emobox_cross,
    emobox_intra,
    emobox_model,
    read_rows,
)

MODELS = 10
CORPORA = 32
CROSS_CORPORA = ("iemocap", "meld", "ravdess", "savee")


def test_the_intra_corpus_table_is_32_corpora_by_10_models_with_ua_wa_f1() -> None:
    rows = read_rows(INTRA)
    assert len(rows) == CORPORA * MODELS
    assert len({r["corpus"] for r in rows}) == CORPORA
    assert len({r["model"] for r in rows}) == MODELS
    assert len({(r["corpus"], r["model"]) for r in rows}) == len(rows)
    for r in rows:
        assert all(0 < float(r[m]) <= 100 for m in ("ua", "wa", "f1")), r


def test_the_cross_corpus_table_is_10_models_by_12_pairs() -> None:
    rows = read_rows(CROSS)
    assert len(rows) == MODELS * 12
    pairs = {(r["train"], r["test"]) for r in rows}
    assert pairs == {(a, b) for a in CROSS_CORPORA for b in CROSS_CORPORA if a != b}
    assert {r["model"] for r in rows} == {r["model"] for r in read_rows(INTRA)}


def test_the_files_name_their_source() -> None:
    for name in (INTRA, CROSS):
        text = (Path(leaderboard.__file__).parent / "published" / name).read_text()
        first = text.splitlines()[0]
        assert first.startswith("# EmoBox (Ma et al., Interspeech 2024, arXiv 2406.07162)")


@pytest.mark.parametrize(
    ("corpus", "ua"),
    [
        ("iemocap", 73.5),
        ("crema-d", 76.8),
        ("ravdess", 75.3),
        ("meld", 31.5),
        ("msp-podcast", 22.2),
    ],
)
def test_whisper_large_v3_agrees_with_the_numbers_quoted_from_the_paper(
    corpus: str, ua: float
) -> None:
    found = emobox_intra(corpus, "openai/whisper-large-v3")
    assert set(found) == {"ua", "wa", "f1"}
    assert round(found["ua"].value, 1) == ua
    assert found["ua"].source == "EmoBox Table 4" and found["ua"].metric == "ua"


def test_spot_values_of_both_tables() -> None:
    assert emobox_intra("cremad", "WavLM large") == {
        "ua": Published(74.50, "ua", "EmoBox Table 4"),
        "wa": Published(74.32, "wa", "EmoBox Table 4"),
        "f1": Published(74.39, "f1", "EmoBox Table 4"),
    }
    assert emobox_intra("MESD", "data2vec 2.0 base")["f1"].value == 43.6  # printed so
    assert emobox_intra("iemocap", "hubert-base-ls960")["ua"].value == 63.87
    # The columns are the training sets: Whisper trained on IEMOCAP, tested on MELD.
    assert emobox_cross("iemocap", "meld", "openai/whisper-large-v3") == Published(
        51.42, "accuracy", "EmoBox Table 5"
    )
    assert accuracy("meld", "iemocap", "whisper-large-v3") == 46.14
    assert accuracy("savee", "ravdess", "Whisper large v3") == 66.91
    assert accuracy("iemocap", "meld", "facebook/wav2vec2-base") == 22.50
    assert emobox_cross("iemocap", "iemocap", "whisper-large-v3") is None
    assert emobox_cross("iemocap", "cremad", "whisper-large-v3") is None


def accuracy(train: str, test: str, encoder: str) -> float | None:
    found = emobox_cross(train, test, encoder)
    return None if found is None else found.value


def test_the_best_of_each_cross_corpus_pair_is_the_one_the_paper_prints_bold() -> None:
    best = {}
    for r in read_rows(CROSS):
        pair = (r["train"], r["test"])
        if pair not in best or float(r["accuracy"]) > best[pair][1]:
            best[pair] = (r["model"], float(r["accuracy"]))
    assert best[("meld", "iemocap")] == ("WavLM large", 48.59)
    assert best[("ravdess", "iemocap")] == ("data2vec base", 40.46)
    assert best[("savee", "meld")] == ("HuBERT large", 43.74)
    others = [model for pair, (model, _) in best.items()]
    assert others.count("Whisper large v3") == 9


@pytest.mark.parametrize(
    ("encoder", "model"),
    [
        ("openai/whisper-large-v3", "Whisper large v3"),
        ("whisper-large-v3", "Whisper large v3"),
        ("facebook/hubert-base-ls960", "HuBERT base"),
        ("hubert-large-ll60k", "HuBERT large"),
        ("microsoft/wavlm-large", "WavLM large"),
        ("microsoft/wavlm-base", "WavLM base"),
        ("facebook/wav2vec2-base", "wav2vec 2.0 base"),
        ("facebook/data2vec-audio-base", "data2vec base"),
        ("data2vec-audio-large", "data2vec large"),
        ("/models/wavlm-large", "WavLM large"),  # a local copy, named so
        ("data2vec 2.0 large", "data2vec 2.0 large"),  # EmoBox's own name
        ("microsoft/wavlm-base-plus", None),
        ("facebook/wav2vec2-base-960h", None),  # fine-tuned for ASR: another model
        ("openai/whisper-small", None),
        ("/tmp/tiny-hubert", None),
    ],
)
def test_models_by_hugging_face_id_or_set_stem(encoder: str, model: str | None) -> None:
    assert emobox_model(encoder) == model


@pytest.mark.parametrize(
    ("name", "corpus"),
    [
        ("iemocap", "iemocap"),
        ("crema-d", "cremad"),
        ("msp-podcast", "msppodcast"),
        ("meld", "meld"),
        ("ravdess", "ravdess"),
        ("JL-Corpus", "jlcorpus"),
        ("emobox:cremad", "cremad"),
        ("emobox-tess", "tess"),
        ("emobox", None),
        ("manifest", None),
    ],
)
def test_corpora_by_ser_kind_title_or_emobox_store(name: str, corpus: str | None) -> None:
    assert emobox_corpus(name) == corpus


def test_the_published_corpora_are_emobox_s_32() -> None:
    """`emobox_corpus` knows the corpora by the kind's list; the tables name the same."""
    assert {row["corpus"] for row in read_rows(INTRA)} == set(EMOBOX_CORPORA)


def test_an_unknown_corpus_or_model_has_no_numbers() -> None:
    assert emobox_intra("manifest", "whisper-large-v3") == {}
    assert emobox_intra("iemocap", "microsoft/wavlm-base-plus") == {}


def test_the_csvs_ship_as_package_data() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["ser.report"]
    assert "published/*.csv" in data


def test_doctests() -> None:
    assert doctest.testmod(leaderboard).failed == 0
