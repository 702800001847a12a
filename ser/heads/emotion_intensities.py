"""`emotions`: CMU-MOSEI's six emotions (happy, sad, anger, surprise, disgust, fear) per
segment, read from the manifest's float columns of their intensities in [0, 3]
(`ser.corpus.kinds.cmu_mosei`; `--target emotions`, `--target sentiment+emotions`).

An emotion is present where its gold intensity is above 0 (at least one of the segment's
three annotators rated it). The head trains in one of two ways (`--emotions-as`):

- ``presence`` (the default): a sigmoid per emotion, the binary cross-entropy of its
  logit against presence, predictions each emotion's probability. The papers that report
  MOSEI's emotions per emotion treat each as a binary presence task this way (Zadeh et
  al., ACL 2018, CMU-MOSEI's paper, P18-1208; Tsai et al.'s and later multi-label
  evaluations of MOSEI, `eval_mosei_emo`), so it is what a comparison with them needs.
  An emotion is predicted present where its probability is above `THRESHOLD` (0.5, as
  `eval_mosei_emo` thresholds it).
- ``intensity``: a linear output per emotion regressed on its intensity with the mean
  absolute error (as the score head trains the sentiment), predictions clipped to [0, 3].
  An emotion is predicted present where its predicted intensity is above `LEAST` (1/6):
  a gold intensity is the mean of three integer ratings, so the weakest presence it can
  show is 1/3 and 1/6 lies halfway between it and none (a regressor's output is never
  exactly 0, so "above 0" would call every emotion present).

Metrics, per emotion and their means over the six (percent), of presence predicted
against presence in the gold: weighted accuracy as the MOSEI literature defines it,
``WA = (TP * N / P + TN) / (2 N)`` with P and N the segments the emotion is present and
absent in (Tong et al., ACL 2017, P17-1142, which CMU-MOSEI's paper and `eval_mosei_emo`
follow), i.e. the mean of the recalls of present and absent, sklearn's
`balanced_accuracy_score` (where one side has no segment, the other's recall alone, as
sklearn takes it); and F1 weighted by support over present and absent (sklearn's
`f1_score(average="weighted")`, as `eval_mosei_emo` scores each emotion). Validation
selects on the mean WA, which, unlike accuracy, a model calling every rare emotion absent
does not win. Folds pool exactly: each keeps every emotion's 2x2 counts.

>>> import numpy as np
>>> head = EmotionIntensitiesHead()
>>> gold = np.array([[1.0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [2.0, 0, 0, 0, 0, 0]])
>>> m = head.metrics(np.full((3, 6), 0.9), gold, EMOTIONS)
>>> m["wa"]["happy"], m["wa"]["sad"]  # happy: both present found, the absent one missed
(50.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ser.corpus.kinds.cmu_sdk import EMOTIONS
from ser.corpus.labels import LabelSet
from ser.errors import ConfigError
from ser.heads.base import GoldSource, Head

if TYPE_CHECKING:  # torch loads where a head trains or predicts, never for a report
    import torch

    from ser.cache.manifest import Manifest

#: `--emotions-as`: what the head trains on, presence (the default) or intensity.
EMOTIONS_AS = ("presence", "intensity")
#: A predicted probability above this is presence (``presence``).
THRESHOLD = 0.5
#: A predicted intensity above this is presence (``intensity``): halfway to 1/3.
LEAST = 1 / 6
#: The intensities' scale.
TOP = 3.0
_COUNTS = ("tp", "fp", "fn", "tn")


class EmotionIntensitiesHead(Head):
    name: ClassVar[str] = "emotions"
    score_name: ClassVar[str] = "mean WA"
    score_key: ClassVar[str | None] = "wa_mean"
    scale: ClassVar[float] = 100.0
    options: ClassVar[tuple[str, ...]] = ("emotions_as",)

    def __init__(self, emotions_as: str = "presence") -> None:
        if emotions_as not in EMOTIONS_AS:
            raise ConfigError(
                f"--emotions-as {emotions_as!r}: choose one of {', '.join(EMOTIONS_AS)}"
            )
        self.emotions_as = emotions_as

    @property
    def cut(self) -> float:
        """Above this a prediction says the emotion is present."""
        return THRESHOLD if self.emotions_as == "presence" else LEAST

    def width(self, n_classes: int) -> int:
        return len(EMOTIONS)

    def names(self, classes: Sequence[str]) -> tuple[str, ...]:
        return EMOTIONS

    def gold(self, source: GoldSource) -> np.ndarray:
        manifest = source.store.manifest
        lacking = [e for e in EMOTIONS if not _floats(manifest, e)]
        if lacking:
            raise ConfigError(
                f"--target {self.name}: the manifest of {source.store.path} has no "
                f"intensities of {', '.join(lacking)} (CMU-MOSEI's stores have the six)"
            )
        return np.stack([np.asarray(manifest.column(e), np.float64) for e in EMOTIONS], 1)

    def loss(self, out: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
        """out [..., 6], gold [..., 6] intensities (NaN: none) -> the mean over the items
        with gold of each item's mean over the emotions: binary cross-entropy against
        presence, or the absolute error of the intensity."""
        import torch
        import torch.nn.functional as F

        has = gold.isfinite().all(dim=-1)  # [...]
        value = gold.nan_to_num(0.0).float()
        if self.emotions_as == "presence":
            target = (value > 0).float()
            each = F.binary_cross_entropy_with_logits(out.float(), target, reduction="none")
        else:
            each = (out.float() - value).abs()
        return torch.where(has, each.mean(-1), 0.0).sum() / has.sum().clamp_min(1)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        if self.emotions_as == "presence":
            return out.float().sigmoid()
        return out.float().clamp(0.0, TOP)

    def metrics(self, pred: np.ndarray, gold: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
        has = np.isfinite(gold).all(axis=1)
        chosen, truth = pred[has] > self.cut, gold[has] > 0  # [n, 6] each
        counts = {
            "tp": (chosen & truth).sum(axis=0),
            "fp": (chosen & ~truth).sum(axis=0),
            "fn": (~chosen & truth).sum(axis=0),
            "tn": (~chosen & ~truth).sum(axis=0),
        }
        return scored({k: v.tolist() for k, v in counts.items()}, int(has.sum()), names)

    def score(self, metrics: Mapping[str, Any]) -> float:
        value = float(metrics["wa_mean"])
        return -np.inf if np.isnan(value) else value

    def flat(self, metrics: Mapping[str, Any]) -> dict[str, float]:
        means = {f"{self.name}_{k}_mean": float(metrics[f"{k}_mean"]) for k in ("wa", "f1")}
        return means | {
            f"{self.name}_{k}_{e}": float(v) for k in ("wa", "f1") for e, v in metrics[k].items()
        }

    def pool(self, folds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        counts = {k: np.sum([f[k] for f in folds], axis=0).tolist() for k in _COUNTS}
        return scored(counts, sum(int(f["n"]) for f in folds), folds[0]["emotions"])

    def columns(self, names: Sequence[str]) -> list[str]:
        return [c for n in names for c in (f"{self.name}_{n}_gold", f"{self.name}_{n}")]

    def cells(self, pred: np.ndarray, gold: np.ndarray, names: Sequence[str]) -> list[list[str]]:
        return [
            [
                c
                for p, g in zip(ps, gs, strict=True)
                for c in (f"{g:.6g}" if np.isfinite(g) else "", f"{p:.6g}")
            ]
            for ps, gs in zip(pred, gold, strict=True)
        ]

    def fields(self, pred: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
        present = [n for n, p in zip(names, pred, strict=True) if p > self.cut]
        values = {n: round(float(p), 4) for n, p in zip(names, pred, strict=True)}
        kind = "probs" if self.emotions_as == "presence" else "intensities"
        return {self.name: ";".join(present), f"{self.name}_{kind}": values}

    def wanted(self, label_set: LabelSet) -> str:
        return f"the six emotions' {self.emotions_as}"


def _floats(manifest: Manifest, column: str) -> bool:
    """The manifest has `column`, of numbers."""
    return column in manifest.names and np.asarray(manifest.column(column)).dtype.kind == "f"


def scored(counts: Mapping[str, Sequence[int]], n: int, names: Sequence[str]) -> dict[str, Any]:
    """Each emotion's WA and weighted F1 (percent) of its 2x2 `counts`, their means over
    the emotions, the counts kept beside them (what `pool` adds up)."""
    each = [_binary(*(int(counts[k][i]) for k in _COUNTS)) for i in range(len(names))]
    wa = {e: s[0] for e, s in zip(names, each, strict=True)}
    f1 = {e: s[1] for e, s in zip(names, each, strict=True)}
    return {
        "n": n,
        "emotions": list(names),
        **{k: list(counts[k]) for k in _COUNTS},
        "wa": wa,
        "f1": f1,
        "wa_mean": _mean(wa.values()),
        "f1_mean": _mean(f1.values()),
    }


def _binary(tp: int, fp: int, fn: int, tn: int) -> tuple[float, float]:
    """WA ((TP N / P + TN) / 2N: the mean recall of the sides with segments) and F1
    weighted by support (percent) of an emotion's 2x2 table; NaN for an empty one."""
    p, n = tp + fn, tn + fp
    if not p + n:
        return np.nan, np.nan
    recalls = [hit / size for hit, size in ((tp, p), (tn, n)) if size]
    f1 = [2 * a / (2 * a + b + c) if a + b + c else 0.0 for a, b, c in ((tp, fp, fn), (tn, fn, fp))]
    return 100 * float(np.mean(recalls)), 100 * (p * f1[0] + n * f1[1]) / (p + n)


def _mean(values: Iterable[float]) -> float:
    found = [v for v in values if not np.isnan(v)]
    return float(np.mean(found)) if found else np.nan


HEAD = EmotionIntensitiesHead  # what ser.heads registers
