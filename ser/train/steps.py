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
graph holds one shape, so compiled runs pad their batches to few (`StepShapes`): every
batch to the full batch size (missing rows are padding, labels -100: no loss, no score)
and every sequence to its length's bucket (`bucket`), a sequence view whose longest
utterance is short to that length alone. An epoch then meets a dozen shapes, each
recorded once.

Compiled steps run members one at a time: under `vmap` dynamo skips the frame
(pytorch#128711) or fails on dynamic shapes (pytorch#132381). Dropout and RMM draw from
inductor's own generator there, so a compiled run is the eager run with other random
numbers; without randomness their losses agree to float rounding (tested on the CPU).
Graphed steps (`--step graphed`) capture the whole training step, forward, backward and
the optimiser's update, as one CUDA graph per padded shape with `torch.cuda.graph`: no
inductor, a fraction of a second a shape. The first batch of each shape runs eagerly
(it allocates the optimiser's state and warms the kernels up), the next is captured and
every later one replays: its tensors are copied into the graph's own, one launch runs
the step. Adam keeps its step count on the device (`capturable`); RMM's probability and
dropout draw on the device inside the graph. On the CPU the same path runs each step
eagerly on the same copied tensors (what the tests check). Graphed steps run members one
at a time, or stacked under `vmap`.

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

from ser.runtime.attention import attention_backends
from ser.train.ensemble import Ensemble, Solo

# torch.compile's backend for compiled steps (the tests' "eager" traces the same
# without generating code), and whether a break in a step's graph is an error (the
# tests': a break splits the step, and CUDA graphs with it, without a word).
BACKEND = "inductor"
FULLGRAPH = False
# Sequence views up to this many rows are padded to their longest utterance's bucket:
# text (MPNet, BERT tokens: IEMOCAP's longest ~120) costs little padded, and adds no shape.
SHORT_ROWS = 256
# Utterances a compiled step scores at once on validation and test sides: scoring has no
# optimiser step to keep in the paper's batch size, and a larger batch replays fewer graphs.
EVAL_ROWS = 64
StepOut = tuple[torch.Tensor, torch.Tensor]  # each member's mean loss [K], labelled items [K]
# Buckets an octave of a long view's lengths: at most 19 % padding (1 / (PER_OCTAVE + 1)
# of a bucket's rows), 4 shapes an octave of lengths.
PER_OCTAVE = 4


def bucket(n: int, per_octave: int = PER_OCTAVE) -> int:
    """The smallest length >= n on a grid of `per_octave` steps between powers of two
    (lengths below 2 x per_octave on a grid of 1).

    >>> [bucket(n) for n in (1, 7, 8, 9, 100, 129, 1700)]
    [1, 7, 8, 10, 112, 160, 1792]
    """
    step = max(1, (1 << (max(n, 1).bit_length() - 1)) // per_octave)
    return -(-n // step) * step


@dataclass(frozen=True)
class StepShapes:
    """What a compiled run pads its batches to: `rows` per batch (its member's batch
    size) and, per sequence view, its longest utterance's length (`longest`) where that
    is short, else each batch's bucket."""

    rows: int
    longest: Mapping[str, int] = field(default_factory=dict)

    def length(self, name: str, n: int) -> int:
        """The padded length of view `name` for a batch whose longest sequence is n."""
        longest = self.longest.get(name, 0)
        if 0 < longest <= SHORT_ROWS:
            return bucket(longest)
        return bucket(n)


@dataclass
class Steps:
    """The step functions the loop calls for each member (`ser.train.loop`'s
    `_training_loss` and `_evaluation`), as `compiled` says; `backend`: torch.compile's
    (tests use "eager": the same tracing, no code generation)."""

    compiled: bool = False
    graphed: bool = False
    backend: str | Callable[..., Any] = field(default_factory=lambda: BACKEND)
    shapes_seen: set[tuple[Any, ...]] = field(default_factory=set)
    _wrapped: dict[Callable[..., Any], Callable[..., Any]] = field(default_factory=dict)
    _modules: dict[tuple[Any, ...], nn.Module] = field(default_factory=dict)

    def ensemble(self, modules: Sequence[nn.Module]) -> Ensemble:
        """What trains `modules`: an `Ensemble` of several; one member alone in place in
        its module (`Solo`: its own parameters, no stacked copy to cut a slot of in every
        step); for compiled steps a `Solo` around one module kept for every member of that
        architecture, the member's weights loaded into it. A compiled step holds on to the
        module it traced: another object, even of the same structure, would compile it
        again (a minute for each LOSO member on an H100), and its parameters are static in
        the CUDA graphs."""
        if not self.compiled:
            return Solo(modules[0]) if len(modules) == 1 else Ensemble(modules)
        if len(modules) != 1:
            raise ValueError(f"compiled steps train one member at a time, got {len(modules)}")
        module = modules[0]
        shapes = tuple((n, tuple(t.shape), t.dtype) for n, t in module.state_dict().items())
        key = (type(module).__qualname__, repr(getattr(module, "config", None)), shapes)
        if key not in self._modules:
            self._modules[key] = copy.deepcopy(module)
        kept = self._modules[key]
        kept.load_state_dict(module.state_dict())
        return Solo(kept)

    def __call__(self, fn: Callable[..., tuple[torch.Tensor, ...]]) -> Callable[..., Any]:
        """`fn`, compiled once per function when `compiled`."""
        if not self.compiled:
            return fn
        if fn not in self._wrapped:
            self._wrapped[fn] = self._compile(fn)
        return self._wrapped[fn]

    @property
    def static(self) -> bool:
        """Whether batches are padded to few shapes (`StepShapes`)."""
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

    def whole(
        self, run: Callable[[tuple[Any, ...]], StepOut], device: torch.device
    ) -> GraphedTraining:
        """The graphed training step of `run` (`GraphedTraining`), its shapes counted here."""
        return GraphedTraining(run, device, self.shapes_seen)

    def _compile(self, fn: Callable[..., tuple[torch.Tensor, ...]]) -> Callable[..., Any]:
        graphs = torch.cuda.is_available() and self.backend == "inductor"
        mode = "reduce-overhead" if graphs else None
        step = torch.compile(fn, backend=self.backend, mode=mode, fullgraph=FULLGRAPH)

        def run(model: object, *args: object) -> tuple[torch.Tensor, ...]:
            training = getattr(model, "training", False)  # a module's, or a member's view
            self.shapes_seen.add((fn.__name__, training, *_shapes(args)))
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


def _shapes(args: Iterable[Any]) -> list[Any]:
    """The shapes of every tensor in `args` (nested dicts, tuples), in order."""
    found: list[Any] = []
    for arg in args:
        if isinstance(arg, torch.Tensor):
            found.append(tuple(arg.shape))
        elif isinstance(arg, Mapping):
            found += _shapes(arg[k] for k in sorted(arg))
        elif isinstance(arg, (tuple, list)):
            found += _shapes(arg)
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


class GraphedTraining:
    """An ensemble's whole training step (forward, backward, the optimiser's update) as one
    CUDA graph per batch shape and model variant (the module doc). `run(tensors)` is the
    eager step, `tensors` the batch's (nested dicts, None for absent inputs); every call
    ends with the gradients unset."""

    def __init__(
        self,
        run: Callable[[tuple[Any, ...]], StepOut],
        device: torch.device,
        shapes_seen: set[tuple[Any, ...]] | None = None,
    ) -> None:
        self.run, self.device = run, device
        self.shapes_seen = set() if shapes_seen is None else shapes_seen
        self.warm: set[tuple[Any, ...]] = set()
        self.graphs: dict[tuple[Any, ...], _Captured] = {}
        self.captures = 0
        self.pool: Any = None  # the first graph's memory pool, shared by the others

    def __call__(self, tensors: tuple[Any, ...], variant: object = None) -> StepOut:
        key = (variant, *_shapes(tensors))
        self.shapes_seen.add(("whole", *key))
        if self.device.type != "cuda":
            return self._replay_on_cpu(key, tensors)
        if key not in self.warm:
            self.warm.add(key)
            return self._warm_up(tensors)
        captured = self.graphs.get(key)
        if captured is None:
            captured = self.graphs[key] = self._capture(tensors)
        else:
            _copy(captured.inputs, tensors)
        captured.graph.replay()
        return captured.out

    def _replay_on_cpu(self, key: tuple[Any, ...], tensors: tuple[Any, ...]) -> StepOut:
        """The CUDA path's bookkeeping without a graph: the step on its own copied inputs."""
        captured = self.graphs.get(key)
        if captured is None:
            captured = self.graphs[key] = _Captured(None, _clone(tensors), None)
        else:
            _copy(captured.inputs, tensors)
        return self.run(captured.inputs)

    def _warm_up(self, tensors: tuple[Any, ...]) -> StepOut:
        """An eager step on a side stream, as `torch.cuda.graph`'s documentation asks
        before a capture: it allocates the optimiser's state outside any graph."""
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            out = self.run(tensors)
        torch.cuda.current_stream(self.device).wait_stream(side)
        return out

    def _capture(self, tensors: tuple[Any, ...]) -> _Captured:
        """The step recorded on copies of `tensors` (nothing runs while it records: the
        caller replays it for this batch)."""
        inputs = _clone(tensors)
        graph = torch.cuda.CUDAGraph()
        # Every graph draws on the first one's memory pool. What outlives a replay (the
        # copied inputs, the outputs) is held here, so its memory is never handed out
        # again; the rest (activations, gradients) lives only inside one replay, and
        # replays never overlap. Each graph on its own pool held every shape's activations
        # at once: 100 GiB for five stacked paper-size members on an H200, out of memory.
        with torch.cuda.graph(graph, pool=self.pool):
            out = self.run(inputs)
        self.pool = graph.pool() if self.pool is None else self.pool
        self.captures += 1
        return _Captured(graph, inputs, out)


@dataclass
class _Captured:
    graph: Any  # torch.cuda.CUDAGraph; None on the CPU
    inputs: tuple[Any, ...]
    out: Any


def _clone(tree: Any) -> Any:
    if isinstance(tree, torch.Tensor):
        return tree.clone()
    if isinstance(tree, Mapping):
        return {k: _clone(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(_clone(v) for v in tree)
    return tree


def _copy(into: Any, tree: Any) -> None:
    """Every tensor of `tree` copied into its place in `into` (the same structure)."""
    if isinstance(into, torch.Tensor):
        into.copy_(tree)
    elif isinstance(into, Mapping):
        for k, v in into.items():
            _copy(v, tree[k])
    elif isinstance(into, (tuple, list)):
        for a, b in zip(into, tree, strict=True):
            _copy(a, b)
