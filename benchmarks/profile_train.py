"""Where a stacked MSMSER training step spends its time: the torch profiler's top
operations (CPU and CUDA) over a few steps of LOSO members at paper or demo size.

    python benchmarks/profile_train.py --device cuda --seeds 1 --steps 10
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
import contextlib

import bench_train

from ser.train import loop
from ser.train.models import ModelConfig
from ser.train.run import TrainConfig, train


class _Done(Exception):
    pass


def summary(prof: profile, steps: int, issued: float, wall: float) -> str:
    """Per step: the host's time to issue it, the wall time, and on a GPU the kernels
    (and copies) launched and their busy time: a step whose issue time exceeds its GPU
    time is host-bound. (The profiler itself adds host time.)"""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--size", default="paper", choices=["paper", "demo"])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    n, dim = (5531, 768) if args.size == "paper" else (413, 20)
    bench_train.msmser_store(tmp / "s.h5", n, np.random.default_rng(0), dim=dim)
    model = ModelConfig(fusion="mit", **bench_train.MSMSER_SIZES[args.size])
    config = TrainConfig(
        store=str(tmp / "s.h5"), features=("hubert.L12", "mpnet"), model=model,
        protocol="loso", seeds=args.seeds, epochs=1, device=args.device, out=str(tmp / "r"),
    )  # fmt: skip
    original = loop.train_epoch

    def some_steps(  # type: ignore[no-untyped-def]
        model, sides, active, optimizer, streams, precision="fp32", graphs=None, on_step=None
    ):
        class First:
            def epoch(self, act):  # type: ignore[no-untyped-def]
                for i, step in enumerate(sides.epoch(act)):
                    if i == args.steps:
                        return
                    yield step

        original(model, First(), active, optimizer, streams, precision)  # warm-up
        activities = [ProfilerActivity.CPU] + (
            [ProfilerActivity.CUDA] if args.device == "cuda" else []
        )
        if args.device == "cuda":
            torch.cuda.synchronize()
        # The host has issued a step when its update returns (the epoch's loss read at
        # the end waits for the device, so the epoch's end would not tell).
        returned: list[float] = []
        update = optimizer.step

        def timed_update(present):  # type: ignore[no-untyped-def]
            update(present)
            returned.append(time.perf_counter())

        optimizer.step = timed_update
        start = time.perf_counter()
        with profile(activities=activities) as prof:
            original(model, First(), active, optimizer, streams, precision)
            issued = returned[-1] - start
            if args.device == "cuda":
                torch.cuda.synchronize()
        wall = time.perf_counter() - start
        key = "self_cuda_time_total" if args.device == "cuda" else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=25, max_name_column_width=50))
        print(summary(prof, args.steps, issued, wall))
        raise _Done

    loop.train_epoch = some_steps  # type: ignore[assignment]
    with contextlib.suppress(_Done):
        train(config)


if __name__ == "__main__":
    main()
