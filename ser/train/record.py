"""A run's record (`ser.runs.record.RunRecord`) as training writes it, in the order of its
life: its config (`config_record`), started new or read back to resume (`start_record`,
refused where the config or the sets differ), a (seed, fold)'s entry and predictions
(`member_entries`: `member_entry`, `fold_entry`, `fold_predictions`) added after each
group (`record_group`),
scored (`ser.runs.record.run_scores`) and written with predictions.csv (`finish`).

A run on a layered input (`<stem>.L*`) holds `layers`: `{input: {"sets": [...],
"layers": [...]}}` and, per fold, `layer_weights`: `{input: [w_0..w_L]}`, the learnt
softmax weights in layer order. A run with class weights (`--class-weights balanced`)
holds `config["class_weights"]` and, per fold, `class_weights`: `{class: weight}`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

import ser
from ser.cache.atomic import atomic
from ser.cache.corpus import StoreCorpus
from ser.corpus.labels import LabelSet
from ser.corpus.protocols.folds import Fold, Protocol
from ser.errors import ConfigError, FingerprintMismatch, ReportError
from ser.heads.base import Side, TablePart
from ser.heads.registry import HEADS
from ser.models.targets import Targets
from ser.runs.config import RunConfig
from ser.runs.curves import Curves as RecordedCurves
from ser.runs.fold_entry import FoldEntry, Sizes, Stage
from ser.runs.predictions import (
    PREDICTIONS,
    PredictionTable,
    concat,
    predictions_csv,
    read_predictions,
    uneven_folds,
)
from ser.runs.record import RECORD, RunRecord, read, run_scores, write
from ser.runtime.threads import ThreadChoice
from ser.track.progress import Progress
from ser.track.tracking import forget, log
from ser.train.calibration import votes_jsd
from ser.train.checkpoint import CHECKPOINTS, fold_key, has_checkpoint, remove_checkpoints
from ser.train.data import TrainData
from ser.train.engine import Evaluation, Selection, Steps
from ser.train.features import ResolvedFeature, layers_record
from ser.train.group import Trained
from ser.train.options import Recorded, ResolvedConfig, TrainConfig, recorded_fields
from ser.train.plan import (
    Job,
    Prepared,
    run_dir,
    run_targets,
    seeds_of,
    tested,
    tracking_of,
)

#: In a run's folder: the lock a training process holds (`ser.train.recipe`).
RUN_LOCK = ".lock"


def _keys(which: Callable[[Recorded], bool]) -> frozenset[str]:
    return frozenset(how.key or name for name, how in recorded_fields(TrainConfig) if which(how))


# Config keys that say where a run executes, not what it trains: a resume may change them.
NOT_COMPARED = _keys(lambda how: not how.compared)
# Keys that records written before every option was recorded leave out when it is off. A
# record holds them as null now; a sweep cell's key hashes its config without them, so
# that the cells of every sweep already run keep their folders.
ONCE_LEFT_OUT = _keys(lambda how: how.once_left_out)
# The keys beside a model family's options (the flattened ones are the family's).
NAMED = _keys(lambda how: not how.flat) | {"family"}


def config_record(
    config: ResolvedConfig, test: StoreCorpus | None = None, streamed: Sequence[str] | None = None
) -> dict[str, Any]:
    """The resolved run's config (`ser.train.plan.resolve`) as recorded: every option
    that can change a result, on or off (off: null), as its declaration says
    (`Recorded`), the model's options flattened beside its family's name
    (`models.registry.config_record`); `test`: a cross-corpus run's test store's corpus;
    `streamed`: the inputs read from the store under the memory budget (None: not known
    yet, left out)."""
    resolved = resolutions(config, test, streamed)
    record: dict[str, Any] = {}
    for name, how in recorded_fields(type(config)):
        key = how.key or name
        if how.resolved and key not in resolved:
            continue
        value = resolved[key] if how.resolved else getattr(config, name)
        if value is None or value == how.off:
            record[key] = None
            continue
        spelled = how.spell(value) if how.spell else _json(value)
        if how.flat:
            record |= spelled
        else:
            record[key] = spelled
    return record


def resolutions(
    config: ResolvedConfig, test: StoreCorpus | None = None, streamed: Sequence[str] | None = None
) -> dict[str, object]:
    """What the run resolved of its options, by record key: the resolved config's values
    (its defaults filled in; its seeds each), a cross-corpus run's test store
    (`ser.train.plan.tested`), its targets' keys (`Targets.record_keys`), the masks
    --augment mask draws and the inputs it streams."""
    values: dict[str, object] = {
        name: getattr(config, name)
        for name, how in recorded_fields(type(config))
        if how.resolved and how.key is None and not how.of_targets
    }
    values["seeds"] = seeds_of(config)
    values["test"] = tested(config, test)
    if streamed is not None:  # which inputs streamed changes their batches
        values["streamed"] = sorted(streamed) or None
    return values | run_targets(config).record_keys()


def _json(value: object) -> Any:
    """`value` as JSON: tuples as lists, a parsed value (a protocol, a device) as its text."""
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    return value if isinstance(value, str | int | float | bool) else str(value)


def cell_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """`cfg` as the records written before every option was recorded held it: the keys
    of `ONCE_LEFT_OUT` that are off left out (what a sweep cell's key hashes)."""
    return {k: v for k, v in cfg.items() if not (k in ONCE_LEFT_OUT and v is None)}


# A run's record as it starts (new, or read back to resume) and the rows of
# predictions.csv of the (seed, fold)s it keeps.
Started = tuple[RunRecord, dict[tuple[int, str], PredictionTable]]


def start_record(
    config: ResolvedConfig,
    protocol: Protocol,
    features: list[ResolvedFeature],
    classes: LabelSet,
    progress: Progress,
    threads: ThreadChoice,
    views: Mapping[str, str] | None = None,
    streamed: Sequence[str] = (),
    test: StoreCorpus | None = None,
) -> Started:
    """The resolved run's record: new, or read back to resume (refused where the config
    or the sets' fingerprints differ), with the rows it keeps; its first line
    (`first_line`) said once it starts. `protocol`: the run's on its store; `classes`:
    the class set its store is read with; `views`: the fingerprints of the view sets it
    reads (`--views`), kept beside its inputs'; `test`: a cross-corpus run's test store's
    corpus."""
    cfg = config_record(config, test, streamed)
    fingerprints = {f.name: f.fingerprint for f in features} | dict(views or {})
    folder = run_dir(config)
    path = folder / RECORD
    # Refusals first, so that they come alone on stderr; then the run's first line.
    old = None
    if path.exists() and not config.overwrite:
        old = read_record(path)
        check_resumable(path, old, cfg, fingerprints)
    elif not path.exists() and _holds_other_files(folder):
        raise ConfigError(
            f"{folder} exists and holds no run record; choose another --name or --out"
        )
    progress.message(first_line(config, threads))
    if old is not None:
        # Where it runs (store path, device) may have changed: an entry trained on another
        # device than the config now names says which. An entry without its checkpoint is
        # trained again: `ser predict` loads every fold's.
        kept = tuple(
            _on(e, old.config.get("device"), cfg["device"])
            for e in old.folds
            if has_checkpoint(folder, fold_key(*e.key))
        )
        resumed = replace(old, config=RunConfig.from_json(cfg), folds=kept)
        rows, uneven = kept_predictions(folder, resumed)
        if uneven:  # rows lost from predictions.csv (a file cut short): those train again
            said = "; ".join(uneven.values())
            progress.message(f"{folder / PREDICTIONS} lost rows ({said}): training again")
            resumed = replace(resumed, folds=tuple(e for e in kept if e.key not in uneven))
        return resumed, rows
    if path.exists():  # --overwrite
        progress.message(f"--overwrite: discarding the earlier record {path}")
        remove_checkpoints(folder)  # else the old run's folds join predict's ensemble
        if logged := forget(folder):  # else its members stand for the new run's
            progress.message(f"--overwrite: discarding what it logged ({', '.join(logged)})")
    record = RunRecord(
        name=config.name,
        config=RunConfig.from_json(cfg),
        protocol=str(protocol),
        classes=tuple(run_targets(config).classes(classes)),
        speaker_independent=True,  # until the folds say (`ser.train.prepare`)
        validation=protocol.validation(config.val),
        complete=False,
        fingerprints=fingerprints,
        layers=layers_record(features),
        version=ser.__version__,
        store=str(Path(config.store).resolve()),
    )
    return record, {}


def _on(entry: FoldEntry, before: str | None, now: str) -> FoldEntry:
    """`entry` saying the device it trained on (`before`) where the record now names
    another."""
    trained = entry.device or before
    device = None if trained in (None, now) else trained
    return entry if device == entry.device else replace(entry, device=device)


def first_line(config: ResolvedConfig, threads: ThreadChoice) -> str:
    """The run's first log line, said once it is known to start (refusals come alone),
    e.g. "hubert+mpnet_mit_loso_c4: cpu, 2 torch threads (all 2, brief waits: affinity 2
    cores, cgroup none, 1 worker)"."""
    plural = "s" if threads.count != 1 else ""
    said = f"{threads.count} torch thread{plural} ({threads.source})"
    return f"{config.name}: {config.device}, {said}"


def read_record(path: Path) -> RunRecord:
    """The record a run resumes; `ConfigError` naming the file when it is not one."""
    try:
        return read(path)
    except ReportError as e:
        raise ConfigError(f"{e}; use --overwrite or another --name") from e


def check_resumable(
    path: Path, old: RunRecord, cfg: dict[str, Any], fingerprints: dict[str, str]
) -> None:
    """Refuse to resume `old` (at `path`) with config `cfg` or features `fingerprints`
    that differ from the record's; the message names each difference."""
    hint = "choose another --name, or --overwrite to discard it"
    before = old.fingerprints
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
    diff = config_changes(old.config, cfg)
    if diff:
        raise ConfigError(f"{path} holds a run with another config ({'; '.join(diff)}); {hint}")


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Each key whose value differs between a record's config `old` and a new one, e.g.
    "calibrate: 'temperature' -> off": the two compared whole, a key one lacks read as off
    (null), but for `NOT_COMPARED`. A key of a model family's options that only `old` has
    is left out: a record of another family differs in "family"; one written when every
    config held every family's options held the others' defaults."""
    keys = dict.fromkeys([*new, *(k for k in old if k in NAMED)])
    return [
        f"{k}: {_shown(old.get(k))} -> {_shown(new.get(k))}"
        for k in keys
        if k not in NOT_COMPARED and old.get(k) != new.get(k)
    ]


def _shown(value: object) -> str:
    return "off" if value is None else repr(value)


def _holds_other_files(run_dir: Path) -> bool:
    # (predictions.csv is written just before run.json; the lock before either)
    ours = (CHECKPOINTS, PREDICTIONS, RUN_LOCK)
    return run_dir.exists() and any(p.name not in ours for p in run_dir.iterdir())


def kept_predictions(
    run_dir: Path, record: RunRecord
) -> tuple[dict[tuple[int, str], PredictionTable], dict[tuple[int, str], str]]:
    """The rows of predictions.csv (if any) of the (seed, fold)s `record` holds, by key:
    a resumed run keeps them; and the (seed, fold)s whose rows are not one a test
    utterance (`uneven_folds`), whose rows are not kept."""
    path = run_dir / PREDICTIONS
    if not record.folds or not path.exists():
        return {}, {}
    table = read_predictions(path)
    held, uneven = set(table.runs()), uneven_folds(record, table)
    keys = [e.key for e in record.folds if e.key in held and e.key not in uneven]
    return {k: table.take((table.seed == k[0]) & (table.fold == k[1])) for k in keys}, uneven


def member_entries(trained: Sequence[Trained]) -> list[FoldEntry]:
    """Each trained member's record entry (`member_entry`; calibrated: its temperature
    and its test side's JSD to the annotators' votes), its rows of predictions.csv kept
    in its run's `predictions` for `finish`."""
    entries = []
    for member in trained:
        job = member.job
        entry, table = member_entry(
            job,
            member.chosen,
            member.tested,
            member.chosen.stages,
            member.members,
            member.layer_weights,
            member.weights,
        )
        if member.temperature is not None:
            run = job.run
            targets = run_targets(run.config)
            votes = votes_jsd(member.tested, targets, run.data, job.fold.test, run.votes)
            entry = replace(entry, temperature=member.temperature, votes=votes)
        job.run.predictions[(job.seed, job.fold.name)] = table
        entries.append(entry)
    return entries


