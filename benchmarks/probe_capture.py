"""What capturing the stacked MSMSER training step in a CUDA graph would save.

The GPU step is host-bound (benchmarks/README.md): its ~1200 launches take longer to
issue than the GPU takes to run them. A CUDA graph issues them all at once. Before the
trainer is made capturable (lengths bucketed to a few static shapes, random draws of
static size made on the device), this probe measures the gain on the step that can be
captured today: paper-size MSMSER (d 768, 8 heads, L 30) at static shapes (batch 8,
`--frames` audio frames, `--tokens` tokens), dropout and RMM off (their draws are not
capturable yet), forward, loss, backward and `MemberAdam`'s update, eager against the
same step replayed from a CUDA graph, for K members.

    python3 benchmarks/probe_capture.py --device cuda --members 1 5 15

On the CPU only the eager step runs (CUDA graphs need CUDA): a check of the script.

`--draws`: the real step instead, dropout and RMM drawing, the draws made ahead of each
step (`ser.train.nn.ahead`), which leaves the forward one graph: eager against the
forward + loss under `torch.compile` (mode "reduce-overhead" on CUDA, which captures CUDA
graphs itself; the default mode on the CPU), backward and update eager, both after
warm-up (compiling included there). On the CPU, a check of the script: compiling does
not pay there (benchmarks/README.md).

    python3 benchmarks/probe_capture.py --device cuda --members 1 5 15 --draws
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from ser.train.batch import Batch, InputSpec
from ser.train.models import ModelConfig, build_model
from ser.train.nn.noise import Noise, Streams
from ser.train.optim import MemberAdam

SIZES = {"paper": {}, "tiny": {"d_model": 16, "heads": 2, "queries": 4}}


def make_step(
    k: int,
    size: str,
    frames: int,
    tokens: int,
    device: torch.device,
    precision: str,
    draws: bool = False,
    compile_mode: str | None = None,
) -> tuple[Callable[[], None], MemberAdam]:
    """One training step of K members on fixed random inputs; no random draws unless
    `draws` (then made ahead of each step); `compile_mode`: the forward + loss compiled."""
    changes = {} if draws else {"dropout": 0.0, "rmm": False}
    config = ModelConfig(fusion="mit", **changes, **SIZES[size])  # type: ignore[arg-type]
    dim = 768 if size == "paper" else 8
    specs = [InputSpec("a", "audio", dim, "sequence"), InputSpec("t", "text", dim, "sequence")]
    model = build_model([config] * k, specs, 4, seeds=list(range(k))).to(device).train()
    model.set_epoch(0, 100)  # RMM (with `draws`) at its first epoch's probability
    b = 8
    lengths = {"a": frames, "t": tokens}
    sizes = {"batch": [b] * k, **{n: [t] * k for n, t in lengths.items()}}
    batch = Batch(
        x={n: torch.randn(k, b, t, dim, device=device) for n, t in lengths.items()},
        mask={n: torch.ones(k, b, t, dtype=torch.bool, device=device) for n, t in lengths.items()},
        labels=torch.randint(0, 4, (k, b), device=device),
        index=torch.zeros(k, b, dtype=torch.long, device=device),
        sizes=sizes,
    )  # batch.noise stays None without `draws`
    extents = {axis: torch.tensor(n, device=device) for axis, n in sizes.items()}
    streams = Streams([torch.Generator(device).manual_seed(seed) for seed in range(k)])
    optimizer = MemberAdam(model.parameters(), lr=[1e-4] * k, weight_decay=[0.0] * k)
    dtype = torch.bfloat16 if precision == "bf16" else None
    everyone = [True] * k

    def forward(batch: Batch) -> torch.Tensor:
        return model.loss(model(batch), batch)  # [K]

    # Static shapes (no symbolic sizes: the draw plan compares them), and the first step,
    # which has no plan yet and draws site by site, runs eagerly.
    run = torch.compile(forward, mode=compile_mode, dynamic=False) if compile_mode else forward

    def step() -> None:
        planned = not draws
        if draws:
            streams.next_step()
            planned = bool(streams.plan)
            batch.noise = Noise(streams, sizes, dict(extents), ahead=True)
        # No autocast cache: a graph replays the casts of weights that change every step.
        with torch.autocast(
            device.type, dtype=dtype, enabled=dtype is not None, cache_enabled=False
        ):
            losses = (run if planned else forward)(batch)
        losses.sum().backward()
        optimizer.step(everyone)

    return step, optimizer


def eager_ms(
    step: Callable[[], None], optimizer: MemberAdam, steps: int, device: torch.device
) -> float:
    for _ in range(3):  # warm-up: kernels chosen, memory pooled
        optimizer.zero_grad()
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        step()
    _sync(device)
    return (time.perf_counter() - start) / steps * 1e3


def captured_ms(step: Callable[[], None], optimizer: MemberAdam, steps: int) -> float:
    """The same step captured once (after warm-up on a side stream) and replayed: the
    gradients captured are written, not accumulated, on every replay."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            optimizer.zero_grad()
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad()
    with torch.cuda.graph(graph):
        step()
    graph.replay()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        graph.replay()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps * 1e3


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    parser.add_argument("--size", default="paper", choices=list(SIZES))
    parser.add_argument("--members", type=int, nargs="+", default=[1, 5, 15])
    parser.add_argument("--frames", type=int, default=224, help="HuBERT frames (~4.5 s)")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--draws", action="store_true", help="dropout and RMM, drawn ahead")
    args = parser.parse_args()
    device = torch.device(args.device)
    shape = (args.size, args.frames, args.tokens, device, args.precision, args.draws)
    for k in args.members:
        step, optimizer = make_step(k, *shape)
        eager = eager_ms(step, optimizer, args.steps, device)
        line = f"K={k:2d} {args.size} {args.precision}: eager {eager:7.1f} ms/step"
        if args.draws:
            mode = "reduce-overhead" if device.type == "cuda" else "default"
            step, optimizer = make_step(k, *shape, compile_mode=mode)
            compiled = eager_ms(step, optimizer, args.steps, device)
            line += f", compiled ({mode}) {compiled:7.1f} ms/step ({eager / compiled:.2f}x)"
        elif device.type == "cuda":
            graph = captured_ms(step, optimizer, args.steps)
            peak = torch.cuda.max_memory_allocated(device) / 2**30
            line += f", captured {graph:7.1f} ms/step, peak memory {peak:.1f} GiB"
            torch.cuda.reset_peak_memory_stats(device)
        print(line, flush=True)
        del step, optimizer


if __name__ == "__main__":
    main()
