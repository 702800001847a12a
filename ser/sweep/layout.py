"""How `ser sweep` shares the CPU: worker processes x torch threads, chosen from stable
facts only (the CPU budget, the sweep's model families and distinct cells, whether
CUDA is there), so the same command on the same machine makes the same choice whatever
else runs: results depend on the thread count (`ser.runtime.threads`).

The rule (benchmarks/README.md "How should a sweep share the CPU?"): on the CPU, a sweep whose cells
are all of `PROCESS_FAMILIES` (the fusion study's dialog model: a Python-heavy loop of
small operators, where a second thread gains ~1.4x and a second process ~2x) trains
one cell per process with one thread each, as many processes as the budget has cores
(above 2 cores one left free, as `default_threads` leaves one), never more than the
distinct cells (a task is never split inside a cell). Otherwise (MSMSER, the unimodal
MLP and late_prob, unmeasured as a cell per process; a single cell; one core; CUDA):
one process, each task as `ser train` chooses (`ser.train.pool` may train a big task's
seeds and folds on processes side by side). `--workers` and `--threads` override.

>>> from ser.runtime.threads import CpuBudget
>>> two = CpuBudget(cores=2, affinity=2, quota=None, workers=1)
>>> choose_layout(two, families={"dialog"}, cells=26, cuda=False).label()
'2 processes x 1 thread'
>>> choose_layout(two, families={"dialog", "msmser"}, cells=26, cuda=False).workers is None
True
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ser.errors import ConfigError
from ser.runtime.threads import CpuBudget
from ser.train.pool import side_by_side

# Families whose cells train the most runs per hour as one-thread processes side by side
# on the CPU: dialog measured as a sweep (79 runs/h as two processes against 57
# as one 2-thread process on 2 cores; benchmarks/README.md, "How should a sweep share the
# CPU?"). The others' cells train in this process, where `ser train`'s own rule
# (`ser.train.pool`) may put a
# big cell's seeds and folds on processes; as a cell per process they are unmeasured.
PROCESS_FAMILIES = frozenset({"dialog"})
# A cell's time with one thread against `ser train`'s default on the 2-core CPU the
# estimate's rates come from (2 threads): a fusion-study run, 90 s against 63 s. Two
# such processes side by side each kept their alone pace (91 s).
ONE_THREAD = 1.43


@dataclass(frozen=True)
class Layout:
    """Worker processes x threads per task, and why."""

    workers: int | None  # local dask workers; None: tasks in this process (or --scheduler)
    threads: int | None  # torch threads per task; None: each cell's own (`ser train`'s rule)
    source: str  # why, e.g. "default: dialog cells on 2 cores (affinity 2 cores, ...)"
    processes: int = 1  # tasks training at once (for the estimate)

    def label(self) -> str:
        """e.g. "2 processes x 1 thread", "1 process x its default threads"."""
        n = self.processes
        threads = "its default threads" if self.threads is None else _plural(self.threads, "thread")
        if self.threads == 0:
            threads = "the workers' own threads"
        return f"{_plural(n, 'process', 'processes')} x {threads}"

    def describe(self) -> str:
        """The line `ser sweep` prints before training."""
        return f"{self.label()} ({self.source})"

    def cell_factor(self) -> float:
        """A cell's time under this layout over its estimate at `ser train`'s default."""
        return thread_factor(self.threads)


def thread_factor(threads: int | None) -> float:
    """A cell's time with `threads` torch threads over the estimate's (None: the default)."""
    return ONE_THREAD if threads == 1 else 1.0


def choose_layout(
    budget: CpuBudget,
    *,
    families: Collection[str],
    cells: int,
    cuda: bool,
    workers: int | None = None,
    threads: int | None = None,
    scheduler: str | None = None,
) -> Layout:
    """The module doc's rule: a pure function of its arguments."""
    if workers is not None and scheduler is not None:
        raise ConfigError("give --workers N (a local cluster) or --scheduler ADDRESS, not both")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    if cells < 0:
        raise ValueError(f"cells must be at least 0, got {cells}")
    quota = "none" if budget.quota is None else f"{budget.quota:g} CPUs"
    where = f"{_plural(budget.cores, 'core')} (affinity {budget.affinity}, cgroup {quota})"
    if scheduler is not None:
        return Layout(None, threads or 0, f"--scheduler {scheduler}", processes=1)
    if workers is not None:  # --workers N: cores // N threads each unless --threads
        count = threads or max(1, budget.cores // workers)
        why = f"--workers {workers}" + (f" --threads {threads}" if threads else f": {where}")
        return Layout(workers, count, why, processes=workers)
    names = ", ".join(sorted(families)) or "no"
    if cuda:
        return Layout(None, threads, "CUDA: one process, members stacked on the GPU")
    per = threads or 1
    processes = side_by_side(budget, per, cells)
    rule = f"--threads {threads}" if threads else "default"
    # In this process each task trains as `ser train` chooses: a big one's runs may still
    # go to processes side by side (`ser.train.pool`), and the line says so.
    runs = "each cell's runs as ser train shares them"
    if not set(families) <= PROCESS_FAMILIES:
        why = f"{rule} for {names} cells on {where}: a cell per process unmeasured for them; {runs}"
        return Layout(None, threads, why)
    if processes < 2:
        why = f"{rule} for {_plural(cells, 'cell')} on {where}; {runs}"
        return Layout(None, threads, why)
    why = f"{rule} for {names} cells on {where}: a cell per process, side by side"
    return Layout(processes, per, why, processes=processes)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"