def member_entry(
    job: Job,
    best: Selection,
    test: Evaluation,
    stages: dict[str, Selection],
    stacked: int,
    layer_weights: dict[str, list[float]],
    class_weights: np.ndarray | None,
) -> tuple[FoldEntry, PredictionTable]:
    """A trained member's record entry (`fold_entry`; `class_weights` [C], its loss's)
    and its rows of predictions.csv (`fold_predictions`): what the record keeps of it."""
    run, fold = job.run, job.fold
    targets = run_targets(run.config)
    table = fold_predictions(job.seed, fold.name, test, run.data, fold.test, targets)
    weights = None
    if class_weights is not None:
        weights = dict(zip(run.data.classes, class_weights.tolist(), strict=True))
    entry = fold_entry(job.seed, fold, best, test, stages, stacked, layer_weights, weights)
    return entry, table


def fold_entry(
    seed: int,
    fold: Fold,
    best: Selection,
    test: Evaluation,
    stages: dict[str, Selection],
    stacked: int,
    layer_weights: dict[str, list[float]] | None = None,
    class_weights: dict[str, float] | None = None,
) -> FoldEntry:
    """What training one (seed, fold) produced: `best`, the whole model's selection, after
    its earlier `stages` (if any: Zhou et al.'s branches), tested; `stacked` members
    trained together (1: alone); `layer_weights`: the selected model's softmax weights of
    each layered input; `class_weights`: its loss's, by class."""
    return FoldEntry(
        seed=seed,
        fold=fold.name,
        metrics=test.metrics,
        attributes=test.attribute_metrics,
        heads={name: scores for name, scores in test.scores.items() if name in HEADS},
        best_epoch=best.best_epoch,
        seconds=best.seconds + sum(s.seconds for s in stages.values()),
        stacked=stacked,
        curves=curves_record(best),
        stages={n: Stage(s.best_epoch, s.seconds, curves_record(s)) for n, s in stages.items()},
        layer_weights={name: tuple(w) for name, w in (layer_weights or {}).items()},
        sizes=Sizes(train=len(fold.train), val=len(fold.val), test=len(fold.test)),
        # what each side holds of the protocol's group (sessions, speakers, values)
        test_groups=tuple(fold.test_groups),
        val_groups=tuple(fold.val_groups),
        group=fold.unit or None,
        left_out=tuple(fold.left_out),
        shared_speakers=tuple(fold.shared_speakers),
        class_weights=class_weights or {},
    )


