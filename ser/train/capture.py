"""Training and validation steps replayed from CUDA graphs: one graph per step signature.

On a GPU a stacked step is host-bound (MSMSER's: Python and ~650 kernel launches take
longer to issue than the GPU takes to run them; benchmarks/README.md). A CUDA graph
issues a whole step (forward, loss, backward, `MemberAdam`'s update; a validation
step's forward) at once. A step can be replayed when everything it reads lives at fixed
addresses and every decision its Python makes follows from what the graph was captured
for:

- the batch, each member's extents and the step's random lanes (drawn ahead of the step
  from the members' streams, `ser.train.nn.ahead`) are copied into fixed buffers
  (`Inputs`); the RMM probability is a model buffer changed in place each epoch, and
  tables the model keeps (sinusoidal positions) are never freed;
- a step's signature holds the rest: the batch's shapes (few, with static shapes:
  `ser.train.stack.StackedSides(static=True)`), which members step, the draw sites
  (who draws, at which shapes) and the model's mode and `step_signature()`.

`Replays` runs a signature's first step eagerly (on a side stream: it warms up what a
capture needs), captures the second and replays it, and every later one. A training
step without draws made ahead (a run's first, or one off its plan) runs eagerly. All
graphs share one memory pool: they run one after another, and a step's outputs are read
(or copied) before the next one runs.

On the CPU there are no graphs: from its second step on, a signature runs eagerly from
the same fixed buffers, so the tests check on any machine that replays read nothing but
them (tests/train/test_capture.py).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ser.runtime.precision import autocast
from ser.train.batch import Batch
from ser.train.nn.ahead import Ahead
from ser.train.nn.noise import Noise
from ser.train.optim import MemberAdam

Signature = tuple[Hashable, ...]


def training_step(
    model: nn.Module,
    batch: Batch,
    present: Sequence[bool],
    optimizer: MemberAdam,
    precision: str = "fp32",
    cache: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward, loss, backward and update of the members `present` (gradients None on
    entry); returns each member's loss [K] (detached) and labelled utterances [K]."""
    device = batch.labels.device
    with autocast(device, precision, cache):
        losses = model.loss(model(batch), batch)  # type: ignore[operator]  # [K]
    n = (batch.labels != -100).flatten(1).sum(dim=1)  # [K]
    # A model that trains on the sum over utterances (the fusion study's eq. 3) still
    # reports the mean; Adam then weighs its L2 decay against the summed data term.
    weight = n if getattr(model, "summed_loss", False) else 1
    (losses * weight * optimizer.scale).sum().backward()
    optimizer.step(present)
    return losses.detach(), n


def evaluation_step(
    model: nn.Module, batch: Batch, precision: str = "fp32", cache: bool = True
) -> tuple[torch.Tensor, ...]:
    """The model's outputs on `batch` (no gradients): each member's loss summed over its
    labelled utterances [K], and its labels, predicted classes and manifest rows
    [K, N] (N: the batch's utterances, padding -100 / -1)."""
    device = batch.labels.device
    with autocast(device, precision, cache):
        out = model(batch)
        losses = model.loss(out, batch)  # type: ignore[operator]  # [K]
    labelled = batch.labels != -100  # [K, B] or [K, B, U]
    total = losses.float() * labelled.flatten(1).sum(dim=1)  # [K]
    preds = out.logits.argmax(dim=-1).flatten(1)
    # Copies: a replayed step's batch is a fixed buffer the next step overwrites.
    return total, batch.labels.flatten(1).clone(), preds, batch.index.flatten(1).clone()


class Inputs:
    """The fixed buffers replayed steps read: one flat buffer per name, each step's
    tensor copied to its front. A buffer outgrown is replaced, which moves it: `grew`
    tells the caller that graphs reading the old one are void."""

    def __init__(self) -> None:
        self.flat: dict[str, torch.Tensor] = {}
        self.grew = False

    def put(self, name: str, t: torch.Tensor) -> torch.Tensor:
        """`t` copied into buffer `name`; the copy, a view of the buffer's front."""
        buf = self.flat.get(name)
        if buf is None or buf.numel() < t.numel() or (buf.dtype, buf.device) != (t.dtype, t.device):
            self.grew = self.grew or buf is not None
            buf = self.flat[name] = torch.empty(max(t.numel(), 1), dtype=t.dtype, device=t.device)
        view = buf[: t.numel()].view(t.shape)
        view.copy_(t)
        return view


