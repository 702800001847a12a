"""How work shares the machine, decided in one place for `ser extract`, `ser train` and
`ser sweep`: processes side by side x torch threads in each, and for training how many
of a run's (seed, fold) members stack into one model (`Execution`).

From stable facts only: the CPU budget (`cpu_budget`: affinity capped by the cgroup
quota), the memory budget, the device, and the work's family, shape and size; never the
machine's load. The same command on the same machine makes the same choice, printed
before the work starts and recorded, since a thread count and which members stack change
the numbers (float rounding; each stack draws its own random numbers). Options override:
`--processes`, `--threads`, `--members-at-once`, `--workers`, `--scheduler`. Figures:
benchmarks/README.md, "How should a run's members share the CPU?".

- Extraction (`for_extraction`): a kind computing off torch's threads (openSMILE's IS13)
  on a spawned process per core of the budget; a torch kind in this process with the
  budget's threads (on a GPU, the GPU works).
- Training (`for_training`): on a GPU one process, every member stacked on the device
  (a family's cost may ask for its members one at a time, eagerly, graphed or
  compiled). On the CPU members stack where a family's step is many small operators
  one call can share: up to its cost's `stack_width` of input dims per member; wider,
  their matrix products dominate and a stack only adds copies, so they train one after
  another. Runs of at
  least the family's `min_seconds` of training (their size at its `rate`: a process's
  start-up, ~4 s, must be paid for) whose data fits in half the memory once per process
  train on one-thread processes side by side, one per core (above 2 cores one left
  free), at most one per member: stacked members in even pieces, one a process; members
  one after another taken by each process as it frees, where that beats one process with
  every thread: ceil(M / P) one-thread members against M members at the family's
  measured `thread_gain`.
- Sweeps (`for_sweep`): cells of families whose cost says `cell_per_process` one per
  process (a dask worker of one thread each, as many as cores, above 2 cores one left
  free, at most one per distinct cell); others in this process, each cell's runs as
  `for_training` shares them.

The policy knows no family by name: each states its cost (`ser.runtime.cost.FamilyCost`,
beside its declaration in `ser.models`) and the caller hands it over with the name.

>>> from ser.runtime.cost import FamilyCost
>>> from ser.runtime.threads import CpuBudget, ThreadChoice
>>> two = CpuBudget(cores=2, affinity=2, quota=None, workers=1)
>>> here = ThreadChoice(2, "all 2")
>>> loop = FamilyCost(stack_width=2048, rate=(2.7e-5, 4.5e-9), min_seconds=46.0,
...                   thread_gain=1.4, cell_per_process=True)
>>> wide = Training({"loop": loop}, members=20, work=10**8, width=7141)
>>> for_training(wide, device="cpu", budget=two, threads=here).describe()[:60]
'2 processes x 1 torch thread, members one after another (def'
>>> narrow = Training({"loop": loop}, members=20, work=10**8, width=868)
>>> for_training(narrow, device="cpu", budget=two, threads=here).stacked is None
True
>>> new = Training({"new": FamilyCost()}, members=20, work=10**8, width=868)
>>> unmeasured = for_training(new, device="cpu", budget=two, threads=here)
>>> unmeasured.processes, unmeasured.stacked, unmeasured.source
(1, 1, 'one process for new: processes unmeasured for it; all 2')
>>> for_sweep(two, families={"loop": loop}, cells=26, cuda=False).processes
2
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from ser.errors import ConfigError
from ser.runtime.cost import FamilyCost
from ser.runtime.threads import SMALL_BUDGET, CpuBudget, ThreadChoice, cpu_budget


@dataclass(frozen=True)
class Execution:
    """How work runs and why: `processes` side by side (spawned processes, or a dask
    cluster's workers when `cluster`) x `threads` torch threads in each (0: the dask
    workers' own, under --scheduler); in `training`, `stacked` members per stacked model
    (None: every member of a group, 1: one after another)."""

    processes: int
    threads: int
    source: str
    stacked: int | None = None
    cluster: bool = False
    training: bool = False
    step: str = "eager"  # training: "eager", "graphed" or "compiled" (`ser.train.engine.steps`)
    # training: where its inputs' rows live under the memory budget, as
    # `ser.train.placement` says it ("": not said)
    memory: str = ""

    def describe(self) -> str:
        """The line every command prints, e.g. "2 processes x 1 torch thread, members one
        after another (default for NAME runs of 7141-d inputs: affinity 2 cores, ...)"."""
        unit = ("dask worker", "dask workers") if self.cluster else ("process", "processes")
        # 0: a cluster's workers keep their own count; in this process each task's is
        # `ser train`'s default
        own = "their own threads" if self.cluster else "its default threads"
        threads = _count(self.threads, "torch thread") if self.threads else own
        said = f"{_count(self.processes, *unit)} x {threads}{self.members()} ({self.source})"
        return f"{said}; {self.memory}" if self.memory else said

    def members(self) -> str:
        """How a training's members run: ", members stacked", ", members one after
        another", ", members stacked 4 at a time"; "" outside training."""
        if not self.training:
            return ""
        compiled = {"compiled": ", steps compiled", "graphed": ", steps graphed"}.get(self.step, "")
        if self.stacked is None:
            return ", members stacked" + compiled
        if self.stacked == 1:
            return ", members one after another" + compiled
        return f", members stacked {self.stacked} at a time" + compiled

    def record(self) -> dict[str, Any]:
        """What run records hold of it (`execution`; `memory` where it was said)."""
        return {k: v for k, v in asdict(self).items() if k != "memory" or v}

    def thread_choice(self) -> ThreadChoice:
        """Each process's threads as the trainer records them."""
        return ThreadChoice(self.threads, f"{self.describe()}")


@dataclass(frozen=True)
class Training:
    """What the policy reads of a training call: its runs' model families (each name with
    the cost it states), their (seed, fold) members (done or not, so that a resumed run
    chooses as its start did), the work (utterances x epochs x members), the widest member
    input (input dims summed), the bytes of data each process holds, and whether it trains
    in fp16."""

    families: Mapping[str, FamilyCost]
    members: int
    work: int
    width: int
    data_bytes: int = 0
    fp16: bool = False  # fp16 autocast, whose loss scaling no CUDA graph holds
    # The encoder parameters a member's fine-tuned top layers hold (0: none), each
    # member's own copy, with their gradients and Adam's moments.
    tuned: int = 0


def for_extraction(
    kind: str,
    *,
    uses_torch: bool,
    batches: int,
    device: str,
    threads: ThreadChoice,
    processes: int | None = None,
    asked_threads: int | None = None,
    budget: CpuBudget | None = None,
) -> Execution:
    """One extraction pass of `kind`: in this process with its `threads`, or on spawned
    processes (the module doc), never more than `batches`; `processes`, `asked_threads`:
    the options."""
    budget = budget or cpu_budget()
    if processes is not None:
        if processes > 1 and uses_torch and device != "cpu":
            raise ConfigError(
                f"--processes {processes} runs {kind} on the CPU; on a GPU give --workers N "
                "(a dask cluster pins each worker to a GPU)"
            )
        count, source = processes, f"--processes {processes}"
    elif uses_torch:
        return Execution(1, threads.count, f"{kind} computes with torch threads: {threads.source}")
    else:
        count, source = budget.cores, f"one per core: {budget.describe()}"
    count = max(1, min(count, batches))
    if count == 1:
        return Execution(1, threads.count, f"{source}; {threads.source}")
    return Execution(count, asked_threads or max(1, budget.cores // count), source)


def decode_threads(device: str, budget: CpuBudget | None = None) -> int:
    """Threads decoding audio ahead of an extraction's compute: on the CPU one (the cores
    compute); ahead of a GPU one per 2 cores of the budget, at most 8. A GPU batch of
    240 s of MELD's AAC clips (15 ms an utterance on a core) takes one thread ~0.7 s, the
    GPU ~0.1 s; half the cores keep ahead of it and leave the rest to writing."""
    if device == "cpu":
        return 1
    budget = budget or cpu_budget()
    return max(1, min(8, budget.cores // 2))


def write_threads(sets: int, budget: CpuBudget | None = None) -> int:
    """Threads writing one shard's feature sets (an encoder's layers), and laying out a
    pass's sets at its end, side by side: one a set, at most the budget's cores and 8.
    Their copies, checksums and file writes release the interpreter's lock; a set is
    its own files, so the bytes are those one thread writes."""
    if sets <= 1:
        return 1
    budget = budget or cpu_budget()
    return max(1, min(8, sets, budget.cores))


def for_training(
    training: Training,
    *,
    device: str,
    budget: CpuBudget,
    threads: ThreadChoice,
    memory: int = 0,
    processes: int | None = None,
    asked_threads: int | None = None,
    at_once: int | None = None,
    step: str | None = None,
) -> Execution:
    """The module doc's rule for a training call (`threads`: this process's, already
    chosen; `processes`, `asked_threads`, `at_once`, `step`: the options; `memory`: the
    memory budget, 0 unknown)."""
    if training.tuned:  # `ser.train.plan` refuses --step and --members-at-once with it
        why = f"{device}: {training.tuned:,} encoder parameters a member, one at a time, eagerly"
        return Execution(1, threads.count, why, 1, training=True)
    if device != "cpu":
        return _on_gpu(training, device, threads, at_once, step)
    if step == "compiled":  # compiled steps train members one at a time, in this process
        return Execution(1, threads.count, "--step compiled", 1, training=True, step="compiled")
    if step == "graphed":  # on the CPU each step runs eagerly on the graphed path's copies
        return Execution(
            1, threads.count, "--step graphed", at_once or 1, training=True, step="graphed"
        )
    costs = training.families.values()
    stacked = at_once or (None if stacks(costs, training.width) else 1)
    here = Execution(1, threads.count, threads.source, stacked, training=True)
    if processes is not None:  # above 1 refused off the CPU by `ser.train.plan.resolve`
        count = max(1, min(processes, training.members))
        per = asked_threads or max(1, budget.cores // processes)
        return _side_by_side(count, per, f"--processes {processes}", stacked, here)
    names = ", ".join(sorted(training.families))
    if not all(c.measured_processes for c in costs):
        return _why(here, f"one process for {names}: processes unmeasured for it")
    seconds = min(training_seconds(training, f) for f in training.families)
    least = max(c.min_seconds or 0.0 for c in costs)
    if seconds < least:
        return _why(here, f"one process: ~{seconds:.0f} s of training, under {least:.0f} s")
    per = asked_threads or 1
    count = side_by_side(budget, per, training.members)
    fits = _fits(count, training.data_bytes, memory)
    if fits < count:
        count = fits
        if count < 2:
            gib = training.data_bytes / 2**30
            return _why(
                here, f"one process: {gib:.1f} GiB of data a process, {memory / 2**30:.0f} GiB"
            )
    if stacked == 1 and not _queue_pays(training, count, budget):
        waits = f"{training.members} members on {count} processes would leave one waiting"
        return _why(here, f"one process: {waits}")
    rule = f"--threads {asked_threads}" if asked_threads else "default"
    source = f"{rule} for {names} runs of {training.width}-d inputs: {budget.describe()}"
    return _side_by_side(count, per, source, stacked, here)


def _on_gpu(
    training: Training, device: str, threads: ThreadChoice, at_once: int | None, step: str | None
) -> Execution:
    """One process; the members of families whose costs say a `gpu_step` of "graphed" or
    "compiled" one at a time, that way; those that say `gpu_alone` one at a time, eagerly;
    the rest stacked; `--members-at-once`, `--step` over it. Graphed steps take fp32 or
    bf16: an fp16 run steps eagerly."""
    names = ", ".join(sorted(training.families))
    ways = {c.gpu_step for c in training.families.values()}
    default = ways.pop() if len(ways) == 1 else "eager"  # mixed families: eager
    if step == "compiled" or (step is None and at_once in (None, 1) and default == "compiled"):
        why = f"{device}: {names}'s steps compiled, members one at a time"
        return Execution(1, threads.count, why, 1, training=True, step="compiled")
    if step == "graphed" or (step is None and default == "graphed" and not training.fp16):
        why = f"{device}: --step graphed" if step else f"{device}: {names}'s steps graphed"
        stacked = at_once or 1  # a stack of graphed members lost to one at a time
        return Execution(1, threads.count, why, stacked, training=True, step="graphed")
    alone = sorted(name for name, cost in training.families.items() if cost.gpu_alone)
    if at_once is None and alone:
        why = f"{device}: {', '.join(alone)}'s members one at a time"
        return Execution(1, threads.count, why, 1, training=True)
    gpu = f"{device}: the members stack on the device"
    return Execution(1, threads.count, gpu, at_once, training=True)


def for_sweep(
    budget: CpuBudget,
    *,
    families: Mapping[str, FamilyCost],
    cells: int,
    cuda: bool,
    workers: int | None = None,
    threads: int | None = None,
    scheduler: str | None = None,
) -> Execution:
    """How `ser sweep` trains its tasks (the module doc): a dask cluster of workers
    (`cluster`), or this process (each task's threads as `ser train` chooses them where
    `threads` is 0); `families`: its distinct cells' families, each with its cost."""
    if workers is not None and scheduler is not None:
        raise ConfigError("give --workers N (a local cluster) or --scheduler ADDRESS, not both")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    if cells < 0:
        raise ValueError(f"cells must be at least 0, got {cells}")
    where = f"{_count(budget.cores, 'core')} ({budget.describe()})"
    if scheduler is not None:
        return Execution(1, threads or 0, f"--scheduler {scheduler}", cluster=True)
    if workers is not None:  # --workers N: cores // N threads each unless --threads
        count = threads or max(1, budget.cores // workers)
        why = f"--workers {workers}" + (f" --threads {threads}" if threads else f": {where}")
        return Execution(workers, count, why, cluster=True)
    names = ", ".join(sorted(families)) or "no"
    runs = "each cell's runs as ser train shares them"
    if cuda:
        return Execution(1, threads or 0, "CUDA: one process, members stacked on the GPU")
    per = threads or 1
    count = side_by_side(budget, per, cells)
    rule = f"--threads {threads}" if threads else "default"
    if not all(cost.cell_per_process for cost in families.values()):
        why = f"{rule} for {names} cells on {where}: a cell per process unmeasured for them"
        return Execution(1, threads or 0, f"{why}; {runs}")
    if count < 2:
        return Execution(1, threads or 0, f"{rule} for {_count(cells, 'cell')} on {where}; {runs}")
    why = f"{rule} for {names} cells on {where}: a cell per process, side by side"
    return Execution(count, per, why, cluster=True)


def training_seconds(training: Training, family: str) -> float:
    """About how long `training` takes in one process, at `family`'s cost's `rate`."""
    return training.families[family].seconds(training.work, training.width)


def stacks(costs: Collection[FamilyCost], width: int) -> bool:
    """Whether members of families of these costs with inputs `width` dims wide stack on
    the CPU."""
    return bool(costs) and all(width <= cost.stack_width for cost in costs)


def side_by_side(budget: CpuBudget, per: int, tasks: int) -> int:
    """Processes of `per` threads that `budget` runs side by side (above `SMALL_BUDGET`
    cores one core left free, as `default_threads` leaves one), at most `tasks`."""
    usable = budget.cores - 1 if budget.cores > SMALL_BUDGET else budget.cores
    return max(1, min(usable // per, tasks))


def _queue_pays(training: Training, count: int, budget: CpuBudget) -> bool:
    """Whether `count` one-thread processes, each taking the next member, finish before
    one process training every member with the budget's threads (the families' slowest
    gain from a second thread; beyond 2 cores taken as growing by the same step a core,
    never past the cores)."""
    gain = min(c.thread_gain or 1.0 for c in training.families.values())
    threads = side_by_side(budget, 1, budget.cores)  # what one process would take
    speedup = min(float(threads), 1.0 + (gain - 1.0) * (threads - 1))
    return math.ceil(training.members / count) * speedup < training.members


def _fits(count: int, data_bytes: int, memory: int) -> int:
    """Processes whose copies of the data, with the caller's, fit in half the memory."""
    if not data_bytes or not memory or (count + 1) * data_bytes <= memory // 2:
        return count
    return max(1, memory // 2 // data_bytes - 1)


def _side_by_side(
    count: int, per: int, source: str, stacked: int | None, here: Execution
) -> Execution:
    if count < 2:
        return _why(here, source)
    return Execution(count, per, source, stacked, training=True)


def _why(here: Execution, reason: str) -> Execution:
    return replace(here, source=f"{reason}; {here.source}")


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"
