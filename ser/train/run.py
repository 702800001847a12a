"""A training run: feature sets × protocol folds × seeds -> one run record.

``<out>/<name>/run.json`` is written after each group; run again, an interrupted run
resumes from its finished (seed, fold)s when the config and the feature sets'
fingerprints are the record's, and is refused, the difference named, otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

import ser
from ser.cache import FeatureStore
from ser.corpus.registry import label_set, store_kind
from ser.corpus.wer import transcripts_wer
from ser.errors import ConfigError, StoreError
from ser.models.config import plan_inputs
from ser.models.losses import balanced_weights
from ser.report.metrics import Metrics, pool_metrics, summarize
from ser.report.predictions import PREDICTIONS, concat, predictions_csv
from ser.runtime.threads import ThreadChoice, set_torch_threads
from ser.train.checkpoint import (
    CHECKPOINTS,
    fold_key,
    has_checkpoint,
    provenance,
    remove_checkpoints,
)
from ser.train.data import TrainData, load_data
from ser.train.features import ResolvedFeature, is_asr_text, resolve_features
from ser.train.final import train_final
from ser.train.group import Job, default_at_once, describe, make_groups, train_group
from ser.train.group_protocols import parse_protocol
from ser.train.plan import Plan, Prepared, TrainConfig, config_record, make_plan, validation_text
from ser.train.progress import Progress
from ser.train.protocols import ProtocolConfig, make_folds
from ser.train.record import (
    RECORD,
    atomic,
    check_resumable,
    json_summary,
    kept_predictions,
    layers_record,
    read_record,
    write_json,
)

__all__ = [
    "Plan", "Prepared", "Progress", "TrainConfig", "json_summary", "make_plan",
    "train", "train_many",
]  # fmt: skip


def train(config: TrainConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run (or resume) `config`; return its run record (also in ``<out>/<name>/run.json``)."""
    return train_many([config], progress)[0]