@dataclass
class _Graph:
    """A captured step and its outputs."""

    graph: torch.cuda.CUDAGraph
    outputs: tuple[torch.Tensor, ...]


Step = Callable[[Batch], tuple[torch.Tensor, ...]]


class Replays:
    """Steps replayed per signature (module docstring): a signature's first step eager
    (on a side stream on CUDA), its second captured, then replayed; one memory pool and
    one set of fixed buffers for all."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.cuda = device, device.type == "cuda"
        self.inputs = Inputs()
        self.seen: set[Signature] = set()
        self.graphs: dict[Signature, _Graph] = {}
        self.pool = torch.cuda.graph_pool_handle() if self.cuda else None
        self.counts = {"eager": 0, "captured": 0, "replayed": 0}
        self.moves = 0  # times the fixed buffers moved (and the graphs were dropped)

    def eager(self, step: Step, batch: Batch, warm: bool = False) -> tuple[torch.Tensor, ...]:
        self.counts["eager"] += 1
        if not (warm and self.cuda):
            return step(batch)
        # A capture's first run of its kernels (cuBLAS workspaces, autograd's streams)
        # happens on a side stream, as torch.cuda.graphs asks.
        side, main = torch.cuda.Stream(self.device), torch.cuda.current_stream(self.device)
        side.wait_stream(main)
        with torch.cuda.stream(side):
            out = step(batch)
        main.wait_stream(side)
        for t in out:
            t.record_stream(main)
        return out

    def replay(self, key: Signature, step: Step, fixed: Batch) -> tuple[torch.Tensor, ...]:
        """`step` of `fixed` (a batch of the fixed buffers), replayed: its outputs are
        valid until the next step (a later graph may write where they are)."""
        if self.inputs.grew:  # buffers moved: every graph read the old ones
            self.graphs.clear()
            self.inputs.grew = False
            self.moves += 1
        self.counts["replayed"] += 1
        if not self.cuda:
            return step(fixed)
        if key not in self.graphs:
            graph = torch.cuda.CUDAGraph()
            # thread_local: CUDA work of other threads in this process (a dask worker
            # with several threads training on one GPU) neither fails nor spoils this
            # capture, as the default "global" mode would make it.
            with torch.cuda.graph(graph, pool=self.pool, capture_error_mode="thread_local"):
                outputs = step(fixed)
            self.graphs[key] = _Graph(graph, outputs)
            self.counts["captured"] += 1
        self.graphs[key].graph.replay()
        return self.graphs[key].outputs

    def batch(self, batch: Batch) -> Batch:
        """`batch`'s tensors copied into the fixed buffers (sizes kept)."""
        put = self.inputs.put
        return Batch(
            x={name: put(f"x/{name}", t) for name, t in batch.x.items()},
            mask={name: put(f"mask/{name}", t) for name, t in batch.mask.items()},
            labels=put("labels", batch.labels),
            index=put("index", batch.index),
            utt_mask=None if batch.utt_mask is None else put("utt_mask", batch.utt_mask),
            sizes=batch.sizes,
        )