def curves_record(selected: Selection) -> RecordedCurves:
    """A member's curves as a fold entry holds them: `val_ccc` only where attributes were
    trained, `val_heads` only where other heads were, so every other record stays as it
    was (its best epoch and time are the entry's own keys)."""
    kept = asdict(selected)
    for own in ("lead", "best_epoch", "seconds", "stages"):
        del kept[own]
    kept = {k: v for k, v in kept.items() if k not in ("val_ccc", "val_heads") or v}
    return RecordedCurves.from_json(kept)


def fold_predictions(
    seed: int,
    fold: str,
    test: Evaluation,
    data: TrainData,
    positions: np.ndarray,
    targets: Targets | None = None,
) -> PredictionTable:
    """A (seed, fold)'s test predictions, in manifest order, for predictions.csv: each
    head of `targets` gives its part (`Head.table_part`); `positions`: the fold's test
    side (a cross-corpus run's data holds two stores' rows)."""
    order = np.argsort(test.index, kind="stable")
    rows = test.index[order]
    # manifest rows ascend over a side's sorted positions (one store's, in manifest order)
    at = positions[np.searchsorted(data.manifest_rows[positions], rows)]
    decided = (test.y_true[order], test.y_pred[order])
    parts = [
        head.table_part(Side(pred[order], gold[order], head.names(data.classes), decided))
        for head, pred, gold in zip(
            (targets or Targets()).heads, test.outputs, test.golds, strict=True
        )
    ]
    return PredictionTable.of(
        data.classes,
        seed,
        fold,
        data.utt_ids[at],
        data.speakers[at],
        rows,
        **TablePart.joined(parts, len(order)),
    )


