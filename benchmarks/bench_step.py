"""How many operations one MSMSER training step launches, and its host time.

One step (forward, backward, optimiser step) of the first LOSO member, eager on the
CPU, as `ser train` runs it: `ser.train.recipe.train` builds the run from a small
synthetic store of paper-size frames (`bench_train.msmser_store`: 768-d HuBERT frames at
50/s, MPNet tokens), and `ser.train.engine.loop.train_epoch` itself is driven on a side of one
batch (the first of the member's epoch, made once), as `bench_train.step_flops` does.

- ``ops_per_step``: every ``aten::`` event the public profiler
  (`torch.profiler.profile`, CPU activity) records in the step, nested ones included
  (an `aten::linear` and the `aten::addmm` it calls count two);
  ``top_level_ops_per_step``: those with no ``aten::`` event above them (the ops
  Python and autograd call). ``top_ops``: the 10 most frequent names among all.
- ``host_syncs_per_step``: ``aten::_local_scalar_dense`` (what `.item()` and a Python
  `bool`/`float` of a tensor call), ``aten::nonzero`` and ``aten::masked_select``
  events with none of these above them (``aten::item`` calls
  ``_local_scalar_dense``: counted once); a boolean-mask index shows as its
  ``aten::nonzero``. Not counted: those inside ``aten::_fused_adam_``, whose CPU kernel
  reads each parameter's step count with ``item`` where its CUDA kernel reads them on the
  device (``fused_adam_item_reads``). ``host_syncs_by_op``: the counted by name.
- ``host_ms_per_step_d16``: the wall time of a step of the same model at d_model 16,
  median of `--steps` after `--warmup`: the model's arithmetic shrinks, the host's work
  (Python, dispatch, autograd, the optimiser) stays. What does not shrink with d_model
  stays too: the 768-d inputs' projections and attention's [T, T] scores (on 2 CPU
  cores these took most of the d 16 step: benchmarks/README.md).

`train_epoch` of one batch also does its epoch's bookkeeping (accumulators, the
closing `.tolist()`): its ops are those of `train_epoch` over no batch, counted the same
way and subtracted (``epoch_overhead_ops``); the timing subtracts that epoch's median
too (``epoch_overhead_ms``).

    .venv/bin/python benchmarks/bench_step.py --json             # paper size
    .venv/bin/python benchmarks/bench_step.py --size tiny --json  # seconds (the test's)

Progress lines go to stderr; the result is one JSON object on stdout. Figures and
commands: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, TypeVar

from ser.runtime.threads import brief_waits

# As the `ser` command does, before torch loads OpenMP (which reads its wait setting once).
brief_waits()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_train import MSMSER_SIZES, msmser_store  # noqa: E402
from profile_train import Done, FixedSteps  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from ser.models import ModelConfig  # noqa: E402
from ser.train.engine import loop  # noqa: E402
from ser.train.recipe import TrainConfig, train  # noqa: E402

T = TypeVar("T")
SYNCS = ("aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select")
# Per size: the store's feature width and the counted model's options (the timed model is
# the same at d_model 16).
SIZES: dict[str, tuple[int, dict[str, Any]]] = {
    "paper": (768, dict(MSMSER_SIZES["paper"])),
    "tiny": (20, {"d_model": 16, "heads": 4, "queries": 8}),
}


Job = Callable[[Callable[[], None], Callable[[], None], Any], T]


def on_first_step(config: TrainConfig, job: Job[T]) -> T:
    """`job(step, empty, batch)` inside `train(config)`'s first epoch: `step()` runs
    `train_epoch` over the first member's first batch, `empty()` over no batch."""
    original, found = loop.train_epoch, []

    def hooked(ensemble: Any, sides: Any, optimizer: Any, scaler: Any, *rest: Any) -> Any:
        first = next(iter(sides.epoch()))
        one, none = FixedSteps([first]), FixedSteps([])
        found.append(
            job(
                lambda: original(ensemble, one, optimizer, scaler, *rest[:1]),
                lambda: original(ensemble, none, optimizer, scaler, *rest[:1]),
                first[1],
            )
        )
        raise Done

    loop.train_epoch = hooked
    try:
        train(replace(config, epochs=1, overwrite=True, members_at_once=1, step="eager"))
    except Done:
        pass
    finally:
        loop.train_epoch = original
    return found[0]


def has_parent(event: Any, names: Callable[[str], bool]) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if names(parent.name):
            return True
        parent = parent.cpu_parent
    return False


