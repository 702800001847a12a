"""The published numbers a probe's rows stand beside, matched to an encoder on a store.

EmoBox's intra-corpus table (`ser.report.leaderboard`: UA, WA and macro F1 of 10 frozen
encoders on 32 corpora, on EmoBox's own folds) gives every store of a corpus it
benchmarks its numbers; emotion2vec's SUPERB-style probes are IEMOCAP's. An encoder is
matched by the checkpoint its layer sets were extracted from (their recorded `model`: a
Hugging Face id, or a local folder named so), by its set stem only where no model is
recorded; a corpus by the store's kind (`crema-d`: EmoBox's `cremad`), else by the one
value of its `dataset` group (an `emobox` store holds one of EmoBox's corpora:
`StoreCorpus.emobox`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ser.cache import FeatureStore
from ser.report.leaderboard import emobox_intra, emobox_model

LAST, WEIGHTED = "last layer", "weighted sum"  # the rows of ours a reference matches


@dataclass(frozen=True)
class Reference:
    """Published probes of frozen encoders: its columns are `keys` of a row's published."""

    name: str  # its columns' heading
    source: str
    protocol: str
    beside: str  # the row of ours it matches in method: `LAST` or `WEIGHTED`
    keys: Mapping[str, str]  # our metric -> its key in a row's published numbers


SUPERB = Reference(
    "SUPERB-style",
    "emotion2vec (Ma et al., 2023), Table 2",
    "frozen encoder, SUPERB's emotion recipe (a learnt weighted sum of all layers, mean "
    "pooling, linear); IEMOCAP's 5531 utterances in 4 classes (excited as happy), 5-fold "
    "leave-one-session-out; WA; IEMOCAP only",
    WEIGHTED,
    MappingProxyType({"wa": "superb_wa"}),
)
# emotion2vec's Table 2 by EmoBox's names of the models (the checkpoints the SUPERB
# benchmark uses: wavlm-base, not base-plus; HuBERT large LL-60k).
SUPERB_WA: Mapping[str, float] = MappingProxyType(
    {
        "wav2vec 2.0 base": 63.4,
        "HuBERT base": 64.9,
        "WavLM base": 65.9,
        "HuBERT large": 67.6,
        "WavLM large": 70.0,
    }
)
SUPERB_CORPUS = "iemocap"  # EmoBox's name of the corpus they are on
EMOBOX = Reference(
    "EmoBox",
    "EmoBox (Ma et al., Interspeech 2024), Table 4 (intra-corpus)",
    "frozen encoder, EmoBox's partition of each corpus (its folds and its class set; "
    "IEMOCAP: 5531 utterances, 4 classes, 5 folds by session); UA, WA and macro F1; its "
    "recipe (examples/sb) reads the last layer by default, mean-pooled, into a 2-layer MLP",
    LAST,
    MappingProxyType({"ua": "ua", "wa": "wa", "f1": "f1"}),
)
PAPERS = (SUPERB, EMOBOX)


@dataclass(frozen=True)
class Match:
    """What EmoBox calls an encoder on a store: its model and corpus (None: none)."""

    encoder: str  # what it was matched by: the recorded model, else the set stem
    model: str | None
    corpus: str | None

    def published(self) -> dict[str, float]:
        """The numbers of this model on this corpus, by their keys (`Reference.keys`)."""
        found = {k: p.value for k, p in emobox_intra(self.corpus or "", self.encoder).items()}
        superb = SUPERB_WA.get(self.model or "")
        if self.corpus == SUPERB_CORPUS and superb is not None:
            found[SUPERB.keys["wa"]] = superb
        return found

    def meta(self) -> dict[str, str | None]:
        """What a row records of the match (the report names it)."""
        return {
            "matched_by": self.encoder,
            "emobox_model": self.model,
            "emobox_corpus": self.corpus,
        }


def match(store: FeatureStore, stem: str, model: str | None) -> Match:
    """The match of encoder `stem` (its sets' recorded `model`, None: unrecorded) on `store`."""
    encoder = model or stem
    return Match(encoder, emobox_model(encoder), store.corpus.emobox)
