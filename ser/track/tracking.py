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

A member is logged once: one the tracker holds (its folder's event files whole, its keys)
is skipped, so a resumed run, or a finished one run again with --track, logs only what is
missing. Reaching MLflow, and its faults: `ser.track.mlflow_store`; TensorBoard's files:
`ser.track.tfevents`. An
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
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard

from ser.errors import ConfigError
from ser.track.mlflow_store import check_folder, client
from ser.track.tfevents import anonymous, problem

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
        check_folder(tracking.uri or "")
        with client(tracking.uri or "", checking=True) as mlflow:
            _experiment(mlflow)


def log(
    tracking: Tracking | None,
    run_dir: Path,
    record: RunRecord,
    complete: bool,
    say: Callable[[str], None] | None = None,
) -> None:
    """Log what `record` (the run in `run_dir`) holds that the tracker does not: its new
    members and, once `complete`, its scores; `say`: a line of what was found and done
    (standard error's, by default)."""
    if tracking is None or not record.folds:
        return
    say = say or _stderr
    if tracking.kind == "tensorboard":
        _tensorboard(run_dir, record, complete, say)
    else:
        with client(tracking.uri or "") as mlflow:
            _mlflow(mlflow, tracking, run_dir, record, complete, say)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


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
    anything else (a list, none) as its JSON; a path of this machine (the store, the
    output folder) by its last name alone, as a tracker may be another machine's."""
    return {k: _option(_local(v)) for k, v in record.config.items()}


def _option(value: Json) -> str | int | float | bool:
    return value if isinstance(value, str | int | float | bool) else json.dumps(value)


def _local(value: Json) -> Json:
    """`value` with each absolute path in it as its last name (``features.zarr``)."""
    if isinstance(value, str) and os.path.isabs(value):
        return Path(value).name or value
    if isinstance(value, list):
        return [_local(v) for v in value]
    if isinstance(value, dict):
        return {k: _local(v) for k, v in value.items()}
    return value


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- TensorBoard ----------------------------------------------------------------------


def _tensorboard(
    run_dir: Path, record: RunRecord, complete: bool, say: Callable[[str], None]
) -> None:
    from ser.heads.recorded import run_heads

    root, heads = run_dir / TENSORBOARD, run_heads(record)
    for entry in record.folds:
        _scalars(root / member(entry), points(entry, heads), say)
    if complete and (final := final_points(record)):
        _scalars(root / FINAL, final, say)
    if complete:  # the run's options beside its scores: TensorBoard's HPARAMS tab
        from torch.utils.tensorboard import SummaryWriter

        with _staged(root / SCORES) as folder, SummaryWriter(str(folder)) as writer:
            writer.add_hparams(options(record), means(record), run_name=".")


def _scalars(folder: Path, found: list[Point], say: Callable[[str], None]) -> None:
    """`found` written to `folder`, unless its event files hold them all already (one cut
    short, or holding fewer, is written again, and said)."""
    from torch.utils.tensorboard import SummaryWriter

    if folder.exists():
        if (wrong := problem(folder, len(found))) is None:
            return
        say(f"TensorBoard's {folder} {wrong}: logging it again")
    with _staged(folder) as staging, SummaryWriter(str(staging)) as writer:
        for tag, step, value in found:
            writer.add_scalar(tag, value, step)


@contextlib.contextmanager
def _staged(folder: Path) -> Iterator[Path]:
    """A folder written beside `folder`, its event files named without the host's name,
    then put in its place (an earlier one replaced): a folder there was logged whole."""
    staging = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)  # an interrupted one's
    staging.mkdir(parents=True)
    yield staging
    anonymous(staging)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


# --- MLflow ---------------------------------------------------------------------------


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
    if found.lifecycle_stage == "deleted":
        raise ConfigError(
            f"MLflow's experiment '{EXPERIMENT}' was deleted: restore it (mlflow "
            f"experiments restore --experiment-id {found.experiment_id}) or remove it for "
            "good (mlflow gc), and run the same command again"
        )
    return str(found.experiment_id)


def _mlflow(
    client: MlflowClient,
    tracking: Tracking,
    run_dir: Path,
    record: RunRecord,
    complete: bool,
    say: Callable[[str], None],
) -> None:
    from mlflow.entities import Metric

    from ser.heads.recorded import run_heads

    run_id, logged = _mlflow_run(client, tracking, run_dir, record, say)
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


def _mlflow_run(
    client: MlflowClient,
    tracking: Tracking,
    run_dir: Path,
    record: RunRecord,
    say: Callable[[str], None],
) -> tuple[str, set[str]]:
    """The MLflow run of the ser run in `run_dir` at `tracking`'s URI (``mlflow.json``)
    and the member prefixes and scores it holds; made with the run's options as params
    where there is none, or the one there was is deleted."""
    from mlflow.entities import Param

    from ser.cache.atomic import write_json

    path, uri = run_dir / MLFLOW_RUN, tracking.uri or ""
    known = _known_runs(path)
    if uri in known:
        if (held := _held(client, known[uri])) is not None:
            return known[uri], held
        say(
            f"MLflow run {known[uri]} at {uri}, which {path} names, was deleted: logging "
            f"{record.name} whole to a new MLflow run"
        )
    tags = {"ser.run_dir": run_dir.name, "ser.version": str(record.version)}
    run = client.create_run(_experiment(client), run_name=record.name, tags=tags)
    run_id = str(run.info.run_id)
    params = [Param(k, str(v)) for k, v in options(record).items()]
    for start in range(0, len(params), 100):  # MLflow's most params in one log_batch
        client.log_batch(run_id, params=params[start : start + 100])
    write_json(path, {**known, uri: run_id}, "the MLflow run the run is logged to")
    return run_id, set()


def _held(client: MlflowClient, run_id: str) -> set[str] | None:
    """The member prefixes and scores MLflow run `run_id` holds; None: it was deleted."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException as e:
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    if run.info.lifecycle_stage == "deleted":
        return None
    return {key.split("/")[0] for key in run.data.metrics}


def _known_runs(path: Path) -> dict[str, str]:
    """``mlflow.json``: the MLflow run of each tracking URI the run went to (none: a
    `ConfigError` naming a file that is not such JSON)."""
    if not path.exists():
        return {}
    try:
        known = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        known, why = None, f"is not JSON ({e})"
    else:
        why = "is not the object ser writes ({tracking URI: MLflow run id})"
    if not isinstance(known, dict) or not all(isinstance(v, str) for v in known.values()):
        raise ConfigError(
            f"{path} {why}: delete it, and the same command logs the run whole to a new MLflow run"
        )
    return known
