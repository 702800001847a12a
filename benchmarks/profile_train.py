"""Where an MSMSER training step spends its time: the torch profiler's top operations
(CPU and, on a GPU, CUDA) over a few training steps of LOSO members at paper or demo
size, as `ser train` runs them on the device (on a GPU one member at a time, each step
one CUDA graph), or `--step eager` with `--members-at-once` (all: stacked under `vmap`).

The steps are the first `--steps` of an epoch, run once to warm up (cuDNN plans,
compilation, CUDA graphs for their shapes) and then profiled: a line per step says
how long the host took to issue it against the wall time and, on a GPU, the kernels
launched and their busy time (a step whose issue time exceeds its GPU time is
host-bound).

    python benchmarks/profile_train.py --device cuda --seeds 1 --steps 20
    python benchmarks/profile_train.py --device cuda --seeds 1 --steps 20 --step eager
    python benchmarks/profile_train.py --device cuda --steps 20 --utterances 1106  # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
import bench_train

from ser.models import ModelConfig
from ser.train.engine import loop
from ser.train.recipe import TrainConfig, train


class Done(Exception):
    """Stops `train` once the profiled steps have run."""


class FixedSteps:
    """A training side of fixed steps (stacked batches made once), for `train_epoch`."""

    def __init__(self, steps: list[Any]) -> None:
        self.steps = steps

    def __len__(self) -> int:
        return len(self.steps)

    def epoch(self) -> Iterator[Any]:
        yield from self.steps


def summary(prof: profile, steps: int, issued: float, wall: float) -> str:
    """Per step: the host's time to issue it, the wall time, and on a GPU the kernels
    (and copies) launched and their busy time. (The profiler itself adds host time.)"""
    line = (
        f"{steps} steps: issued in {issued / steps * 1e3:.1f} ms/step, "
        f"wall {wall / steps * 1e3:.1f} ms/step"
    )
    on_gpu = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
    if on_gpu:
        busy = sum(e.device_time_total for e in on_gpu) / 1e3  # us -> ms
        line += (
            f", {len(on_gpu) / steps:.0f} GPU launches/step, GPU busy {busy / steps:.1f} ms/step"
        )
    return line


def profiled_epoch(args: argparse.Namespace) -> Any:
    """A stand-in for `loop.train_epoch`: warm up on the first steps, profile them again,
    print the table and the summary, stop the run."""
    original = loop.train_epoch
    cuda = args.device == "cuda"

    def some_steps(
        ensemble: Any, sides: Any, optimizer: Any, scaler: Any, precision: str = "fp32",
        on_step: Any = None, steps_of: Any = None, whole: Any = None,
    ) -> list[float]:  # fmt: skip
        steps = []
        for step in sides.epoch():  # (members present, stacked batch)
            steps.append(step)
            if len(steps) == args.steps:
                break
        first: Any = FixedSteps(steps)  # a stand-in for the epoch's `StackedSides`
        # Warm-up: twice, so that a graphed run has captured every shape (its first
        # batch of a shape runs eagerly, the next is captured).
        for _ in range(2 if whole is not None else 1):
            original(ensemble, first, optimizer, scaler, precision, None, steps_of, whole)
        if cuda:
            torch.cuda.synchronize()
        # The host has issued a step when its update returns, or its graph's replay (the
        # epoch's loss, read at the end, waits for the device, so the epoch's end would not
        # tell).
        returned: list[float] = []

        def timed(call: Any) -> Any:
            def run(*a: Any, **k: Any) -> Any:
                out = call(*a, **k)
                returned.append(time.perf_counter())
                return out

            return run

        if whole is None:
            optimizer.step = timed(optimizer.step)
        else:
            whole = timed(whole)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        start = time.perf_counter()
        with profile(activities=activities) as prof:
            original(ensemble, first, optimizer, scaler, precision, None, steps_of, whole)
            issued = returned[-1] - start
            if cuda:
                torch.cuda.synchronize()
        wall = time.perf_counter() - start
        key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=25, max_name_column_width=50))
        print(f"{ensemble.members} member(s) a step; " + summary(prof, len(steps), issued, wall))
        raise Done

    return some_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--size", default="paper", choices=["paper", "demo"])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument(
        "--step", choices=["eager", "graphed", "compiled"], help="[the device's default]"
    )
    parser.add_argument("--members-at-once", type=int, help="[the device's default]")
    parser.add_argument("--utterances", type=int, help="of IEMOCAP's 5531 [paper all, demo 413]")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    n, dim = (5531, 768) if args.size == "paper" else (413, 20)
    n = args.utterances or n
    bench_train.msmser_store(tmp / "s.h5", n, np.random.default_rng(0), dim=dim)
    model = ModelConfig(fusion="mit", **bench_train.MSMSER_SIZES[args.size])
    config = TrainConfig(
        store=str(tmp / "s.h5"), features=("hubert.L12", "mpnet"), model=model,
        protocol="loso", seeds=args.seeds, epochs=1, device=args.device, out=str(tmp / "r"),
        members_at_once=args.members_at_once, step=args.step,
    )  # fmt: skip
    original = loop.train_epoch
    loop.train_epoch = profiled_epoch(args)
    try:
        with contextlib.suppress(Done):
            train(config)
    finally:
        loop.train_epoch = original


if __name__ == "__main__":
    main()
