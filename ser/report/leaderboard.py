"""EmoBox's published numbers: its intra-corpus table (10 frozen encoders on 32 corpora,
UA, WA and macro F1 on EmoBox's own folds) and its cross-corpus table (accuracy, trained
on one of IEMOCAP, MELD, RAVDESS and SAVEE, tested on another).

The numbers are package data (``published/emobox_intra.csv``, ``emobox_cross.csv``),
read from the figures of Tables 4 and 5 of EmoBox (Ma et al., Interspeech 2024, arXiv
2406.07162) as printed. They are looked up by EmoBox's own names: a corpus by its data
folder's name (`emobox_corpus`: "cremad" for ser's "crema-d"), a model by the name the
tables print (`emobox_model`: "WavLM large" for "microsoft/wavlm-large").

>>> emobox_intra("iemocap", "openai/whisper-large-v3")["ua"].value
73.54
>>> emobox_cross("iemocap", "meld", "whisper-large-v3").value
51.42
>>> emobox_model("microsoft/wavlm-base-plus") is None  # EmoBox probed wavlm-base
True
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType

from ser.corpus.kinds.emobox_corpora import emobox_corpus

PACKAGE = "ser.report"  # its published/ folder holds the CSVs
INTRA = "emobox_intra.csv"
CROSS = "emobox_cross.csv"
INTRA_SOURCE = "EmoBox Table 4"
CROSS_SOURCE = "EmoBox Table 5"
METRICS = ("ua", "wa", "f1")  # the intra-corpus table's columns
# The protocol name of EmoBox's folds (the `emobox` corpus kind's): numbers of ours on it
# are on the folds EmoBox's are.
PROTOCOL = "emobox"

# Each model EmoBox benchmarks, by the Hugging Face checkpoint it is (the papers' names:
# HuBERT large is the LL-60k one, WavLM base not base-plus, data2vec the audio model).
# data2vec 2.0 has no transformers checkpoint: only its own name finds it.
CHECKPOINTS = MappingProxyType(
    {
        "facebook/wav2vec2-base": "wav2vec 2.0 base",
        "facebook/hubert-base-ls960": "HuBERT base",
        "facebook/hubert-large-ll60k": "HuBERT large",
        "microsoft/wavlm-base": "WavLM base",
        "microsoft/wavlm-large": "WavLM large",
        "facebook/data2vec-audio-base": "data2vec base",
        "facebook/data2vec-audio-large": "data2vec large",
        "openai/whisper-large-v3": "Whisper large v3",
    }
)


@dataclass(frozen=True)
class Published:
    """One published number."""

    value: float  # percent, as the paper prints it
    metric: str  # "ua", "wa", "f1", "accuracy"
    source: str  # "EmoBox Table 4" / "EmoBox Table 5"


def emobox_model(encoder: str) -> str | None:
    """EmoBox's name of the model `encoder` is (a Hugging Face id, a ser set stem: the id's
    last part, a local folder named so, or EmoBox's own name); None when EmoBox has none.

    >>> emobox_model("facebook/hubert-base-ls960"), emobox_model("hubert-large-ll60k")
    ('HuBERT base', 'HuBERT large')
    >>> emobox_model("/models/wavlm-large/"), emobox_model("data2vec 2.0 base")
    ('WavLM large', 'data2vec 2.0 base')
    """
    text = encoder.strip().rstrip("/\\")
    own = {_fold(name): name for name in _models()}
    if _fold(text) in own:
        return own[_fold(text)]
    stems = {_fold(hub.rsplit("/", 1)[1]): name for hub, name in CHECKPOINTS.items()}
    last = re.split(r"[/\\]", text)[-1]
    return stems.get(_fold(last))


def emobox_intra(corpus: str, encoder: str) -> dict[str, Published]:
    """EmoBox's intra-corpus UA, WA and F1 of `encoder` on `corpus` (any name
    `emobox_corpus` and `emobox_model` take), by metric; {} when it has none."""
    name, model = emobox_corpus(corpus), emobox_model(encoder)
    values = _intra().get((name or "", model or ""), {})
    return {m: Published(v, m, INTRA_SOURCE) for m, v in values.items()}


def emobox_cross(train: str, test: str, encoder: str) -> Published | None:
    """EmoBox's cross-corpus accuracy of `encoder` trained on `train`, tested on `test`
    (corpora among iemocap, meld, ravdess, savee, any name `emobox_corpus` takes)."""
    key = (emobox_corpus(train) or "", emobox_corpus(test) or "", emobox_model(encoder) or "")
    value = _cross().get(key)
    return None if value is None else Published(value, "accuracy", CROSS_SOURCE)


def _fold(name: str) -> str:
    """Lower case, letters and digits only: "CREMA-D" and "crema-d" are "cremad"."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def read_rows(name: str) -> list[dict[str, str]]:
    """The rows of a package CSV (its first line a `#` comment naming the source)."""
    text = resources.files(PACKAGE).joinpath("published", name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines))


@cache
def _intra() -> dict[tuple[str, str], dict[str, float]]:
    """(corpus, model) -> metric -> value."""
    return {
        (row["corpus"], row["model"]): {m: float(row[m]) for m in METRICS}
        for row in read_rows(INTRA)
    }


@cache
def _cross() -> dict[tuple[str, str, str], float]:
    """(train, test, model) -> accuracy."""
    return {
        (row["train"], row["test"], row["model"]): float(row["accuracy"])
        for row in read_rows(CROSS)
    }


@cache
def _models() -> tuple[str, ...]:
    return tuple(dict.fromkeys(model for _, model in _intra()))
