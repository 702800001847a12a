"""Why stacking gains little on a CPU: probes of stacked training steps.

- ``host``: the paper's MSMSER layout (8 heads, L 30, 2 + 2 encoder and 2 decoder layers)
  at width 16 over ~9-frame utterances, so arithmetic is negligible: ms per step (with
  the Adam update) for K members is what dispatching the step costs (Python, autograd,
  operator launch), the part stacking shares between members; and the step's operators
  that would launch GPU work, forward + backward and Adam apart (a GPU step is
  host-bound: ~2000 launches against 14 ms of kernels at K 5, measured before Adam
  went flat).
- ``dialog``: the fusion study's stacked step (20 members, batches of 20 dialogs of 40
  utterances) at width 8, where dispatch is what it costs, and at its own width 100: ms
  per step and the operators that would launch GPU work (its Bi-GRU steps through the
  utterances: the recurrence's operators per time step decide the count).
- ``compile``: one stacked step of the demo's MSMSER (d 64, 4 heads, L 8; 200 frames and
  30 tokens, batch 8 per member) eager against `torch.compile` (inductor's C++ code),
  compile time apart.
- ``explain``: where `torch.compile` would break the stacked MSMSER forward + loss into
  pieces (TorchDynamo's explain), on a first and a later step: what compiling (or
  capturing) the step on a GPU must first remove.
- ``shapes``: the demo's MSMSER step (d 64, 4 heads, L 8; 150 frames and 12 tokens, batch
  8 per member, with the Adam update) for K = 1, 3, 5 and 15 members at one shape: what a
  member-step costs stacked when no member is padded to another's lengths (a real run's
  members pad to the longest of their step's batches).
- ``memory``: an elementwise product and a ReLU backward over [K, 8, 300, 256] float32
  (the demo's feed-forward activations), ms per member as K grows: stacked tensors leave
  the cache, and past glibc's largest mmap threshold (32 MB) every allocation is a new
  mapping whose pages fault in again.

    .venv/bin/python benchmarks/probe_train_cpu.py host dialog compile shapes memory --threads 2

Figures: benchmarks/README.md, "Stacked training", CPU.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ser.runtime.allocator import tune_heap
from ser.train.batch import Batch, InputSpec
from ser.train.models import ModelConfig, build_model
from ser.train.nn.noise import Noise, Streams
from ser.train.optim import MemberAdam


def step_ms(fn: Callable[[], Any], repeat: int = 10) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1e3


def stacked_step(
    config: ModelConfig,
    k: int,
    frames: int,
    tokens: int,
    dim: int,
    one_launch: bool = False,
    adam: bool = False,
) -> Callable[[], Any]:
    """One training step (forward, loss, backward; `adam`: and the update) of K members
    on random inputs."""
    specs = [InputSpec("a", "audio", dim, "sequence"), InputSpec("t", "text", dim, "sequence")]
    model = build_model([config] * k, specs, 4, seeds=list(range(k)))
    model.train()
    model.set_epoch(0, 100)  # RMM at its first epoch's probability: it draws, as in training
    b = 8
    batch = Batch(
        x={"a": torch.randn(k, b, frames, dim), "t": torch.randn(k, b, tokens, dim)},
        mask={"a": torch.ones(k, b, frames, dtype=torch.bool),
              "t": torch.ones(k, b, tokens, dtype=torch.bool)},
        labels=torch.randint(0, 4, (k, b)),
        index=torch.zeros(k, b, dtype=torch.long),
        sizes={"batch": [b] * k, "a": [frames] * k, "t": [tokens] * k},
    )  # fmt: skip

    optimizer = None
    if adam:  # (it makes the weights views of one buffer)
        optimizer = MemberAdam(model.parameters(), lr=[1e-3] * k, weight_decay=[0.0] * k)
    return training_step(model, batch, one_launch, optimizer)


def training_step(
    model: Any, batch: Batch, one_launch: bool, optimizer: MemberAdam | None = None
) -> Callable[[], Any]:
    """Forward, loss, backward (and the update) of `model` on `batch`, each member
    drawing from its own stream (seeds 0..K-1) as in training; `one_launch`: the draws
    placed as on a GPU."""
    k = model.members
    streams = Streams([torch.Generator().manual_seed(seed) for seed in range(k)])

    def step() -> torch.Tensor:
        streams.next_step()
        # As on a GPU: one scatter a site, and the step's draws made ahead of it.
        batch.noise = Noise(streams, batch.sizes or {}, one_launch=one_launch, ahead=one_launch)
        model.zero_grad(set_to_none=True)
        loss = model.loss(model(batch), batch).sum()
        loss.backward()
        if optimizer is not None:
            optimizer.step([True] * k)
        return loss

    return step


# Operators that only make a view or read metadata: no kernel on a GPU.
NO_KERNEL = {"view", "as_strided", "reshape", "transpose", "t", "expand", "slice", "select",
             "unsqueeze", "squeeze", "permute", "alias", "detach", "_unsafe_view",
             "resolve_conj", "resolve_neg", "unbind", "split", "chunk", "narrow", "empty",
             "empty_strided", "empty_like", "lift_fresh", "_reshape_alias", "expand_as",
             "view_as", "flatten", "unflatten", "size", "stride", "is_nonzero", "item",
             "_local_scalar_dense", "numpy_T", "movedim", "contiguous"}  # fmt: skip


def kernel_ops(step: Callable[[], Any]) -> int:
    """Operators of one step that would launch work on a GPU: outermost aten calls, views
    and metadata left out."""
    from torch.profiler import ProfilerActivity, profile

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    count = 0
    for event in prof.events():
        name = event.name.removeprefix("aten::")
        if not event.name.startswith("aten::") or name in NO_KERNEL:
            continue
        parent = event.cpu_parent
        while parent is not None and not parent.name.startswith("aten::"):
            parent = parent.cpu_parent
        count += parent is None
    return count


def host() -> None:
    config = ModelConfig(fusion="mit", d_model=16, heads=8, queries=30)
    for k in (1, 5, 15):
        step = stacked_step(config, k, frames=9, tokens=5, dim=8, adam=True)
        ms = step_ms(step, repeat=20)
        shape = {"frames": 9, "tokens": 5, "dim": 8}
        as_gpu = kernel_ops(stacked_step(config, k, **shape, one_launch=True))
        as_cpu = kernel_ops(stacked_step(config, k, **shape))
        adam = kernel_ops(stacked_step(config, k, **shape, one_launch=True, adam=True)) - as_gpu
        print(f"host: K={k:2d}  {ms:6.1f} ms/step  {ms / k:5.2f} ms/member-step  "
              f"{as_gpu} kernel-launching operators in forward + backward (draws as on a "
              f"GPU; {as_cpu} as on the CPU), {adam} in the Adam update")  # fmt: skip


def dialog_step(k: int, width: int, dialogs: int = 20, utterances: int = 40) -> Callable[[], Any]:
    """One training step (forward, loss, backward) of K stacked fusion-study models
    (logits ADD, perspective loss: two Bi-GRUs, two attentions) at `width`, on batches of
    `dialogs` dialogs of `utterances` utterances."""
    config = ModelConfig(fusion="add", fusion_at="logits", loss="perspective", d_model=width)
    specs = [InputSpec("a", "audio", width, "vector"), InputSpec("t", "text", width, "vector")]
    model = build_model([config] * k, specs, 4, seeds=list(range(k)))
    model.train()
    shape = (k, dialogs, utterances)
    batch = Batch(
        x={"a": torch.randn(*shape, width), "t": torch.randn(*shape, width)}, mask={},
        labels=torch.randint(0, 4, shape), index=torch.zeros(shape, dtype=torch.long),
        utt_mask=torch.ones(shape, dtype=torch.bool),
        sizes={"batch": [dialogs] * k, "utt": [utterances] * k},
    )  # fmt: skip
    return training_step(model, batch, one_launch=True)


def dialog() -> None:
    """The fusion study's step at width 8 (dispatch, not arithmetic) and at its own
    width 100, K = 20 (its 20 seeds); operators counted as on the CPU and as on a GPU
    (where the Bi-GRU makes its backward's factors for all steps at once)."""
    import ser.train.nn.gru as gru

    for width in (8, 100):
        step = dialog_step(20, width)
        ms = step_ms(step, repeat=5)
        as_cpu = kernel_ops(step)
        recurrence = getattr(gru, "gru_directions", None)  # absent before the Bi-GRU Function
        if recurrence is not None:
            gru.gru_directions = functools.partial(recurrence, factors_at_once=True)  # type: ignore[attr-defined]
        as_gpu = kernel_ops(dialog_step(20, width))
        if recurrence is not None:
            gru.gru_directions = recurrence  # type: ignore[attr-defined]
        print(
            f"dialog: K=20 width {width:3d}  {ms:6.1f} ms/step  kernel-launching operators "
            f"in forward + backward: {as_cpu} as on the CPU, {as_gpu} as on a GPU"
        )


def compiled() -> None:
    config = ModelConfig(fusion="mit", d_model=64, heads=4, queries=8)
    for k in (1, 15):
        step = stacked_step(config, k, frames=200, tokens=30, dim=20)
        eager = step_ms(step)
        start = time.perf_counter()
        fast = torch.compile(step)
        fast()
        took = time.perf_counter() - start
        ms = step_ms(fast)
        print(f"compile: K={k:2d}  eager {eager:6.1f} ms  compiled {ms:6.1f} ms  "
              f"({eager / ms:.2f}x, compile {took:.0f} s)")  # fmt: skip


def explain() -> None:
    """Where `torch.compile` would break the stacked MSMSER forward + loss into pieces
    (TorchDynamo's explain; no code is generated), K = 5, on a first and a later step."""
    import torch._dynamo

    config = ModelConfig(fusion="mit", d_model=16, heads=4, queries=8)
    specs = [InputSpec("a", "audio", 8, "sequence"), InputSpec("t", "text", 8, "sequence")]
    k = 5
    model = build_model([config] * k, specs, 4, seeds=list(range(k)))
    model.train()
    model.set_epoch(0, 100)  # RMM draws, as in training
    batch = Batch(
        x={"a": torch.randn(k, 8, 20, 8), "t": torch.randn(k, 8, 6, 8)},
        mask={"a": torch.ones(k, 8, 20, dtype=torch.bool),
              "t": torch.ones(k, 8, 6, dtype=torch.bool)},
        labels=torch.randint(0, 4, (k, 8)), index=torch.zeros(k, 8, dtype=torch.long),
        sizes={"batch": [8] * k, "a": [20] * k, "t": [6] * k},
    )  # fmt: skip
    streams = Streams([torch.Generator().manual_seed(seed) for seed in range(k)])
    for step in ("first", "later"):
        streams.next_step()  # the first step draws site by site; the later one ahead
        batch.noise = Noise(streams, batch.sizes or {}, one_launch=True, ahead=True)
        torch._dynamo.reset()
        found = torch._dynamo.explain(lambda b: model.loss(model(b), b).sum())(batch)
        reasons: dict[str, int] = {}
        for r in found.break_reasons:
            frame = r.user_stack[-1] if r.user_stack else None
            where = f"{Path(frame.filename).name}:{frame.lineno}" if frame else "?"
            key = f"{r.reason.splitlines()[0]} at {where}"
            reasons[key] = reasons.get(key, 0) + 1
        print(f"explain: {step} step: {found.graph_count} graphs, {found.graph_break_count} "
              f"breaks; {reasons}")  # fmt: skip


def shapes() -> None:
    config = ModelConfig(fusion="mit", d_model=64, heads=4, queries=8)
    for k in (1, 3, 5, 15):
        ms = step_ms(stacked_step(config, k, frames=150, tokens=12, dim=20, adam=True), repeat=8)
        print(f"shapes: K={k:2d}  {ms:6.1f} ms/step  {ms / k:5.1f} ms/member-step")


def memory() -> None:
    for k in (1, 5, 15):
        x = torch.randn(k, 8, 300, 256)
        g, y = torch.randn_like(x), torch.relu(x)
        mul = step_ms(lambda: x * g, repeat=20)  # noqa: B023
        relu = step_ms(lambda: torch.ops.aten.threshold_backward(g, y, 0), repeat=20)  # noqa: B023
        print(f"memory: K={k:2d} ({x.numel() * 4 / 2**20:4.0f} MiB)  product {mul / k:.2f} "
              f"ms/member  ReLU backward {relu / k:.2f} ms/member")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    probes = {"host": host, "dialog": dialog, "compile": compiled, "explain": explain,
              "shapes": shapes, "memory": memory}  # fmt: skip
    parser.add_argument("probes", nargs="+", choices=list(probes))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--glibc-heap", action="store_true", help="keep glibc's heap defaults")
    args = parser.parse_args()
    if not args.glibc_heap:
        tune_heap()  # as the `ser` command does
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as `ser train` does on the CPU
    for probe in args.probes:
        probes[probe]()


if __name__ == "__main__":
    main()
