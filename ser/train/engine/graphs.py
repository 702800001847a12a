"""The whole training step as one CUDA graph per padded batch shape (`--step graphed`).

A paper-size MSMSER step is ~1,000 small kernels; launched one by one from Python the
card waits on the launches (~25 ms a step for ~2 ms of arithmetic). `GraphedTraining`
captures the whole step, forward, backward and the optimiser's update, with
`torch.cuda.graph`: no inductor, a fraction of a second a shape. Batches come padded to
few shapes (`ser.train.batches.StackedSides(static=True)`). The first batch of each shape and model
variant runs eagerly on a side stream (it allocates the optimiser's state and warms the
kernels up, as torch's documentation asks), the next is captured, and every later one is
copied into the graph's own tensors and replayed in one launch. Adam keeps its step count
on the device (`capturable`); RMM's probability and dropout draw on the device inside the
graph. On the CPU the same path runs each step eagerly on the same copied tensors (what
the tests check). Members train one at a time, or stacked under `vmap` whatever their
steps an epoch (`ser.train.engine.member_adam`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from ser.runtime.precision import autocast
from ser.train.engine.ensemble import Ensemble, tree_map
from ser.train.engine.member_adam import MemberAdam
from ser.train.engine.steps import StepArg, shapes_of, training_loss

StepOut = tuple[torch.Tensor, torch.Tensor]  # each member's mean loss [K], labelled items [K]
# A step's inputs: tensors, dicts of them (views by name), None for an absent input.
Inputs = tuple[StepArg, ...]
# A captured step: its graph, the copies of the inputs it reads, the outputs it writes.
Captured = tuple[torch.cuda.CUDAGraph, Inputs, StepOut]


def whole_step(
    ensemble: Ensemble, optimizer: torch.optim.Optimizer, precision: str
) -> Callable[[tuple[StepArg, ...]], tuple[torch.Tensor, torch.Tensor]]:
    """A whole training step of `batch_tensors`, the class weights and which members have a
    batch [K] (fp32 or bf16: fp16's scaler reads its overflow check on the host), to be
    graphed: forward, backward, the update (a `MemberAdam`'s masked to the members with a
    batch), the gradients unset; returns each member's mean loss [K] (0 without a batch)
    and items [K]."""
    device = ensemble.parameters()[0].device

    def run(tensors: tuple[StepArg, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        *inputs, present = tensors
        with autocast(device, precision, cache=False):
            loss, objective, n = ensemble.call(training_loss, *inputs)  # [K] each
        # A member without a batch has a loss of no items (NaN): its gradient stays in its
        # own slot, and `MemberAdam` leaves that slot as it was.
        objective.sum().backward()
        if isinstance(optimizer, MemberAdam):
            optimizer.active.copy_(present)  # type: ignore[arg-type]  # a tensor [K]
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return torch.where(n > 0, loss.detach().float(), 0.0), n

    return run


def step_variant(ensemble: Ensemble) -> object:
    """The model's `step_variant` (a stage's module may have none)."""
    variant = getattr(ensemble.base, "step_variant", None)
    return variant() if callable(variant) else None


class GraphedTraining:
    """An ensemble's whole training step (forward, backward, the optimiser's update) as one
    CUDA graph per batch shape and model variant (the module doc). `run(tensors)` is the
    eager step, `tensors` the batch's (nested dicts, None for absent inputs); every call
    ends with the gradients unset."""

    def __init__(
        self,
        run: Callable[[Inputs], StepOut],
        device: torch.device,
        shapes_seen: set[tuple[Any, ...]] | None = None,
    ) -> None:
        self.run, self.device = run, device
        self.shapes_seen = set() if shapes_seen is None else shapes_seen
        self.warm: set[tuple[Any, ...]] = set()
        self.graphs: dict[tuple[Any, ...], Captured] = {}
        self.copies: dict[tuple[Any, ...], Inputs] = {}  # the CPU's stand-in for graphs
        # The first graph's memory pool, shared by the others: Any, as torch types its
        # handle with a private name.
        self.pool: Any = None

    def __call__(self, tensors: Inputs, variant: object = None) -> StepOut:
        key = (variant, *shapes_of(tensors))
        self.shapes_seen.add(("whole", *key))
        if self.device.type != "cuda":
            return self._replay_on_cpu(key, tensors)
        if key not in self.warm:
            self.warm.add(key)
            return self._warm_up(tensors)
        if key in self.graphs:
            graph, inputs, out = self.graphs[key]
            _copy(inputs, tensors)
        else:
            graph, _, out = self.graphs[key] = self._capture(tensors)
        graph.replay()
        return out

    def _replay_on_cpu(self, key: tuple[Any, ...], tensors: Inputs) -> StepOut:
        """The CUDA path's bookkeeping without a graph: the step on its own copied inputs."""
        inputs = self.copies.get(key)
        if inputs is None:
            inputs = self.copies[key] = tree_map(torch.Tensor.clone, tensors)
        else:
            _copy(inputs, tensors)
        return self.run(inputs)

    def _warm_up(self, tensors: Inputs) -> StepOut:
        """An eager step on a side stream, as `torch.cuda.graph`'s documentation asks
        before a capture: it allocates the optimiser's state outside any graph."""
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            out = self.run(tensors)
        torch.cuda.current_stream(self.device).wait_stream(side)
        return out

    def _capture(self, tensors: Inputs) -> Captured:
        """The step recorded on copies of `tensors` (nothing runs while it records: the
        caller replays it for this batch)."""
        inputs = tree_map(torch.Tensor.clone, tensors)
        graph = torch.cuda.CUDAGraph()
        # Every graph draws on the first one's memory pool. What outlives a replay (the
        # copied inputs, the outputs) is held here, so its memory is never handed out
        # again; the rest (activations, gradients) lives only inside one replay, and
        # replays never overlap. Each graph on its own pool held every shape's activations
        # at once: 100 GiB for five stacked paper-size members on an H200, out of memory.
        with torch.cuda.graph(graph, pool=self.pool):
            out = self.run(inputs)
        self.pool = graph.pool() if self.pool is None else self.pool
        return graph, inputs, out


def _copy(into: object, tree: Any) -> None:
    """Every tensor of `tree` copied into its place in `into` (the same structure; `tree`
    is indexed as `into` is: Any, a nested structure mypy cannot follow)."""
    if isinstance(into, torch.Tensor):
        into.copy_(tree)
    elif isinstance(into, Mapping):
        for k, v in into.items():
            _copy(v, tree[k])
    elif isinstance(into, (tuple, list)):
        for a, b in zip(into, tree, strict=True):
            _copy(a, b)
