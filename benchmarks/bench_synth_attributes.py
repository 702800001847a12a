"""Do a store's audio features predict its utterances' arousal, valence and dominance on
held-out speakers? Made for the demo corpus, whose attributes follow each utterance's
prosody: a ridge regression per feature set (utterance-level sets as they are, frame
sets pooled to mean and std), leave-one-session-out (each session two speakers of its
own), scored by Pearson's r and the concordance correlation (CCC) over every held-out
prediction, and r *within class* (prediction and truth less the training mean of the
utterance's consensus class): what the features know of an utterance beyond its class.
The row `class mean` predicts each utterance its class's training mean (the consensus
label as an oracle): where the features beat it, the attributes say more than the label.
Each store given is a table, so stores of two synthetic versions stand side by side.
Then the votes (`ser.corpus.votes.soft_targets`, read from each store's corpus, `--root`
for a store that does not record it): how many 4-class vote distributions are not
one-hot, and r within class between the arousal the votes imply (their classes' mean
arousal, weighted) and the rated arousal: whether the votes follow the utterance.

    python benchmarks/bench_synth_attributes.py demo/features.zarr [OTHER.zarr ...] \
        [--root demo/IEMOCAP_full_release ...]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ser.cache import FeatureStore
from ser.corpus.records import ATTRIBUTES
from ser.corpus.votes import soft_targets
from ser.heads.attribute_metrics import ccc, pearson

SETS = ("is13", "logmel80", "tiny-hubert.L2")
ALPHAS = np.logspace(-1, 5, 13)


def pooled(store: FeatureStore, name: str) -> np.ndarray:
    """One row per utterance `[n, d]`: an utterance set as stored, a frame set's mean and
    std over its frames; signed log1p of each value (a few IS13 functionals reach 1e12,
    whose outliers a plain z-score lets swamp the ridge)."""
    found = store.read(name)
    data, offsets = np.asarray(found.data, np.float64), found.offsets
    if found.attrs.get("level") != "utterance":
        rows = [data[a:b] for a, b in itertools.pairwise(offsets)]
        data = np.stack([np.concatenate([r.mean(axis=0), r.std(axis=0)]) for r in rows])
    return np.sign(data) * np.log1p(np.abs(data))


def held_out(features: np.ndarray, target: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each utterance's prediction by a ridge fitted on the other groups."""
    predicted = np.zeros_like(target)
    for group in np.unique(groups):
        test = groups == group
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS))
        model.fit(features[~test], target[~test])
        predicted[test] = model.predict(features[test])
    return predicted


def class_means(target: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each utterance's class mean over the other groups."""
    found = np.zeros_like(target)
    for group in np.unique(groups):
        test = groups == group
        for label in np.unique(labels[test]):
            mine = test & (labels == label)
            found[mine] = target[~test & (labels == label)].mean()
    return found


def scores(predicted: np.ndarray, target: np.ndarray, base: np.ndarray) -> str:
    r, agreement = pearson(target, predicted), ccc(target, predicted)
    if np.allclose(predicted, base):  # the class mean itself: nothing within a class
        return f"{r:.2f} / {agreement:.2f} / -"
    return f"{r:.2f} / {agreement:.2f} / {pearson(target - base, predicted - base):.2f}"


def table(path: Path) -> list[str]:
    store = FeatureStore.open(path)
    manifest = store.manifest
    groups = manifest.column("session").astype(str)
    labels = manifest.column("label").astype(str)
    targets = {a: manifest.column(a).astype(np.float64) for a in ATTRIBUTES}
    bases = {a: class_means(targets[a], labels, groups) for a in ATTRIBUTES}
    lines = [f"### {path} ({len(labels)} utterances, {len(np.unique(groups))} sessions)", ""]
    lines += ["| features | " + " | ".join(ATTRIBUTES) + " |", "|---|" + "---|" * len(ATTRIBUTES)]
    rows = {"class mean": {a: bases[a] for a in ATTRIBUTES}}
    for name in SETS:
        if name in store.feature_sets():
            features = pooled(store, name)
            rows[name] = {a: held_out(features, targets[a], groups) for a in ATTRIBUTES}
    for name, predicted in rows.items():
        cells = [scores(predicted[a], targets[a], bases[a]) for a in ATTRIBUTES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, "", "r / CCC / r within class, leave-one-session-out", ""]


def votes_line(path: Path, root: Path | None) -> str:
    """How far the store's 4-class votes are soft, and whether they follow the arousal."""
    store = FeatureStore.open(path)
    ids = store.manifest.column("utt_id").astype(str).tolist()
    four = store.corpus.label_set("4")
    soft, fallbacks = soft_targets(store, ids, four, root)  # [n, 4]
    consensus = np.array([four.index_of(c) for c in store.manifest.column("label").astype(str)])
    arousal = store.manifest.column("arousal").astype(np.float64)
    means = np.array([arousal[consensus == k].mean() for k in range(soft.shape[1])])
    implied = soft @ means
    base = means[consensus]  # within class: less each class's mean
    for k in range(soft.shape[1]):
        mine = consensus == k
        implied[mine] -= implied[mine].mean()
    inside = np.corrcoef(implied, arousal - base)[0, 1]
    return (
        f"votes of {path}: {np.mean(soft.max(axis=1) < 1):.0%} not one-hot, {fallbacks} "
        f"fallbacks; r within class (arousal the votes imply, rated arousal) {inside:.2f}"
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stores", nargs="+", type=Path)
    parser.add_argument("--root", action="append", type=Path, default=[])
    args = parser.parse_args(argv)
    roots = [*args.root, *[None] * len(args.stores)]
    for path in args.stores:
        print("\n".join(table(path)))
    for path, root in zip(args.stores, roots, strict=False):
        print(votes_line(path, root))


if __name__ == "__main__":
    main(sys.argv[1:])
