"""How a member's training and evaluation steps run: eagerly, or compiled on few shapes.

A paper-size MSMSER step on a GPU is ~1,300 small kernels, each launched from Python:
the card waits on the launches (25-30 ms a step for ~2 ms of arithmetic). Compiled
(`torch.compile`), inductor fuses them, and on a GPU CUDA graphs (mode
"reduce-overhead") replay each step's kernels in one launch. Shapes start static and
turn dynamic where they change (torch.compile's default): each step function compiles
about twice. `dynamic=True` would also make every float the step reads (dropout p,
LayerNorm eps) a 0-d host tensor input, and a graph with a host input is never captured
("skipping cudagraphs due to cpu device", on an H200): a value that changes between
steps reaches the step as a tensor on the device (MSMSER's RMM probability). A CUDA
graph holds one shape, so compiled runs pad their batches to few
(`ser.train.batches.StackedSides(static=True)`): every batch to the full batch size
(missing rows are padding, labels -100: no loss, no score) and every sequence to its
length's bucket (`ser.train.batches.bucket`), a sequence view whose longest utterance is
short to that length alone. An epoch then meets a dozen shapes, each recorded once.

Compiled steps run members one at a time: under `vmap` dynamo skips the frame
(pytorch#128711) or fails on dynamic shapes (pytorch#132381). Dropout and RMM draw from
inductor's own generator there, so a compiled run is the eager run with other random
numbers; without randomness their losses agree to float rounding (tested on the CPU).
Graphed steps (`--step graphed`): `ser.train.engine.graphs`.

`ser.runtime.execution` decides how a run's steps run (`Execution.step`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.attention import sdpa_kernel

from ser.models.base import SerModel
from ser.models.batch import Batch
from ser.runtime.attention import attention_backends
from ser.train.engine.ensemble import Ensemble

# torch.compile's backend for compiled steps (the tests' "eager" traces the same
# without generating code), and whether a break in a step's graph is an error (the
# tests': a break splits the step, and CUDA graphs with it, without a word).
BACKEND = "inductor"
FULLGRAPH = False
# Utterances a compiled step scores at once on validation and test sides: scoring has no
# optimiser step to keep in the paper's batch size, and a larger batch replays fewer graphs.
EVAL_ROWS = 64


@dataclass
class Steps:
    """The step functions the loop calls for each member (`ser.train.engine.loop`'s
    `_training_loss` and `_evaluation`), as `compiled` says; `backend`: torch.compile's
    (tests use "eager": the same tracing, no code generation)."""

    compiled: bool = False
    graphed: bool = False
    backend: str | Callable[..., Any] = field(default_factory=lambda: BACKEND)
    shapes_seen: set[tuple[Any, ...]] = field(default_factory=set)
    _wrapped: dict[Callable[..., Any], Callable[..., Any]] = field(default_factory=dict)
    _modules: dict[tuple[Any, ...], nn.Module] = field(default_factory=dict)

    def ensemble(self, modules: Sequence[nn.Module]) -> Ensemble:
        """What trains `modules`: an `Ensemble` of them (one member alone: in place in its
        module, its own parameters); for compiled steps an `Ensemble` of one module kept for
        every member of that architecture, the member's weights loaded into it. A compiled
        step holds on to the
        module it traced: another object, even of the same structure, would compile it
        again (a minute for each LOSO member on an H100), and its parameters are static in
        the CUDA graphs."""
        if not self.compiled:
            return Ensemble(modules)
        if len(modules) != 1:
            raise ValueError(f"compiled steps train one member at a time, got {len(modules)}")
        module = modules[0]
        shapes = tuple((n, tuple(t.shape), t.dtype) for n, t in module.state_dict().items())
        key = (type(module).__qualname__, repr(getattr(module, "config", None)), shapes)
        if key not in self._modules:
            self._modules[key] = copy.deepcopy(module)
        kept = self._modules[key]
        kept.load_state_dict(module.state_dict())
        return Ensemble([kept])

    def __call__(self, fn: Callable[..., tuple[torch.Tensor, ...]]) -> Callable[..., Any]:
        """`fn`, compiled once per function when `compiled`."""
        if not self.compiled:
            return fn
        if fn not in self._wrapped:
            self._wrapped[fn] = self._compile(fn)
        return self._wrapped[fn]

    @property
    def static(self) -> bool:
        """Whether batches are padded to few shapes (`StackedSides(static=True)`)."""
        return self.compiled or self.graphed

    @property
    def eval_rows(self) -> int | None:
        """The batch size of validation and test sides (None: the run's own)."""
        return EVAL_ROWS if self.static else None

    def record(self) -> dict[str, Any]:
        """What run records hold of how the steps ran."""
        if self.graphed:  # the shapes and variants it captured a graph of
            return {"compiled": False, "shapes": len(self.shapes_seen)}
        if not self.compiled:
            return {"compiled": False}
        name = getattr(self.backend, "__name__", str(self.backend))  # a callable: its name
        return {"compiled": True, "backend": name, "shapes": len(self.shapes_seen)}

    def _compile(self, fn: Callable[..., tuple[torch.Tensor, ...]]) -> Callable[..., Any]:
        graphs = torch.cuda.is_available() and self.backend == "inductor"
        mode = "reduce-overhead" if graphs else None
        step = torch.compile(fn, backend=self.backend, mode=mode, fullgraph=FULLGRAPH)

        def run(model: object, *args: object) -> tuple[torch.Tensor, ...]:
            training = getattr(model, "training", False)  # a module's, or a member's view
            self.shapes_seen.add((fn.__name__, training, *shapes_of(args)))
            on_gpu = graphs and _device(args).type == "cuda"
            if on_gpu:
                # A CUDA graph's outputs live in memory its next replay overwrites: each
                # step starts a new replay, and what the loop keeps is copied out.
                torch.compiler.cudagraph_mark_step_begin()
            # The attention backends are global switches, read here: a read inside the
            # compiled step would break its graph.
            with sdpa_kernel(attention_backends()):
                out = step(model, *args)
            return tuple(t.clone() for t in out) if on_gpu else out

        return run


def shapes_of(args: Iterable[Any]) -> list[Any]:
    """The shapes of every tensor in `args` (nested dicts, tuples), in order."""
    found: list[Any] = []
    for arg in args:
        if isinstance(arg, torch.Tensor):
            found.append(tuple(arg.shape))
        elif isinstance(arg, Mapping):
            found += shapes_of(arg[k] for k in sorted(arg))
        elif isinstance(arg, (tuple, list)):
            found += shapes_of(arg)
        elif arg is None:
            found.append(None)
    return found


def _device(args: Iterable[Any]) -> torch.device:
    for arg in args:
        if isinstance(arg, torch.Tensor):
            return arg.device
        if isinstance(arg, Mapping) and arg:
            return _device(arg.values())
    return torch.device("cpu")


#: What a step reads of a stacked batch: its tensors [K, ...], dicts of them, None (absent).
StepArg = torch.Tensor | Mapping[str, torch.Tensor] | None


def batch_tensors(batch: Batch) -> tuple[StepArg, ...]:
    """What a member's forward and loss read of a stacked batch, every tensor [K, ...]
    (None: absent), in `member_batch`'s order."""
    return (
        batch.x,
        batch.mask,
        batch.labels,
        batch.utt_mask,
        batch.targets,
        batch.target_mean,
        batch.target_std,
        batch.soft,
        batch.gold,
    )


def member_batch(
    x: dict[str, torch.Tensor],
    mask: dict[str, torch.Tensor],
    labels: torch.Tensor,
    utt_mask: torch.Tensor | None,
    values: torch.Tensor | None,
    mean: torch.Tensor | None,
    std: torch.Tensor | None,
    soft: torch.Tensor | None,
    gold: dict[str, torch.Tensor],
    weights: torch.Tensor | None = None,
) -> Batch:
    """One member's `Batch` of `batch_tensors`' values, in its fields' order (the index: the
    labels, which a step never reads as rows)."""
    return Batch(x, mask, labels, labels, utt_mask, weights, values, mean, std, soft, gold)


def training_loss(
    model: SerModel, *tensors: StepArg
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One member (`model`: its model, or its view of an ensemble's stacked state,
    `ser.train.engine.ensemble`): (its mean loss, weighted by its class weights [C] if
    any (`tensors`' last, after `batch_tensors`' values), what it trains on, its labelled
    items). Validation and test losses are never weighted."""
    batch = member_batch(*tensors)  # type: ignore[arg-type]  # `batch_tensors`' order
    loss = model.loss(model(batch), batch)
    n = (batch.labels != -100).sum()
    return loss, loss * n if model.summed_loss else loss, n


def evaluation(model: SerModel, *tensors: StepArg) -> tuple[torch.Tensor, ...]:
    """One member: (its loss summed over labelled items, its predicted classes (a run
    without the category: class 0), then each head's predictions (`Head.reported`: the
    category's a float32 softmax, as `ser predict`'s; the attributes' on the corpus's
    scale), then each head's gold."""
    batch = member_batch(*tensors)  # type: ignore[arg-type]  # `batch_tensors`' order
    out = model(batch)
    summed = model.loss(out, batch) * (batch.labels != -100).sum()
    heads, parts = model.targets.heads, model.split(out.logits)
    reported = [h.reported(p, batch) for h, p in zip(heads, parts, strict=True)]
    gold = [h.batch_gold(batch) for h in heads]
    return summed, model.targets.decide(parts, batch.labels), *reported, *gold
