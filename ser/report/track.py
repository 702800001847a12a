"""A run as the field watches runs: its members' curves, its options and its scores
logged to TensorBoard or MLflow (`ser train --track`), read from the run record after
each group is recorded, so a tracker shows what run.json holds.

TensorBoard, ``<run>/tensorboard/``: a folder per member (``seed0-session1``) with each
series its curves hold (``train_loss``, ``val_loss``, ``val_ua``, ... at each epoch; an
earlier stage's as ``<stage>/train_loss``) and its test scores (``test_ua``, ... at its
selected epoch); once the run is complete, ``scores``: its options as hparams with its
mean scores (``ua``, ``wa``, ``f1``, ...), and ``final``: the `--final` model's
``train_loss`` at each epoch.

MLflow: one MLflow run per ser run (experiment ``ser``, named as the run), its options as
params, each member's series as metric keys ``seed0-session1/train_loss`` (step: the
epoch) and its test scores as ``seed0-session1/test_ua``; once complete, the mean
scores (``ua``, ...), the `--final` model's ``final/train_loss``, and the run marked
finished. ``<run>/mlflow.json`` says which
MLflow run, by tracking URI.

A member is logged once: one the tracker holds (its folder, its keys) is skipped, so a
resumed run, or a finished one run again with --track, logs only what is missing. An
epoch without a value (NaN: no validation side) is no point. Neither package is imported
until a run tracks: they are the optional extra ``ser[track]``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard

from ser.errors import ConfigError

if TYPE_CHECKING:  # imported where a run is logged: `ser sweep --help` stays quick
    from mlflow.tracking import MlflowClient

    from ser.heads.reported import Reported
    from ser.runs.codec import Json
    from ser.runs.curves import Curves
    from ser.runs.fold_entry import FoldEntry
    from ser.runs.record import RunRecord

TRACKERS = ("tensorboard", "mlflow")
INSTALL = "pip install 'ser[track]'"
TENSORBOARD = "tensorboard"  # in the run's folder
SCORES = "scores"  # TensorBoard's folder of the run's hparams and mean scores
FINAL = "final"  # the --final model's folder or key prefix (no member's: theirs start "seed")
MLFLOW_RUN = "mlflow.json"  # in the run's folder: {tracking URI: MLflow run id}
MLRUNS = "mlruns"  # under --out: MLflow's default store
EXPERIMENT = "ser"
BATCH = 1000  # MLflow's most metrics in one log_batch

Point = tuple[str, int, float]  # (tag or key, step, value)


@dataclass(frozen=True)
class Tracking:
    """Where a run is logged: `kind`, one of `TRACKERS`; `uri`, MLflow's tracking URI."""

    kind: str
    uri: str | None = None

    @classmethod
    def of(cls, kind: str | None, uri: str | None, out: str | Path) -> Tracking | None:
        """The `--track`, `--track-uri` of a run under `out` (MLflow's default store:
        ``<out>/mlruns``); None: not tracked."""
        if uri is not None and kind != "mlflow":
            raise ConfigError(f"--track-uri {uri} is MLflow's: give --track mlflow with it")
        if kind is None:
            return None
        if kind == "mlflow" and uri is None:
            uri = (Path(out).resolve() / MLRUNS).as_uri()
        return cls(kind, uri)


def check(tracking: Tracking | None) -> None:
    """Refuse, before anything trains, a tracker whose package is not installed or an
    MLflow server that does not answer (`ConfigError`)."""
    if tracking is None:
        return
    try:
        importlib.import_module(tracking.kind)  # each tracker is the package of its name
    except ImportError:
        raise ConfigError(
            f"--track {tracking.kind} needs the {tracking.kind} package, not installed "
            f"here: {INSTALL}"
        ) from None
    if tracking.kind == "mlflow":
        with _mlflow_client(tracking) as client:
            _experiment(client)


def log(tracking: Tracking | None, run_dir: Path, record: RunRecord, complete: bool) -> None:
    """Log what `record` (the run in `run_dir`) holds that the tracker does not: its new
    members and, once `complete`, its scores."""
    if tracking is None or not record.folds:
        return
    if tracking.kind == "tensorboard":
        _tensorboard(run_dir, record, complete)
    else:
        with _mlflow_client(tracking) as client:
            _mlflow(client, tracking, run_dir, record, complete)


