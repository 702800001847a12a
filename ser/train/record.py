"""Run records: ``<out>/<name>/run.json``, written atomically, checked before a resume.

A record holds the config (defaults resolved), the feature sets' fingerprints, an entry
per finished (seed, fold), the summary and the pooled metrics (`ser.report.runs` reads it).
A run on a layered input (`<stem>.L*`) also holds `"layers": {input: {"sets": [...],
"layers": [...]}}` and, per fold, `"layer_weights": {input: [w_0..w_L]}`: the learnt
softmax weights, in layer order. A run with class weights (`--class-weights balanced`)
holds `config["class_weights"]` and, per fold, `"class_weights": {class: weight}`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ser.corpus.protocols.folds import Fold
from ser.errors import ConfigError, FingerprintMismatch
from ser.report.predictions import PREDICTIONS, PredictionTable, read_predictions
from ser.train.data import TrainData
from ser.train.features import ResolvedFeature
from ser.train.loop import Evaluation, Selection

RECORD = "run.json"
# Config keys that say where a run executes, not what it trains: a resume may change them.
NOT_COMPARED = frozenset({"store", "out", "name", "device"})


def read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: unreadable run record ({e}); use --overwrite or --name") from e
    if not isinstance(record, dict) or not isinstance(record.get("folds"), list):
        raise ConfigError(f"{path}: not a run record; use --overwrite or another --name")
    return record


def check_resumable(
    path: Path, old: dict[str, Any], cfg: dict[str, Any], fingerprints: dict[str, str]
) -> None:
    """Refuse to resume `old` (at `path`) with config `cfg` or features `fingerprints`
    that differ from the record's; the message names each difference."""
    hint = "choose another --name, or --overwrite to discard it"
    before = old.get("fingerprints", {})
    changed = [
        f"{name}: {str(before.get(name))[:12]}... -> {fp[:12]}..."
        for name, fp in fingerprints.items()
        if before.get(name) != fp
    ]
    if changed:
        raise FingerprintMismatch(
            f"{path} was trained on other features than the store now holds "
            f"({'; '.join(changed)}); {hint}"
        )
    old_cfg = old.get("config", {})
    # The new config's keys: one of another family has another "family"; a record written
    # when every config held every family's options resumes (the others were defaults).
    keys = sorted(set(cfg) - NOT_COMPARED)
    diff = [
        f"{k}: {old_cfg.get(k)!r} -> {cfg.get(k)!r}" for k in keys if old_cfg.get(k) != cfg.get(k)
    ]
    if diff:
        raise ConfigError(f"{path} holds a run with another config ({'; '.join(diff)}); {hint}")


def write_json(path: Path, value: Any) -> Path:
    """`value` as JSON at `path`, atomically, the folder created (run records, sweep
    manifests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(value, indent=1) + "\n"
    atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """`write(tmp)` to a temp file in `path`'s folder, then ``os.replace`` it onto `path`:
    a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_summary(record: dict[str, Any]) -> dict[str, Any]:
    """`ser train --json`: means over seeds in percent, per-fold scores, protocol, seconds."""
    scores = ("wa", "ua", "f1")
    folds = [
        {
            "seed": int(e["seed"]),
            "fold": str(e["fold"]),
            **{k: float(e["metrics"][k]) for k in scores},
            "best_epoch": int(e["best_epoch"]),
        }
        for e in record["folds"]
    ]
    summary = {k: float(record["summary"][k]) for k in (*scores, "wa_std", "ua_std")}
    return {
        **summary,
        "folds": folds,
        "protocol": str(record["protocol"]),
        "seconds": float(record["seconds"]),
    }


def layers_record(features: list[ResolvedFeature]) -> dict[str, dict[str, list[Any]]]:
    """Each layered input's stored sets and their layers, in layer order ({}: none)."""
    return {f.name: {"sets": list(f.sets), "layers": list(f.layers)} for f in features if f.sets}


def fold_entry(
    seed: int,
    fold: Fold,
    best: Selection,
    test: Evaluation,
    stages: dict[str, Selection],
    stacked: int,
    layer_weights: dict[str, list[float]] | None = None,
) -> dict[str, Any]:
    """What training one (seed, fold) produced: `best`, the whole model's selection, after
    its earlier `stages` (if any), tested; `stacked` members trained together (1: alone);
    `layer_weights`: the selected model's softmax weights of each layered input."""
    earlier = {
        name: {"best_epoch": s.best_epoch, "seconds": s.seconds, "curves": asdict(s.curves)}
        for name, s in stages.items()
    }
    return {
        "seed": seed,
        "fold": fold.name,
        "metrics": test.metrics.to_dict(),
        "best_epoch": best.best_epoch,
        "seconds": best.seconds + sum(s.seconds for s in stages.values()),
        "stacked": stacked,
        "curves": asdict(best.curves),
        **({"stages": earlier} if earlier else {}),  # earlier stages (Zhou et al.'s branches)
        **({"layer_weights": layer_weights} if layer_weights else {}),
        "sizes": {"train": len(fold.train), "val": len(fold.val), "test": len(fold.test)},
        # what each side holds of the protocol's group (sessions, speakers, values)
        "test_groups": list(fold.test_groups),
        "val_groups": list(fold.val_groups),
        **({"group": fold.unit} if fold.unit else {}),
        **({"left_out": list(fold.left_out)} if fold.left_out else {}),
        **({"shared_speakers": list(fold.shared_speakers)} if fold.shared_speakers else {}),
    }


def fold_predictions(seed: int, fold: str, test: Evaluation, data: TrainData) -> PredictionTable:
    """A (seed, fold)'s test predictions, in manifest order, for predictions.csv."""
    order = np.argsort(test.index, kind="stable")
    rows = test.index[order]
    at = np.searchsorted(data.manifest_rows, rows)  # positions: manifest_rows ascend
    return PredictionTable.of(
        data.classes,
        seed,
        fold,
        data.utt_ids[at],
        data.speakers[at],
        rows,
        test.y_true[order],
        test.y_pred[order],
        test.probs[order],
    )


def kept_predictions(
    run_dir: Path, record: dict[str, Any]
) -> dict[tuple[int, str], PredictionTable]:
    """The rows of predictions.csv (if any) of the (seed, fold)s `record` holds, by key:
    a resumed run keeps them."""
    path = run_dir / PREDICTIONS
    if not record["folds"] or not path.exists():
        return {}
    table = read_predictions(path)
    held = set(table.runs())
    keys = [(int(e["seed"]), str(e["fold"])) for e in record["folds"]]
    return {k: table.take((table.seed == k[0]) & (table.fold == k[1])) for k in keys if k in held}
