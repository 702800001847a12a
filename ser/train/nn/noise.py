"""Per-member random streams, and dropout that reproduces a member trained alone.

Each member owns a `torch.Generator` (`Noise.generators`). A random draw for member k is
made from its generator at the shape that member's own batch has: its own number of
samples and its own padded lengths (`Noise.sizes`), not the stacked batch's, which is
padded to the longest member. So member k draws exactly the numbers, in exactly the
order, that it draws when trained alone (K = 1): a stacked run and K separate runs give
the same dropout masks and modality masks, whatever the other members hold.

Axes are named: "batch" (samples, or dialogs), an input's name (its padded length) and
"utt" (utterances per dialog); `None` is an axis of fixed size (features, heads, queries).

>>> import torch
>>> alone = Noise(Streams([torch.Generator().manual_seed(3)]), {"batch": [2], "t": [4]})
>>> two = Streams([torch.Generator().manual_seed(9), torch.Generator().manual_seed(3)])
>>> pair = Noise(two, {"batch": [3, 2], "t": [6, 4]})
>>> a = alone.dropout(torch.ones(1, 2, 4, 5), [0.5], ("batch", "t", None))
>>> b = pair.dropout(torch.ones(2, 3, 6, 5), [0.1, 0.5], ("batch", "t", None))
>>> torch.equal(a[0], b[1, :2, :4])
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from ser.train.nn.ahead import Ahead, Draw

Axes = tuple[str | None, ...]


#: Random numbers a member's stream draws at least at once.
CHUNK = 1 << 16
#: Dropout and modality masks compare 15-bit integers: p is rounded to a multiple of 2^-15
#: (0.1 -> 0.100006), and kept entries are scaled by 1 / (1 - that p), which keeps the
#: expectation exact. Four come from each 64-bit draw, a quarter of the generator's work.
LANES = 1 << 15


class Streams:
    """Each member's random stream: its generator, and a pool of 15-bit integers drawn
    from it (the four 16-bit lanes of each 64-bit draw, low 15 bits each: the generator
    leaves an int64's top bit at 0).

    A refill draws what the member used in its last step (at least `CHUNK`, at least
    what is asked), so a step costs about one draw per member. When and how much a
    member draws depends on its own history only: its numbers are the same whether it
    trains alone or stacked.
    """

    def __init__(self, generators: Sequence[torch.Generator]) -> None:
        self.generators = list(generators)
        self._pools: list[tuple[torch.Tensor | None, int]] = [(None, 0)] * len(generators)
        self._used = [0] * len(generators)  # in the current step
        self._last = [0] * len(generators)  # in the previous step
        self._thresholds: dict[tuple[object, ...], tuple[torch.Tensor, torch.Tensor]] = {}
        self._constants: dict[tuple[object, ...], torch.Tensor] = {}
        self.plan: list[Draw] = []  # the previous step's draw sites, in order
        self._made: list[Draw] = []  # this step's
        self.ahead: Ahead | None = None  # this step's draws made ahead, if any

    def thresholds(
        self, cuts: tuple[int, ...], dims: int, device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per member, the 15-bit cut and the keep scale (in `dtype`, that of the tensor
        dropped: no conversion per dropout), shaped [K, 1, ...] (made once: a copy to the
        device per dropout would wait for the device)."""
        key = (cuts, dims, device, dtype)
        if key not in self._thresholds:
            view = (len(cuts), *[1] * dims)
            cut = torch.tensor(cuts, dtype=torch.int16).view(view).to(device)
            scale = torch.tensor([LANES / (LANES - c) for c in cuts]).view(view)
            self._thresholds[key] = (cut, scale.to(device, dtype))
        return self._thresholds[key]

    def constant(
        self, values: tuple[float, ...] | range, dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        """`values` as a device tensor, made once (a copy to the device per step would
        wait for the device)."""
        key = (values, dtype, device)
        if key not in self._constants:
            if isinstance(values, range):  # made on the device: no copy at all
                made = torch.arange(values.start, values.stop, dtype=dtype, device=device)
            else:
                made = torch.tensor(list(values), dtype=dtype).to(device)
            self._constants[key] = made
        return self._constants[key]

    def next_step(self) -> None:
        """Start a step: settle the last one (a step that drew less than its draws made
        ahead rewinds them), which becomes the next plan."""
        if self.ahead is not None and self.ahead.served < len(self.ahead.draws):
            self.ahead.rewind()
        self.ahead = None
        self.plan, self._made = self._made, []
        self._last, self._used = self._used, [0] * len(self.generators)

    def record(self, draw: Draw) -> None:
        """A site of this step drew (`Noise.lanes`)."""
        self._made.append(draw)

    def snapshot(self) -> tuple[object, ...]:
        """Everything a draw changes, to `restore` (`ser.train.nn.ahead` rewinds so)."""
        generators = [g.get_state() for g in self.generators]
        return list(self._pools), list(self._used), list(self._last), list(self._made), generators

    def restore(self, state: tuple[object, ...]) -> None:
        pools, used, last, made, generators = state
        self._pools, self._used = list(pools), list(used)  # type: ignore[call-overload]
        self._last, self._made = list(last), list(made)  # type: ignore[call-overload]
        for generator, value in zip(self.generators, generators, strict=True):  # type: ignore[call-overload]
            generator.set_state(value)

    def take(self, k: int, n: int) -> torch.Tensor:
        """The next `n` integers of member k's stream, [n] int16 in [0, 2^15)."""
        pool, used = self._pools[k]
        if pool is None or used + n > pool.numel():
            generator = self.generators[k]
            size = -(-max(n, CHUNK, self._last[k]) // 4)
            draws = torch.empty(size, dtype=torch.int64, device=generator.device)
            pool = draws.random_(generator=generator).view(torch.int16) & (LANES - 1)
            used = 0
        self._pools[k] = (pool, used + n)
        self._used[k] += n
        return pool[used : used + n]


def own_extents(axis: str, sizes: Sequence[int]) -> list[int]:
    """Each member's own extent of a named axis from its size there: the number of samples
    on "batch", else at least 1 (an empty sequence is padded to one position)."""
    return list(sizes) if axis == "batch" else [max(1, n) for n in sizes]


@dataclass
class Noise:
    """The random streams of one training step, and each member's own extent of every
    named axis of the step's batch.

    Every draw is made at the member's own shape and copied into its box of the
    stacked tensor.
    """

    streams: Streams
    sizes: Mapping[str, Sequence[int]]
    # The same extents on the training device, {axis: [K] int64}, copied there with the
    # epoch's positions (`ser.train.stack.StackedSides`); made from `sizes` when absent.
    extents: dict[str, torch.Tensor] = field(default_factory=dict)
    # Place all members' draws with one operation (`lanes`); None: off the CPU only.
    one_launch: bool | None = None
    # Make the step's draws before it from the last step's sites, placed by one operation
    # (`ser.train.nn.ahead`; the same numbers); None: off the CPU only.
    ahead: bool | None = None
    # The stacked batch's padded size of a named axis where it is more than the longest
    # member's (static shapes, `ser.train.stack.StackedSides`): draws made ahead take it.
    padded: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._boxes: dict[tuple[object, ...], torch.Tensor] = {}
        self._own: dict[str, list[int]] = {}  # `own`, per axis (every site asks per member)
        device = next(iter(self.extents.values())).device if self.extents else torch.device("cpu")
        use = device.type != "cpu" if self.ahead is None else self.ahead
        plan = self.streams.plan
        named = {axis for draw in plan for axis in draw.axes if axis is not None}
        # A plan whose axes this step does not size cannot be given shapes: site by site.
        use = use and bool(plan) and named <= set(self.sizes)
        self._ahead = Ahead(self, plan, device) if use else None

    @property
    def made_ahead(self) -> Ahead | None:
        """This step's draws made ahead (None: drawn site by site)."""
        return self._ahead

    @made_ahead.setter
    def made_ahead(self, ahead: Ahead | None) -> None:
        self._ahead = ahead

    @property
    def generators(self) -> list[torch.Generator]:
        return self.streams.generators

    def box(self, k: int, shape: Sequence[int], axes: Axes) -> tuple[int, ...]:
        """Member k's own shape of a tensor whose per-member shape is `shape`."""
        if len(axes) > len(shape):
            raise ValueError(f"{len(axes)} axes named for a tensor of shape {tuple(shape)}")
        return tuple(self._extent(k, size, axes[i] if i < len(axes) else None)
                     for i, size in enumerate(shape))  # fmt: skip

    def _extent(self, k: int, size: int, axis: str | None) -> int:
        return size if axis is None else min(size, self.own(axis)[k])

    def own(self, axis: str) -> list[int]:
        """Each member's own extent of a named axis this step (`own_extents`)."""
        if axis not in self._own:
            self._own[axis] = own_extents(axis, self.sizes[axis])
        return self._own[axis]

    def drawn(
        self, members: Sequence[bool], shape: tuple[int, ...], axes: Axes
    ) -> list[tuple[int, tuple[int, ...]]]:
        """(member, its own box) of each member in `members` whose box is not empty: who
        takes numbers at a site, in the order they take them."""
        boxes = ((k, self.box(k, shape, axes)) for k, m in enumerate(members) if m)
        return [(k, box) for k, box in boxes if 0 not in box]

    def lanes(
        self, members: Sequence[bool], shape: tuple[int, ...], axes: Axes, device: torch.device
    ) -> torch.Tensor:
        """[K, *shape] int16: each member in `members` gets the next numbers of its stream
        in its own box (`box`), in the box's row-major order; everything else is
        LANES - 1. On an accelerator (or with `one_launch`) all members' numbers are
        placed by one operation, so the launches do not grow with K; on the CPU, where a
        copy per member is cheaper than that (serial) scatter, one copy per member. The
        same numbers at the same places either way."""
        draw = Draw(tuple(members), tuple(shape), tuple(axes))
        if self._ahead is not None:
            served = self._ahead.serve(draw) if device == self._ahead.device else None
            if served is not None:
                if self._ahead.records:
                    self.streams.record(draw)
                return served
            self._ahead.rewind()  # not the planned site: site by site from here
            self._ahead = None
        self.streams.record(draw)
        k_all = len(members)
        out = torch.full((k_all, *shape), LANES - 1, dtype=torch.int16, device=device)
        drawn = self.drawn(members, shape, axes)
        one_launch = device.type != "cpu" if self.one_launch is None else self.one_launch
        if len(drawn) == 1 or not one_launch:
            for k, box in drawn:  # each member's own box directly
                region = (k, *(slice(0, n) for n in box))
                out[region] = self.streams.take(k, math.prod(box)).view(box)  # type: ignore[index]
        elif drawn:
            numbers = torch.cat([self.streams.take(k, math.prod(box)) for k, box in drawn])
            out.masked_scatter_(self.inside(tuple(members), shape, axes, device), numbers)
        return out

    def inside(
        self, members: tuple[bool, ...], shape: tuple[int, ...], axes: Axes, device: torch.device
    ) -> torch.Tensor:
        """[K, *shape] bool: True in the boxes of `members` (kept for the step: layers of
        one model share a few shapes)."""
        key = (members, shape, axes, device)
        if key not in self._boxes:
            k_all, dims = len(members), len(shape)
            chosen = self.streams.constant(tuple(float(m) for m in members), torch.bool, device)
            mask = chosen.view(k_all, *[1] * dims)
            for i, size in enumerate(shape):
                axis = axes[i] if i < len(axes) else None
                if axis is None:
                    continue
                at = [1] * dims
                at[i] = size
                steps = self.streams.constant(range(size), torch.int64, device).view(at)
                mask = mask & (steps < self.extent(axis, device).view(k_all, *[1] * dims))
            self._boxes[key] = mask.expand(k_all, *shape)
        return self._boxes[key]

    def extent(self, axis: str, device: torch.device) -> torch.Tensor:
        """[K] int64 on `device`: each member's own extent of a named axis (an empty
        sequence counts 1: it is padded to one position)."""
        if axis not in self.extents:
            self.extents[axis] = torch.tensor(self.own(axis), dtype=torch.int64).to(device)
        return self.extents[axis]

    def dropout(self, x: torch.Tensor, p: Sequence[float], axes: Axes) -> torch.Tensor:
        """Zero entries of member k's part of `x` [K, ...] with probability p[k] (rounded,
        see `LANES`), scale the rest by 1 / (1 - p[k]). Padding entries (outside a
        member's own box) are kept: they are masked downstream anyway. No step here waits
        for the device."""
        cuts = tuple(round(q * LANES) for q in p)
        if not any(cuts):
            return x
        shape = tuple(x.shape[1:])
        lanes = self.lanes([c > 0 for c in cuts], shape, axes, x.device)
        cut, scale = self.streams.thresholds(cuts, len(shape), x.device, x.dtype)
        return x * torch.where(lanes >= cut, scale, 0.0)


@dataclass
class Dropper:
    """Dropout as a model's layers apply it: each member's own p, from this step's
    `Noise`; `noise=None` (evaluation) keeps everything."""

    noise: Noise | None
    p: Sequence[float]

    def __call__(self, x: torch.Tensor, axes: Axes) -> torch.Tensor:
        return x if self.noise is None else self.noise.dropout(x, self.p, axes)