def forget(run_dir: Path) -> list[str]:
    """Remove what an earlier run in `run_dir` logged there (--overwrite discards it: its
    members would otherwise stand for the new run's); the names removed."""
    removed = []
    for name in (TENSORBOARD, MLFLOW_RUN):
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(name)
    return removed


# --- what is logged -------------------------------------------------------------------


def member(entry: FoldEntry) -> str:
    """A member's folder or key prefix: ``seed0-session1`` (a character a path or a
    metric key cannot hold as ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"seed{entry.seed}-{entry.fold}")


def points(entry: FoldEntry, heads: Sequence[Reported]) -> list[Point]:
    """A member's curves (an earlier stage's prefixed by its name), then its test scores
    (those of the run's `heads`) at its selected epoch."""
    staged = [("", entry.curves), *((f"{n}/", s.curves) for n, s in entry.stages.items())]
    found = [point for prefix, curves in staged for point in _curve_points(prefix, curves)]
    step = entry.best_epoch or 0
    scores = {k: v for head in heads for k, v in head.json_fold(entry).items() if _number(v)}
    return found + [(f"test_{k}", step, float(v)) for k, v in scores.items()]


def final_points(record: RunRecord) -> list[Point]:
    """The `--final` model's training loss at each epoch (none: no such model, or one
    recorded before its curves were)."""
    final = record.final
    return [] if final is None or final.curves is None else _curve_points("", final.curves)


def _curve_points(prefix: str, curves: Curves) -> list[Point]:
    return [
        (re.sub(r"[^A-Za-z0-9_./ -]", "_", prefix + name), epoch, float(v))  # MLflow's keys
        for name, values in _series(curves)
        # epochs 1, 2, ... where a record kept none
        for epoch, v in zip(curves.epoch or range(1, len(values) + 1), values, strict=False)
        if _number(v)
    ]


def _series(curves: Curves) -> Iterator[tuple[str, list[object]]]:
    """Each series the curves hold, by name (a further head's, in `val_heads`, by its own)."""
    for key in (k for k in curves if k != "epoch"):
        value = curves[key]
        for name, values in value.items() if isinstance(value, dict) else [(key, value)]:
            if isinstance(values, list):
                yield name, values


def means(record: RunRecord) -> dict[str, float]:
    """The run's numeric scores over seeds (`ser train --json`'s: ua, wa, f1, their stds,
    ...)."""
    from ser.runs.record import head_summary

    return {k: float(v) for k, v in head_summary(record).items() if _number(v)}


def options(record: RunRecord) -> dict[str, str | int | float | bool]:
    """The run's options as its record holds them: a number, a flag or a text as it is,
    anything else (a list, none) as its JSON."""
    return {k: _option(v) for k, v in record.config.items()}


def _option(value: Json) -> str | int | float | bool:
    return value if isinstance(value, str | int | float | bool) else json.dumps(value)


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- TensorBoard ----------------------------------------------------------------------


def _tensorboard(run_dir: Path, record: RunRecord, complete: bool) -> None:
    from torch.utils.tensorboard import SummaryWriter

    from ser.heads.recorded import run_heads

    root, heads = run_dir / TENSORBOARD, run_heads(record)
    for entry in record.folds:
        if (root / member(entry)).exists():
            continue
        with _staged(root / member(entry)) as folder, SummaryWriter(str(folder)) as writer:
            for tag, step, value in points(entry, heads):
                writer.add_scalar(tag, value, step)
    if complete and (final := final_points(record)) and not (root / FINAL).exists():
        with _staged(root / FINAL) as folder, SummaryWriter(str(folder)) as writer:
            for tag, step, value in final:
                writer.add_scalar(tag, value, step)
    if complete:  # the run's options beside its scores: TensorBoard's HPARAMS tab
        with _staged(root / SCORES) as folder, SummaryWriter(str(folder)) as writer:
            writer.add_hparams(options(record), means(record), run_name=".")


@contextlib.contextmanager
def _staged(folder: Path) -> Iterator[Path]:
    """A folder written beside `folder`, then put in its place (an earlier one replaced):
    a member whose folder is there was logged whole."""
    staging = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)  # an interrupted one's
    staging.mkdir(parents=True)
    yield staging
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


