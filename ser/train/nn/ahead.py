"""A training step's random draws made before the step, all placed by one operation.

A step's dropout and modality masks are drawn site by site as the forward reaches them
(`ser.train.nn.noise.Noise.lanes`): three launches a site to place the numbers, and a
stream whose state lives in Python, which `torch.compile` cannot trace and a CUDA graph
cannot replay. The sites of a step repeat from one step to the next (the same layers, the
same members drawing); only the padded lengths change. So `Ahead` takes the previous
step's sites (`Streams.plan`), gives each this step's padded shape, takes every member's
numbers for all of them in the order the forward would, and places them all into one
buffer with one scatter. Each site then gets a view of its part.

The numbers are exactly those of drawing site by site, at the same places: a site that is
not the planned one (a member stopped drawing, a shape not predicted) rewinds the streams
to the step's start, takes again only what the sites served so far took, and the step
draws site by site from there on; so does a step that ends before the plan does
(`Streams.next_step` settles it).

>>> import torch
>>> from ser.train.nn.noise import Noise, Streams
>>> streams = Streams([torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)])
>>> def step(t):
...     streams.next_step()
...     noise = Noise(streams, {"batch": [2, 1], "t": [t, 3]}, ahead=True)
...     return noise.lanes([True, True], (2, t), ("batch", "t"), torch.device("cpu"))
>>> first = step(4)  # site by site; the step's sites become the plan
>>> second = step(5)  # made ahead from the plan
>>> second.shape
torch.Size([2, 2, 5])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # noise.py imports this module
    from ser.train.nn.noise import Axes, Noise, Streams


class Unplanned(RuntimeError):
    """A step served from fixed lanes (`Ahead.replica`) reached a site off its plan."""


@dataclass(frozen=True)
class Draw:
    """One draw site of a step, as `Noise.lanes` is called there: which members draw,
    the per-member shape of the stacked tensor drawn for, and its axes."""

    members: tuple[bool, ...]
    shape: tuple[int, ...]
    axes: Axes


class Ahead:
    """The step's planned draws, made and placed at the step's start (module docstring)."""

    def __init__(self, noise: Noise, plan: Sequence[Draw], device: torch.device) -> None:
        from ser.train.nn.noise import LANES  # noise.py imports this module

        self.noise, self.streams, self.device = noise, noise.streams, device
        self.start: tuple[object, ...] | None = self.streams.snapshot()
        self.draws = [Draw(d.members, self._padded(d), d.axes) for d in plan]
        self.offsets, masks, numbers, total = [], [], [], 0
        flat: dict[Draw, torch.Tensor] = {}  # a step's sites share a few shapes
        for draw in self.draws:
            numbers += self._take(draw)
            if draw not in flat:
                flat[draw] = noise.inside(draw.members, draw.shape, draw.axes, device).reshape(-1)
            masks.append(flat[draw])
            self.offsets.append(total)
            total += flat[draw].numel()
        placed = torch.full((total,), LANES - 1, dtype=torch.int16, device=device)
        if numbers:
            placed.masked_scatter_(torch.cat(masks), torch.cat(numbers))
        self.placed: torch.Tensor | None = placed
        self.served = 0
        self.records = True  # serving a site records it in the streams (`Noise.lanes`)
        self.streams.ahead = self

    def replica(self, noise: Noise, placed: torch.Tensor) -> Ahead:
        """The same planned sites served to `noise` from `placed` (a fixed buffer holding
        these lanes), taking and recording nothing: what a step replayed from a CUDA
        graph reads (`ser.train.capture`). A site off the plan raises `Unplanned` there:
        a replay cannot draw site by site."""
        out = object.__new__(Ahead)
        out.noise, out.streams, out.device = noise, self.streams, self.device
        out.start, out.draws, out.offsets = None, self.draws, self.offsets
        out.placed, out.served, out.records = placed, 0, False
        return out

    def settle(self) -> None:
        """Every planned site served elsewhere (a replayed step): recorded as drawn."""
        for draw in self.draws[self.served :]:
            self.streams.record(draw)
        self.served, self.placed = len(self.draws), None

    def _padded(self, draw: Draw) -> tuple[int, ...]:
        """The draw's shape at this step: a named axis padded to its longest member, or
        to the batch's static size (`Noise.padded`)."""
        axes = (*draw.axes, *[None] * (len(draw.shape) - len(draw.axes)))
        padded = self.noise.padded
        return tuple(
            size if axis is None else padded.get(axis, max(self.noise.own(axis), default=0))
            for size, axis in zip(draw.shape, axes, strict=True)
        )

    def _take(self, draw: Draw) -> list[torch.Tensor]:
        """Each drawing member's numbers for `draw`, as `Noise.lanes` takes them."""
        drawn = self.noise.drawn(draw.members, draw.shape, draw.axes)
        return [self.streams.take(k, math.prod(box)) for k, box in drawn]

    def serve(self, draw: Draw) -> torch.Tensor | None:
        """The placed lanes [K, *shape] of the next site if it is `draw`, else None."""
        placed = self.placed  # None once every planned draw is served
        if placed is None or self.draws[self.served] != draw:
            return None
        start = self.offsets[self.served]
        lanes = placed[start : start + len(draw.members) * math.prod(draw.shape)]
        self.served += 1
        if self.served == len(self.draws):
            self.placed = None  # its sites hold their views: the rest is freed with them
        return lanes.view(len(draw.members), *draw.shape)

    def rewind(self) -> None:
        """Back to drawing site by site: the streams as if only the served sites had drawn."""
        if self.start is None:
            raise Unplanned(f"draw site {self.served + 1} of {len(self.draws)} is off the plan")
        streams: Streams = self.streams
        streams.restore(self.start)
        for draw in self.draws[: self.served]:
            self._take(draw)
            streams.record(draw)
        streams.ahead = None