def record_group(
    group: Sequence[Job], entries: Sequence[FoldEntry], progress: Progress, steps: Steps
) -> None:
    """The group's finished `entries` in their runs' records, run by run: each said
    (`progress.fold_end`), then the run's record written."""
    done = list(zip(group, entries, strict=True))
    for run in {id(job.run): job.run for job in group}.values():
        _record_entries(run, [(job, e) for job, e in done if job.run is run], progress, steps)


def _record_entries(
    run: Prepared, done: list[tuple[Job, FoldEntry]], progress: Progress, steps: Steps
) -> None:
    """`run`'s record with its jobs' `done` entries (and the shapes its compiled steps
    met), written."""
    for job, entry in done:
        run.record = replace(run.record, folds=(*run.record.folds, entry))
        progress.fold_end(job.seed, job.fold.name, entry)
    if steps.static and (ran := run.record.execution) is not None:
        run.record = replace(run.record, execution=replace(ran, **steps.record()))
    finish(run, complete=False, progress=progress)


def finish(run: Prepared, complete: bool, progress: Progress | None = None) -> RunRecord:
    """The run's record made whole (scores from its folds, timings) and written with its
    predictions.csv, written first (`complete`: every planned (seed, fold) done); what
    tracking finds and does is said through `progress` (standard error without one)."""
    _write_predictions(run)  # of the folds the record holds: so each entry has its rows
    record = run.record
    if record.folds:
        summary, pooled = run_scores(record)
        record = replace(record, summary=summary, pooled=pooled)
    fold_seconds = sum(e.seconds for e in record.folds)
    wall = time.perf_counter() - run.started
    timings = replace(record.timings, folds=fold_seconds, wall=wall)
    seconds = fold_seconds + (timings.load or 0.0)
    record = replace(record, complete=complete, timings=timings, seconds=seconds)
    run.record = record
    folder = run_dir(run.config)
    write(folder / RECORD, record)
    say = progress.message if progress is not None else None  # not across a live bar
    log(tracking_of(run.config), folder, record, complete, say)  # --track: what is new
    return record


def _write_predictions(run: Prepared) -> None:
    """predictions.csv: the rows of every (seed, fold) the record holds, in its order (an
    entry resumed from a run trained before predictions were kept has none)."""
    keys = [e.key for e in run.record.folds]
    if not keys:
        return
    tables = [run.predictions[k] for k in keys if k in run.predictions]
    text = predictions_csv(concat(tables, run.data.classes))
    path = run_dir(run.config) / PREDICTIONS
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), "the run's predictions")