def op_counts(run: Callable[[], None]) -> dict[str, Counter[str]]:
    """The aten events of one `run()`: all, top-level, and host syncs, each by name."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    aten = [e for e in prof.events() if e.name.startswith("aten::")]
    sync_names = (*SYNCS, "aten::item")

    def is_aten(name: str) -> bool:
        return name.startswith("aten::")

    def is_sync(name: str) -> bool:
        return name in SYNCS

    def in_adam(event: Any) -> bool:
        return has_parent(event, lambda name: name == "aten::_fused_adam_")

    host = [e for e in aten if not in_adam(e)]
    return {
        "all": Counter(e.name for e in aten),
        "top": Counter(e.name for e in aten if not has_parent(e, is_aten)),
        "syncs": Counter(e.name for e in host if is_sync(e.name) and not has_parent(e, is_sync)),
        "sync_events": Counter(e.name for e in host if e.name in sync_names),
        "adam_reads": Counter(e.name for e in aten if e.name == "aten::item" and in_adam(e)),
    }


def count_job(step: Callable[[], None], empty: Callable[[], None], batch: Any) -> dict[str, Any]:
    step()  # warm-up: the optimiser's state, first-call caches
    one, none = op_counts(step), op_counts(empty)
    return {
        "ops_per_step": (one["all"] - none["all"]).total(),
        "top_level_ops_per_step": (one["top"] - none["top"]).total(),
        "host_syncs_per_step": (one["syncs"] - none["syncs"]).total(),
        "host_syncs_by_op": dict(one["sync_events"] - none["sync_events"]),
        "fused_adam_item_reads": (one["adam_reads"] - none["adam_reads"]).total(),
        "top_ops": dict((one["all"] - none["all"]).most_common(10)),
        "epoch_overhead_ops": none["all"].total(),
        "batch_utterances": int((batch.labels != -100).sum()),
        "batch_shapes": {name: list(t.shape) for name, t in batch_tensors(batch).items()},
    }


def batch_tensors(batch: Any) -> dict[str, torch.Tensor]:
    """The batch's tensors by field name (its views' by view: "x.mpnet"), for the shapes
    reported (each leads with the member dimension, 1 here)."""
    out: dict[str, torch.Tensor] = {}
    for f in fields(batch):
        value = getattr(batch, f.name)
        if isinstance(value, torch.Tensor):
            out[f.name] = value
        elif isinstance(value, dict):
            views = {k: t for k, t in value.items() if isinstance(t, torch.Tensor)}
            out.update({f"{f.name}.{k}": t for k, t in views.items()})
    return out


def median_ms(run: Callable[[], None], warmup: int, steps: int) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def time_job(warmup: int, steps: int) -> Job[dict[str, Any]]:
    def job(step: Callable[[], None], empty: Callable[[], None], batch: Any) -> dict[str, Any]:
        step_ms, empty_ms = median_ms(step, warmup, steps), median_ms(empty, warmup, steps)
        return {
            "host_ms_per_step_d16": round(step_ms - empty_ms, 2),
            "epoch_overhead_ms": round(empty_ms, 3),
            "threads": torch.get_num_threads(),  # inside the run: `train` restores them after
        }

    return job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=list(SIZES), default="paper")
    parser.add_argument("--utterances", type=int, default=40, help="the store's [40]")
    parser.add_argument("--warmup", type=int, default=3, help="timed steps' warm-up [3]")
    parser.add_argument("--steps", type=int, default=20, help="timed steps [20]")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="the result on one line")
    args = parser.parse_args()
    dim, options = SIZES[args.size]
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "msmser.h5"
        msmser_store(store, args.utterances, np.random.default_rng(0), dim=dim)
        base = TrainConfig(
            store=str(store), features=("hubert.L12", "mpnet"),
            model=ModelConfig(fusion="mit", **options), protocol="loso", seeds=1, epochs=1,
            device="cpu", threads=args.threads, out=str(Path(tmp) / "runs"),
        )  # fmt: skip
        result: dict[str, Any] = on_first_step(base, count_job)
        print(f"counts: {json.dumps(result)}", file=sys.stderr, flush=True)
        narrow = replace(base, model=ModelConfig(fusion="mit", **{**options, "d_model": 16}))
        result.update(on_first_step(narrow, time_job(args.warmup, args.steps)))
    result.update(
        size=args.size, model=options, store_dim=dim, utterances=args.utterances,
        member="loso seed 0, first fold", step="eager", device="cpu",
        timed_steps=args.steps, warmup=args.warmup,
        load_average=os.getloadavg(), cpu=platform.processor() or platform.machine(),
        torch=torch.__version__,
    )  # fmt: skip
    print(json.dumps(result, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
