"""Where a stacked MSMSER training step spends its time: the torch profiler's top
operations (CPU and CUDA) over a few steps of LOSO members at paper or demo size.

    python benchmarks/profile_train.py --device cuda --seeds 1 --steps 10
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
import contextlib

import bench_train

from ser.train import loop
from ser.train.models import ModelConfig
from ser.train.run import TrainConfig, train


class _Done(Exception):
    pass


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

    def some_steps(model, sides, active, optimizer, streams, precision="fp32"):  # type: ignore[no-untyped-def]
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
        with profile(activities=activities) as prof:
            original(model, First(), active, optimizer, streams, precision)
            if args.device == "cuda":
                torch.cuda.synchronize()
        key = "self_cuda_time_total" if args.device == "cuda" else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=25, max_name_column_width=50))
        raise _Done

    loop.train_epoch = some_steps  # type: ignore[assignment]
    with contextlib.suppress(_Done):
        train(config)


if __name__ == "__main__":
    main()