class StepGraphs:
    """Training and validation steps of one stacked model, replayed per signature
    (module docstring)."""

    def __init__(self, model: nn.Module, optimizer: MemberAdam, precision: str) -> None:
        if optimizer.scaled:
            raise ValueError("steps with fp16 loss scaling cannot be replayed: use bf16 or fp32")
        self.model, self.optimizer, self.precision = model, optimizer, precision
        self.replays = Replays(optimizer.flat.device)
        self.unplanned: set[Signature] = set()  # signatures whose steps leave their plan

    @property
    def counts(self) -> dict[str, int]:
        return self.replays.counts

    def step(self, batch: Batch, present: Sequence[bool]) -> tuple[torch.Tensor, torch.Tensor]:
        """One training step (`training_step`), replayed where it can be; its outputs are
        valid until the next step."""
        replays = self.replays
        ahead = batch.noise.made_ahead if batch.noise is not None else None
        if ahead is None:
            return replays.eager(self._train(present), batch)  # type: ignore[return-value]
        key = ("train", *signature(batch, present, ahead), self._model_signature())
        if key in self.unplanned or key not in replays.seen:
            out = replays.eager(self._train(present), batch, warm=True)
            replays.seen.add(key)
            if not _kept_plan(batch, ahead):  # so would every step of this signature
                self.unplanned.add(key)
            return out  # type: ignore[return-value]
        fixed = self._fixed(batch, ahead)
        ahead.settle()
        self.optimizer.zero_grad()  # a captured backward then writes, not adds, gradients
        return replays.replay(key, self._train(present, capture=True), fixed)  # type: ignore[return-value]

    def evaluate(self, batch: Batch, active: Sequence[bool]) -> tuple[torch.Tensor, ...]:
        """One evaluation step (`evaluation_step`, no gradients), replayed where it can
        be; its outputs are the caller's (copied out of a graph's memory)."""
        replays = self.replays
        step = self._evaluate(capture=False)
        key = ("eval", *signature(batch, active, None), self._model_signature())
        if key not in replays.seen:
            replays.seen.add(key)
            return replays.eager(step, batch, warm=True)
        out = replays.replay(key, self._evaluate(capture=True), replays.batch(batch))
        return tuple(t.clone() for t in out)

    def _model_signature(self) -> Hashable:
        own = getattr(self.model, "step_signature", None)  # a training stage may lack it
        return (self.model.training, own() if own is not None else ())

    def _train(self, present: Sequence[bool], capture: bool = False) -> Step:
        model, optimizer, precision = self.model, self.optimizer, self.precision
        return lambda b: training_step(model, b, present, optimizer, precision, not capture)

    def _evaluate(self, capture: bool) -> Step:
        model, precision = self.model, self.precision
        return lambda b: evaluation_step(model, b, precision, not capture)

    def _fixed(self, batch: Batch, ahead: Ahead) -> Batch:
        """The step's batch, extents and lanes copied into the fixed buffers, with a
        `Noise` serving those lanes."""
        fixed = self.replays.batch(batch)
        noise, put = batch.noise, self.replays.inputs.put
        if noise is None or ahead.placed is None:
            raise RuntimeError("a step is fixed before its draws made ahead are served")
        extents = {axis: put(f"extent/{axis}", t) for axis, t in sorted(noise.extents.items())}
        fixed.extents = extents
        fixed.noise = Noise(noise.streams, noise.sizes, extents, ahead=False, padded=noise.padded)
        fixed.noise.made_ahead = ahead.replica(fixed.noise, put("lanes", ahead.placed))
        return fixed


def _kept_plan(batch: Batch, ahead: Ahead) -> bool:
    """Whether a step served every site of its plan and no other (then a replica of
    its plan serves every step of its signature)."""
    noise = batch.noise
    return noise is not None and noise.made_ahead is ahead and ahead.served == len(ahead.draws)


def signature(batch: Batch, present: Sequence[bool], ahead: Ahead | None) -> Signature:
    """What a captured step is valid for: the batch's shapes and dtypes, the members
    stepping, and the step's draw sites (none: an evaluation step)."""
    tensors = {f"x/{n}": t for n, t in batch.x.items()}
    tensors.update({f"mask/{n}": t for n, t in batch.mask.items()})
    tensors.update(labels=batch.labels, index=batch.index)
    if batch.utt_mask is not None:
        tensors["utt_mask"] = batch.utt_mask
    shapes = tuple((n, tuple(t.shape), t.dtype) for n, t in sorted(tensors.items()))
    return shapes, tuple(present), () if ahead is None else tuple(ahead.draws)


__all__ = ["Inputs", "Replays", "StepGraphs", "evaluation_step", "signature", "training_step"]
