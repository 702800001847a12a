"""A sweep's parameters, memory and time: `--dry-run`'s figures and the estimate
`ser sweep` prints before it trains.

Work: about 6 FLOPs per parameter per input row (forward and backward; every frame /
token row of a sequence model, once per utterance of a vector model), and the input
values each row brings (every stored set's width: a layered input's all), both twice for
a staged model. Memory: weights, gradients and Adam's two moments per member, plus the
features as the cell's memory budget places them (`ser.train.placement`: the rows held,
each streamed input's chunk cache, its views' and test store's sets with it, as `ser train`
places them; a cell that cannot fit even streamed is refused).
Time: the FLOPs over `EFFECTIVE_FLOPS` plus the input read at `EFFECTIVE_READ`,
rough alone, so cells that have trained in the sweep's folder calibrate it (measured over
estimated seconds, per device and family). Under the `ser.runtime.execution.Execution`
`ser sweep` trains with, a cell takes `thread_factor` of that at its threads
(calibration compares a measured time with the estimate at the threads the cell trained
with), and the total is the cells' sum over the processes that train side by side.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ser.cache import FeatureStore
from ser.finetune.top_layers import top_parameters
from ser.finetune.tuning import check_source, parse_all
from ser.models import build_model, family_of
from ser.runs.record import RunRecord
from ser.runtime.execution import Execution
from ser.sweep.cells import ResolvedCell, record_of, unique
from ser.sweep.timing import time_cell
from ser.train.features import resolve_features
from ser.train.plan import device_of, seeds_of
from ser.train.prepare import open_inputs

# A cell's time with one thread against `ser train`'s default on the 2-core CPU the
# estimate's rates come from (2 threads): a fusion-study run, 90 s against 63 s. Two
# such processes side by side each kept their alone pace (91 s).
ONE_THREAD = 1.43
# Effective training throughput, FLOP/s of the count above. CPU (2 threads of a Xeon,
# benchmarks/README.md): the demo's MSMSER, 15 members, 18-22 s an epoch
# (1.5e11 of this count a second); the fusion study with 100-d audio, 20 members, 1.5-2.0
# s an epoch (1.0e11); a fusion-study cell with the 6373-d IS13 functionals, 2 seeds,
# 184-237 s (3.4-4.4e10). 7e10 is their middle: each within 2.3x. GPU: paper-size
# MSMSER on an H100.
EFFECTIVE_FLOPS = {"cpu": 7e10, "cuda": 2e13}
# Input values a second (float32, each member's epoch over its rows). A small model on wide
# inputs spends as long gathering them as in its FLOPs: the probe (a 64-wide MLP on 768-d
# vectors, benchmarks/README.md "How long does a layer probe sweep take?"), ~6 s a layer of 15
# members estimated with this rate against 4-6 s measured on the 2-core CPU, its weighted sum of 13
# layers 37 s against ~46 s. GPU: unmeasured (100x the CPU's, a guess).
EFFECTIVE_READ = {"cpu": 2.5e8, "cuda": 2.5e10}
UNCALIBRATED = (
    "uncalibrated: MSMSER, fusion-study and probe cells took 0.45-2.3x of such estimates "
    "on a 2-core CPU, other models are unmeasured; cells trained in this folder calibrate it"
)


@dataclass(frozen=True)
class Estimate:
    parameters: int  # per member
    memory: int  # bytes
    seconds: float  # the whole cell, uncalibrated
    device: str  # where it would train
    family: str  # model family (`ser.models.family_of`)


def estimate(
    cell: ResolvedCell,
    store: FeatureStore,
    cache: dict[Any, Any],
    test: FeatureStore | None = None,
) -> Estimate:
    """The estimate of a `ResolvedCell` on the opened `store` (and, cross-corpus, its
    opened `test` store, each member's one forward pass over it); `cache` keeps the
    models built for cells of one task and inputs (they have the same parameters)."""
    settings = cell.settings
    key = (cell.task_key, cell.inputs)  # the task key names the store
    if key not in cache:
        n_classes = len(store.corpus.label_set(settings.classes).classes)
        model = build_model(cell.config.model, list(cell.inputs), n_classes=n_classes, seed=0)
        passes = 2 if model.stages() else 1  # branches alone first, then the whole model
        tuned = _tuned_parameters(cell.config.finetune, store)
        cache[key] = (sum(p.numel() for p in model.parameters()) + tuned, passes)
    params, passes = cache[key]
    sequence = any(s.view == "sequence" for s in cell.inputs)
    rows, values = _size(store, cell.features, sequence)
    epochs = settings.epochs
    flops = 6.0 * params * rows * epochs * cell.members * passes
    read = float(values) * epochs * cell.members * passes
    if test is not None:  # a forward pass (a third of a step's FLOPs) over the test store
        tested, seen = _size(test, cell.test_features, sequence)
        flops += 2.0 * params * tested * cell.members
        read += float(seen) * cell.members
    memory = 16 * params * cell.members + _rows_bytes(cell, store, test)
    device = device_of(settings).type
    seconds = flops / EFFECTIVE_FLOPS[device] + read / EFFECTIVE_READ[device]
    return Estimate(params, memory, seconds, device, family_of(settings.model).name)


def _rows_bytes(cell: ResolvedCell, store: FeatureStore, test: FeatureStore | None) -> int:
    """The bytes the cell's inputs take where its run places them (`open_inputs`, as
    `ser train` does: with their views or test store's sets, and the members it stacks):
    rows held (on the device or host), or a streamed input's chunk cache, and the means
    held of the inputs a model averages."""
    stores = {cell.settings.store: store}
    if (path := cell.settings.test_store) is not None:
        stores[path] = test or FeatureStore.open(path)
    placed = open_inputs(cell.config, cell.settings, stores).placement
    if placed is None:
        return 0
    held = sum(placed.needs[name] for name in placed.places if name not in placed.streamed)
    return held + sum(placed.cache.values()) + sum(placed.means.values())


def _tuned_parameters(finetune: Sequence[str], store: FeatureStore) -> int:
    """The encoder parameters a cell's fine-tuned inputs train (0: none), as their
    models' configs give them."""
    total = 0
    for tune in parse_all(finetune):
        (found,) = resolve_features(store, (tune.feature,))
        attrs = store.info(found.name).attrs
        check_source(tune, found.name, attrs)  # its config is read from there
        total += top_parameters(str(attrs["model"]), tune.top)
    return total


def _size(store: FeatureStore, names: Sequence[str], sequence: bool) -> tuple[int, int]:
    """(rows a member's epoch reads, input values they bring) of sets `names`."""
    infos = [store.info(name) for name in names]
    rows = sum(i.rows for i in infos) if sequence else len(store.manifest)
    return rows, sum((i.rows if sequence else len(store.manifest)) * i.dim for i in infos)


@dataclass(frozen=True)
class CellPlan:
    """One distinct cell of a sweep: its estimate, what its record holds, time left."""

    cell: ResolvedCell
    estimate: Estimate
    trained: int  # (seed, fold)s in its record
    finished: bool
    seconds: float  # left to train: calibrated where cells have trained, 0 when finished
    shared: bool = False  # tested from the training of a cell before it: no time of its own


@dataclass(frozen=True)
class SweepEstimate:
    cells: list[CellPlan]  # one per distinct cell, in order
    calibrated_on: int  # cells whose measured times scaled the estimates (0: none)
    processes: int = 1  # cells training side by side (the execution's)
    # Each family a probe timed (or could not): a line saying what it measured.
    probed: dict[str, str] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """Wall time left: the cells' times over the processes sharing them (never less
        than the longest cell: a cell trains in one process)."""
        left = [c.seconds for c in self.cells]
        return max(sum(left) / max(self.processes, 1), max(left, default=0.0))

    @property
    def to_train(self) -> list[CellPlan]:
        return [c for c in self.cells if not c.finished]

    def device(self) -> str:
        return self.cells[0].estimate.device if self.cells else "cpu"

    def note(self) -> str:
        """How rough the total is."""
        timed = [line for line in self.probed.values() if ": timed on " in line]
        if self.calibrated_on:
            said = f"calibrated on the measured times of {self.calibrated_on} trained cell(s)"
            return said + (f" and {len(timed)} probe(s)" if timed else "")
        if timed and len(timed) == len(self.probed):
            return f"from {len(timed)} timed probe(s) on this machine"
        return UNCALIBRATED


def estimate_sweep(
    cells: Sequence[ResolvedCell],
    out: Path,
    execution: Execution | None = None,
    probe: bool = False,
) -> SweepEstimate:
    """Every distinct cell's estimate on its own store, with what `out` already holds of
    it, trained as `execution` says (None: one process, `ser train`'s threads). `probe`:
    a family no trained cell calibrates is timed by a short probe of its first cell
    (`ser.sweep.timing`), which scales its cells' estimates as a trained one would."""
    handles: dict[str, FeatureStore] = {}
    cache: dict[Any, Any] = {}
    factor = thread_factor(execution.threads) if execution else 1.0

    def opened(path: str) -> FeatureStore:
        if path not in handles:
            handles[path] = FeatureStore.open(path)
        return handles[path]

    def of(c: ResolvedCell) -> Estimate:
        test = opened(c.config.test_store) if c.config.test_store else None
        return estimate(c, opened(c.store.path), cache, test)

    rows = [(c, of(c), record_of(out, c.key)) for c in unique(cells)]
    ratios, calibrated_on = _calibration([(c, e, r) for c, e, r in rows if r is not None])
    probed = _probes(rows, ratios, cache) if probe else {}
    ratios |= {key: ratio for key, (ratio, _) in probed.items() if ratio is not None}

    def scale(e: Estimate) -> float:
        return ratios.get((e.device, e.family), ratios.get((e.device, None), 1.0))

    rows = [(c, _scaled(e, factor), r) for c, e, r in rows]
    plans = []
    training: set[tuple[Hashable, ...]] = set()  # what the cells left to train train
    for cell, e, record in rows:
        trained = len(record.folds) if record else 0
        done = bool(record and record.complete)
        left = 0.0 if done else e.seconds * max(1 - trained / cell.members, 0.0) * scale(e)
        shared = not done and (twin := _trains(cell)) in training  # (ser.train.group)
        if not done:
            training.add(twin)
        plans.append(CellPlan(cell, e, trained, done, 0.0 if shared else left, shared))
    said = {family: line for (_, family), (_, line) in probed.items() if family}
    return SweepEstimate(plans, calibrated_on, execution.processes if execution else 1, said)


def _probes(
    rows: Sequence[tuple[ResolvedCell, Estimate, RunRecord | None]],
    ratios: dict[tuple[str, str | None], float],
    cache: dict[Any, Any],
) -> dict[tuple[str, str | None], tuple[float | None, str]]:
    """Each (device, family) of cells left to train that no trained cell calibrates: its
    first such cell timed by a short probe (`ser.sweep.timing`), its measured seconds over
    its estimate, and a line saying what was timed (None and why, where it cannot be)."""
    found: dict[tuple[str, str | None], tuple[float | None, str]] = {}
    for cell, e, record in rows:
        key = (e.device, e.family)
        if key in ratios or key in found or (record is not None and record.complete):
            continue
        passes = cache[(cell.task_key, cell.inputs)][1]
        timed = time_cell(cell, passes)
        if isinstance(timed, str):
            found[key] = (None, f"{e.family}: cannot time a probe of {cell.cell.label} ({timed})")
            continue
        seconds = timed.seconds(cell.members)
        found[key] = (
            seconds / e.seconds if e.seconds > 0 else None,
            f"{e.family}: timed on {cell.cell.label}: {timed.load:.1f} s of data read, "
            f"{timed.setup:.1f} s of set-up and {timed.epoch:.2f} s an epoch a member",
        )
    return found


def _trains(cell: ResolvedCell) -> tuple[Hashable, ...]:
    """What a cell's members train: cells alike in it, as cells of one Table 3 row that
    differ only in their test mask, train once (`ser.train.group.shared_trainings`)."""
    config = cell.config
    seeds = seeds_of(cell.settings)
    return (cell.task_key, config.patience, seeds, config.protocol, config.val, config.test_store)


def thread_factor(threads: int | None) -> float:
    """A cell's time with `threads` torch threads over the estimate's (None or 0: `ser
    train`'s default)."""
    return ONE_THREAD if threads == 1 else 1.0


def _scaled(e: Estimate, factor: float) -> Estimate:
    return Estimate(e.parameters, e.memory, e.seconds * factor, e.device, e.family)


def _calibration(
    trained: Sequence[tuple[ResolvedCell, Estimate, RunRecord]],
) -> tuple[dict[tuple[str, str | None], float], int]:
    """Measured seconds over estimated ones by (device, family) and by (device, None);
    an estimate takes its (device, family)'s, else its device's, else 1; and how many
    cells were measured."""
    sums: dict[tuple[str, str | None], list[float]] = {}
    cells = 0
    for cell, e, record in trained:
        device = (record.timings.device or "").split(":")[0]
        if device != e.device or not record.folds:
            continue  # trained elsewhere (another device), or nothing yet
        measured = sum(entry.seconds for entry in record.folds)
        # At the threads it trained with: one thread's pace is the execution's to add.
        at = thread_factor(record.timings.threads)
        expected = e.seconds * at * len(record.folds) / cell.members
        cells += 1
        for key in ((e.device, e.family), (e.device, None)):
            total = sums.setdefault(key, [0.0, 0.0])
            total[0], total[1] = total[0] + measured, total[1] + expected
    ratios = {k: m / x for k, (m, x) in sums.items() if m > 0 and x > 0}
    return ratios, cells