def train_many(
    configs: Sequence[TrainConfig],
    progress: Progress | None = None,
    threads: ThreadChoice | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) several configs; jobs of different runs that can share a stacked
    model train as one (`ser.train.group`). Records as `train` writes them, in order.
    Threads and ``members_at_once`` come from the first config; `threads`, a choice made
    by the caller (`ser sweep`'s layout), replaces the threads and is recorded as it says."""
    plans = [make_plan(config) for config in configs]
    before = torch.get_num_threads()
    # The process's CPU budget, not the machine's cores: torch's default of one thread per
    # core made a run 10x slower beside one other busy process (ser/runtime/threads.py).
    count = threads.count if threads else configs[0].threads if configs else None
    chosen = set_torch_threads(threads=count)
    chosen = threads if threads else chosen
    # Denormal floats (masked attention rows, vanishing gradients) cost x86 CPUs 10-100x
    # per operation: with them, epochs of the demo's MSMSER took 3-18 s instead of 0.65 s.
    # Flushing them to zero changes results only below float32's normal range.
    on_cpu = any(p.device.type == "cpu" for p in plans)
    flushed = on_cpu and torch.set_flush_denormal(True)
    try:
        return _train(list(configs), plans, progress or Progress(), chosen)
    finally:
        torch.set_num_threads(before)
        if flushed:
            torch.set_flush_denormal(False)


def _train(
    configs: list[TrainConfig], plans: list[Plan], progress: Progress, threads: ThreadChoice
) -> list[dict[str, Any]]:
    loaded: dict[tuple[Any, ...], TrainData] = {}  # runs over the same data share it
    runs = [_prepare(c, p, progress, loaded, threads) for c, p in zip(configs, plans, strict=True)]
    jobs = [Job(run, seed, k, fold) for run in runs for seed, k, fold in run.todo]
    at_once = configs[0].members_at_once if configs else None
    if at_once is None and plans:
        at_once = default_at_once(plans[0].device, plans[0].family)
    for group in make_groups(jobs, at_once):
        progress.fold_start(group[0].seed, describe(group), group[0].run.plan.epochs)
        for job, entry in zip(group, train_group(group, progress), strict=True):
            job.run.record["folds"].append(entry)
            progress.fold_end(job.seed, job.fold.name, entry)
        for run in {id(job.run): job.run for job in group}.values():
            _finish(run, complete=False)
    for run in runs:
        if run.config.final:  # one model on all sessions, for new data
            train_final(run, progress)
    return [_finish(run, complete=True) for run in runs]


def _prepare(
    config: TrainConfig,
    plan: Plan,
    progress: Progress,
    loaded: dict[tuple[Any, ...], TrainData],
    threads: ThreadChoice,
) -> Prepared:
    """Open the store, check the record, load (or reuse) the data, make the folds."""
    store = FeatureStore.open(config.store)
    features = resolve_features(store, config.features)
    unit, specs = plan_inputs(config.model, [f.info() for f in features])
    if unit == "dialog":
        _check_dialogs(store, plan.name)
    # The first log line, once the run is known to start (refusals come alone).
    # e.g. "2 torch threads (all 2, brief waits: affinity 2 cores, cgroup none, 1 worker)"
    plural = "s" if threads.count != 1 else ""
    first = f"{plan.name}: {plan.device}, {threads.count} torch thread{plural} ({threads.source})"
    # The class set of the store's corpus (IEMOCAP's for stores made before kinds).
    labels = store.manifest.column("label").tolist()
    classes = label_set(store.attrs, plan.classes, labels)
    record = _start_record(config, plan, features, progress, first, classes.classes)
    key = (store.path.resolve(), tuple(f.name for f in features), plan.classes, str(plan.device))
    t0 = time.perf_counter()
    if key not in loaded:
        loaded[key] = load_data(store, features, classes, plan.device)
    data = loaded[key]
    record["timings"].update(
        load=time.perf_counter() - t0, device=str(plan.device), threads=threads.count
    )
    record["threads"] = asdict(threads)
    record["data"] = {"utterances": len(data), "dropped": data.dropped}
    asr = _asr_record(store, features, data.manifest_rows)
    if asr:
        record["asr"] = asr
    for name, entry in asr.items():
        wer = "unknown" if entry["wer"] is None else f"{100 * entry['wer']:.2f} %"
        progress.message(f"{name}: ASR transcripts {entry['transcripts']}, WER {wer}")
    for reason, count in data.dropped.items():
        progress.message(f"dropped {count} utterance(s): {reason}")
    protocol = ProtocolConfig(plan.protocol, config.val, plan.seeds[0])
    dialogs = data.dialogs if unit == "dialog" else None
    columns = _group_columns(store, plan.protocol, data.manifest_rows)
    folds = make_folds(protocol, data.sessions, data.speakers, data.labels, dialogs, columns)
    record["speaker_independent"] = all(f.speaker_independent for f in folds)
    for fold in folds:
        progress.message(fold.describe())
    if plan.class_weights != "none":
        progress.message(weights_line(plan, data.classes, data.labels[folds[0].train]))
    done = {(e["seed"], e["fold"]) for e in record["folds"]}
    if done:
        progress.message(f"resuming {plan.name}: {len(done)} (seed, fold) run(s) already done")
    todo = [
        (seed, k, fold)
        for seed in plan.seeds
        for k, fold in enumerate(folds)
        if (seed, fold.name) not in done
    ]
    recorded = provenance(store, features)  # what its checkpoints hold of the sets
    prepared = Prepared(config, plan, record, data, unit, list(specs), todo, recorded)
    prepared.predictions.update(kept_predictions(plan.run_dir, record))
    return prepared


def weights_line(plan: Plan, classes: Sequence[str], first_train: np.ndarray) -> str:
    """e.g. "class weights balanced (MELD's default; --class-weights none turns them off),
    each fold's from its training side, the first's: neu 0.31, hap 1.2, ..."."""
    why = f"{plan.class_weights_from}'s default; --class-weights none turns them off"
    weights = balanced_weights(first_train, len(classes))
    shown = ", ".join(f"{c} {w:.3g}" for c, w in zip(classes, weights, strict=True))
    return (
        f"class weights {plan.class_weights}{f' ({why})' if plan.class_weights_from else ''}, "
        f"each fold's from its training side, the first's: {shown}"
    )


def _check_dialogs(store: FeatureStore, name: str) -> None:
    """A `ConfigError` when a dialog-context model meets a corpus without dialogs (each
    utterance a dialog of its own: CREMA-D, RAVDESS, MSP-Podcast, a manifest without a
    dialog column): its context would be the utterance alone."""
    dialogs = store.manifest.column("dialog")
    if len(dialogs) and len(np.unique(dialogs)) == len(dialogs):
        kind = store_kind(store.attrs)
        raise ConfigError(
            f"{name}: a dialog-context model needs dialogs and their order, and {kind.title} "
            f"({store.path}) has none: each utterance is a dialog of its own. Train it on "
            "IEMOCAP, MELD or a manifest with dialog and order columns; on this corpus "
            "choose an utterance-level model (e.g. --fusion none without --context)"
        )


def _group_columns(store: FeatureStore, protocol: str, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The manifest column a corpus protocol groups by (`logo:<column>`, `official`: the
    split), at the run's rows; {} for the others."""
    grouped = parse_protocol(protocol)
    if grouped is None or grouped.column not in store.manifest.names:
        return {}
    return {grouped.column: store.manifest.column(grouped.column)[rows]}


def _asr_record(
    store: FeatureStore, features: list[ResolvedFeature], rows: np.ndarray
) -> dict[str, dict[str, Any]]:
    """Per ASR-text feature set of the run: its transcripts and their WER against the
    gold transcripts of the run's utterances (`ser report` shows it)."""
    out: dict[str, dict[str, Any]] = {}
    for feature in features:
        attrs = store.info(feature.stored[0]).attrs  # a layered input's sets share them
        if not is_asr_text(attrs):
            continue
        name = str(attrs["transcripts"])
        entry: dict[str, Any] = {"transcripts": name, "asr_model": attrs.get("asr_model")}
        try:
            if store.transcript_attrs(name)["fingerprint"] != attrs["transcripts_fingerprint"]:
                raise ValueError("transcripts replaced after this feature set was extracted")
            stored = store.read_transcripts(name)
            entry.update(asdict(transcripts_wer(store.manifest, stored, rows.tolist())))
        except (ValueError, StoreError) as error:  # no gold words, or transcripts gone
            entry.update(wer=None, note=str(error))
        out[feature.name] = entry
    return out


def _start_record(
    config: TrainConfig,
    plan: Plan,
    features: list[ResolvedFeature],
    progress: Progress,
    first: str,
    data_classes: tuple[str, ...],
) -> dict[str, Any]:
    cfg = config_record(config, plan)
    fingerprints = {f.name: f.fingerprint for f in features}
    path = plan.run_dir / RECORD
    # Refusals first, so that they come alone on stderr; then the run's first line.
    old = None
    if path.exists() and not config.overwrite:
        old = read_record(path)
        check_resumable(path, old, cfg, fingerprints)
    elif not path.exists() and _holds_other_files(plan.run_dir):
        raise ConfigError(
            f"{plan.run_dir} exists and holds no run record; choose another --name or --out"
        )
    progress.message(first)
    if old is not None:
        old["config"] = cfg  # bookkeeping keys (store path, device) may have changed
        old.setdefault("timings", {})
        # issue 13: an entry without its checkpoint (an older run) is trained again
        old["folds"] = [
            e for e in old["folds"] if has_checkpoint(plan.run_dir, fold_key(e["seed"], e["fold"]))
        ]
        return old
    if path.exists():  # --overwrite
        progress.message(f"--overwrite: discarding the earlier record {path}")
        remove_checkpoints(plan.run_dir)  # issue 13
    return {
        "name": plan.name,
        "config": cfg,
        "protocol": plan.protocol,
        "speaker_independent": plan.protocol != "random",
        "validation": validation_text(plan.protocol, config.val),
        "classes": list(data_classes),
        "complete": False,
        "summary": None,
        "folds": [],
        "pooled": None,
        "seconds": 0.0,
        "timings": {},
        "fingerprints": fingerprints,
        **({"layers": layers} if (layers := layers_record(features)) else {}),
        "version": ser.__version__,
        "store": str(Path(config.store).resolve()),
    }


def _holds_other_files(run_dir: Path) -> bool:
    ours = (CHECKPOINTS, PREDICTIONS)  # (predictions.csv is written just before run.json)
    return run_dir.exists() and any(p.name not in ours for p in run_dir.iterdir())


def _finish(run: Prepared, complete: bool) -> dict[str, Any]:
    record = run.record
    if record["folds"]:
        results = [(int(e["seed"]), Metrics.from_dict(e["metrics"])) for e in record["folds"]]
        record["summary"] = summarize(results)
        record["pooled"] = pool_metrics([m for _, m in results], record["classes"]).to_dict()
    record["complete"] = complete
    fold_seconds = sum(float(e["seconds"]) for e in record["folds"])
    record["timings"]["folds"] = fold_seconds
    record["timings"]["wall"] = time.perf_counter() - run.started
    record["seconds"] = fold_seconds + float(record["timings"].get("load", 0.0))
    _write_predictions(run)
    write_json(run.plan.run_dir / RECORD, record)
    return record


def _write_predictions(run: Prepared) -> None:
    """predictions.csv: the rows of every (seed, fold) the record holds, in its order (an
    entry resumed from a run trained before predictions were kept has none)."""
    keys = [(int(e["seed"]), str(e["fold"])) for e in run.record["folds"]]
    if not keys:
        return
    tables = [run.predictions[k] for k in keys if k in run.predictions]
    text = predictions_csv(concat(tables, run.data.classes))
    path = run.plan.run_dir / PREDICTIONS
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
