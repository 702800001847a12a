"""`multilabel`: every emotion of the run's class set an utterance carries, a sigmoid per
class (`--target emotion+multilabel`).

Its gold is read from the annotators' votes (`ser.corpus.votes`: IEMOCAP's evaluators,
MSP-Podcast's `Labels/labels_detailed.csv`, a manifest's `votes` column), re-read from
the store's corpus as `--labels soft` reads them: a class is present where at least
`SHARE` of the annotators' weight inside the class set chose it, and the consensus class
always is ([N, C] of 0 and 1; NaN for an utterance outside the class set). An utterance
without a vote inside the set carries its consensus class alone.

Its loss is the binary cross-entropy of each class's logit (BCE with logits), averaged
over the classes and the items with gold; its predictions each class's sigmoid. Its
metrics, in percent: micro and macro F1 of the classes predicted at `THRESHOLD`
(sklearn's `f1_score`, zero_division 0; macro over the classes present in the gold or the
predictions) and the mean average precision over the classes present in the gold
(sklearn's `average_precision_score`), which validation selects on. Folds pool their F1
exactly (each class's true and false positives and negatives are kept); the pooled mAP is
the folds' mAP weighted by their items (average precision needs the ranking of every
prediction, which a record does not keep).

>>> import torch
>>> out = torch.tensor([[9.0, -9.0], [0.0, 0.0]])
>>> gold = torch.tensor([[1.0, 0.0], [float("nan"), float("nan")]])
>>> round(label_loss(out, gold).item(), 4)  # the second item has no gold
0.0001
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ser.corpus.labels import LabelSet
from ser.corpus.votes import inside, store_votes
from ser.errors import ConfigError
from ser.heads.base import GoldSource, Head

if TYPE_CHECKING:  # torch loads where a head trains or predicts, never for a report
    import torch

#: A class is present where at least this share of the votes inside the class set chose it.
SHARE = 1 / 3
#: A class is predicted where its sigmoid reaches this.
THRESHOLD = 0.5
SCORES = ("micro_f1", "macro_f1", "map")


class MultiLabelHead(Head):
    name: ClassVar[str] = "multilabel"
    score_name: ClassVar[str] = "mAP"
    score_key: ClassVar[str | None] = "map"
    scale: ClassVar[float] = 100.0
    of_the_classes: ClassVar[bool] = True

    def width(self, n_classes: int) -> int:
        return n_classes

    def gold(self, source: GoldSource) -> np.ndarray:
        votes = store_votes(source.store, source.root)
        if not votes:
            raise ConfigError(
                f"--target {self.name} reads the annotators' votes: the corpus of "
                f"{source.store.path} has none (IEMOCAP, MSP-Podcast with "
                "labels_detailed.csv and a manifest with a votes column have them)"
            )
        manifest = source.store.manifest
        ids = np.asarray(manifest.column("utt_id")).astype(str)
        codes = np.asarray(manifest.column("label")).astype(str)
        rows = [present(votes[u], c, source.label_set) for u, c in zip(ids, codes, strict=True)]
        return np.stack(rows)

    def loss(self, out: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
        return label_loss(out, gold)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return out.float().sigmoid()

    def metrics(self, pred: np.ndarray, gold: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
        has = np.isfinite(gold).all(axis=1)
        truth, probs = gold[has].astype(np.int64), pred[has]
        chosen = (probs >= THRESHOLD).astype(np.int64)
        counts = {
            "tp": (truth & chosen).sum(axis=0).tolist(),
            "fp": ((1 - truth) & chosen).sum(axis=0).tolist(),
            "fn": (truth & (1 - chosen)).sum(axis=0).tolist(),
        }
        return {
            **_f1s(counts),
            "map": _map(truth, probs),
            "n": int(has.sum()),
            "classes": list(names),
            **counts,
        }

    def score(self, metrics: Mapping[str, Any]) -> float:
        value = float(metrics["map"])
        return -np.inf if np.isnan(value) else value

    def flat(self, metrics: Mapping[str, Any]) -> dict[str, float]:
        return {f"{self.name}_{k}": float(metrics[k]) for k in SCORES}

    def pool(self, folds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        counts = {k: np.sum([f[k] for f in folds], axis=0).tolist() for k in ("tp", "fp", "fn")}
        n = np.array([f["n"] for f in folds], dtype=np.float64)
        maps = np.array([f["map"] for f in folds], dtype=np.float64)
        found = float(n @ maps / n.sum()) if n.sum() else np.nan
        return {
            **_f1s(counts),
            "map": found,
            "n": int(n.sum()),
            "classes": list(folds[0]["classes"]),
            **counts,
        }

    def gold_text(self, gold: np.ndarray, names: Sequence[str]) -> str:
        if not np.isfinite(gold).all():
            return ""
        return ";".join(n for n, g in zip(names, gold, strict=True) if g > 0)

    def fields(self, pred: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
        chosen = [n for n, p in zip(names, pred, strict=True) if p >= THRESHOLD]
        probabilities = {n: round(float(p), 4) for n, p in zip(names, pred, strict=True)}
        return {self.name: ";".join(chosen), f"{self.name}_probs": probabilities}


def present(votes: Iterable[tuple[str, str]], code: str, label_set: LabelSet) -> np.ndarray:
    """[C] 1.0 for each class of `label_set` at least `SHARE` of the votes inside it
    chose, and for the consensus class `code`'s; NaN everywhere outside the set."""
    out = np.zeros(len(label_set.classes))
    consensus = label_set.index_of(code)
    if consensus is None:
        return np.full(len(label_set.classes), np.nan)
    weights = inside(votes, label_set)
    total = sum(weights.values())
    for index, weight in weights.items():
        out[index] = float(weight / total >= SHARE - 1e-9)
    out[consensus] = 1.0
    return out


def label_loss(out: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """out [..., C] logits, gold [..., C] of 0 and 1 (NaN: no gold) -> the mean over the
    items with gold of each item's mean binary cross-entropy over the classes."""
    import torch
    import torch.nn.functional as F

    has = gold.isfinite().all(dim=-1)  # [...]
    target = gold.nan_to_num(0.0).float()
    per_item = F.binary_cross_entropy_with_logits(out.float(), target, reduction="none").mean(-1)
    return torch.where(has, per_item, 0.0).sum() / has.sum().clamp_min(1)


def _f1s(counts: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """Micro and macro F1 (percent) of each class's true/false positives and negatives;
    macro over the classes in the gold or the predictions (sklearn's `f1_score`)."""
    tp, fp, fn = (np.asarray(counts[k], dtype=np.float64) for k in ("tp", "fp", "fn"))
    micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)
    seen = (tp + fp + fn) > 0
    per_class = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    macro = float(per_class[seen].mean()) if seen.any() else np.nan
    return {"micro_f1": 100 * float(micro), "macro_f1": 100 * macro}


def _map(truth: np.ndarray, probs: np.ndarray) -> float:
    """Mean average precision (percent) over the classes with a positive in `truth`."""
    from sklearn.metrics import average_precision_score  # ~1 s to import: only here

    scored = truth.sum(axis=0) > 0
    if not scored.any():
        return np.nan
    return 100 * float(average_precision_score(truth[:, scored], probs[:, scored], average="macro"))


HEAD = MultiLabelHead  # what ser.heads registers