# --- MLflow ---------------------------------------------------------------------------


@contextlib.contextmanager
def _mlflow_client(tracking: Tracking) -> Iterator[MlflowClient]:
    """A client of `tracking`'s URI; MLflow's errors (a server that does not answer, a
    URI it cannot use) as `ConfigError`s naming it."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = tracking.uri or ""
    try:
        with _file_store_allowed(uri):
            yield MlflowClient(tracking_uri=uri)
    except (MlflowException, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"MLflow at {uri}: {first}; the run's record is kept: once MLflow answers, "
            "the same command logs what is missing"
        ) from e


@contextlib.contextmanager
def _file_store_allowed(uri: str) -> Iterator[None]:
    """MLflow 3 opens a folder store (the default ``<out>/mlruns``) only when
    MLFLOW_ALLOW_FILE_STORE is set, and mlflow-skinny has no database store: set for the
    block alone, where the user has not said otherwise."""
    name = "MLFLOW_ALLOW_FILE_STORE"
    if ("://" in uri and not uri.startswith("file:")) or name in os.environ:
        yield
        return
    os.environ[name] = "true"
    try:
        yield
    finally:
        os.environ.pop(name, None)


def _experiment(client: MlflowClient) -> str:
    """The id of the experiment ser logs to, made if missing (another process may make it
    at the same time)."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(EXPERIMENT)
    if found is None:
        try:
            return client.create_experiment(EXPERIMENT)
        except MlflowException:
            found = client.get_experiment_by_name(EXPERIMENT)
            if found is None:
                raise
    return str(found.experiment_id)


def _mlflow(
    client: MlflowClient, tracking: Tracking, run_dir: Path, record: RunRecord, complete: bool
) -> None:
    from mlflow.entities import Metric

    from ser.heads.recorded import run_heads

    run_id = _mlflow_run(client, tracking, run_dir, record)
    logged = {key.split("/")[0] for key in client.get_run(run_id).data.metrics}
    now, heads = int(time.time() * 1000), run_heads(record)
    for entry in record.folds:
        if (name := member(entry)) in logged:
            continue
        metrics = [Metric(f"{name}/{k}", v, now, step) for k, step, v in points(entry, heads)]
        for start in range(0, len(metrics), BATCH):
            client.log_batch(run_id, metrics=metrics[start : start + BATCH])
    if complete:
        if FINAL not in logged:
            final = [Metric(f"{FINAL}/{k}", v, now, step) for k, step, v in final_points(record)]
            client.log_batch(run_id, metrics=final)
        scores = [Metric(k, v, now, 0) for k, v in means(record).items() if k not in logged]
        client.log_batch(run_id, metrics=scores)
        client.set_terminated(run_id, "FINISHED")


def _mlflow_run(client: MlflowClient, tracking: Tracking, run_dir: Path, record: RunRecord) -> str:
    """The MLflow run of the ser run in `run_dir` at `tracking`'s URI (``mlflow.json``),
    made with the run's options as params if there is none."""
    from mlflow.entities import Param

    from ser.cache.atomic import write_json

    path = run_dir / MLFLOW_RUN
    known: dict[str, str] = json.loads(path.read_text("utf-8")) if path.exists() else {}
    uri = tracking.uri or ""
    if uri in known:
        return known[uri]
    tags = {"ser.run_dir": str(run_dir.resolve()), "ser.version": str(record.version)}
    run = client.create_run(_experiment(client), run_name=record.name, tags=tags)
    run_id = str(run.info.run_id)
    params = [Param(k, str(v)) for k, v in options(record).items()]
    for start in range(0, len(params), 100):  # MLflow's most params in one log_batch
        client.log_batch(run_id, params=params[start : start + 100])
    write_json(path, {**known, uri: run_id}, "the MLflow run the run is logged to")
    return run_id
