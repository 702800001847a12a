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
>>> alone = Noise([torch.Generator().manual_seed(3)], {"batch": [2], "t": [4]})
>>> pair = Noise([torch.Generator().manual_seed(9), torch.Generator().manual_seed(3)],
...              {"batch": [3, 2], "t": [6, 4]})
>>> a = alone.dropout(torch.ones(1, 2, 4, 5), [0.5], ("batch", "t", None))
>>> b = pair.dropout(torch.ones(2, 3, 6, 5), [0.1, 0.5], ("batch", "t", None))
>>> torch.equal(a[0], b[1, :2, :4])
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

Axes = tuple[str | None, ...]


@dataclass
class Noise:
    """The random streams of one training step: one generator per member, and each
    member's own extent of every named axis of the step's batch."""

    generators: Sequence[torch.Generator]
    sizes: Mapping[str, Sequence[int]]

    def box(self, k: int, shape: Sequence[int], axes: Axes) -> tuple[int, ...]:
        """Member k's own shape of a tensor whose per-member shape is `shape`."""
        if len(axes) > len(shape):
            raise ValueError(f"{len(axes)} axes named for a tensor of shape {tuple(shape)}")
        out = []
        for i, size in enumerate(shape):
            axis = axes[i] if i < len(axes) else None
            if axis is None:
                out.append(size)
            elif axis == "batch":
                out.append(min(size, self.sizes["batch"][k]))
            else:  # a padded length: at least 1 (an empty sequence is padded to one step)
                out.append(min(size, max(1, self.sizes[axis][k])))
        return tuple(out)

    def uniform(self, k: int, shape: Sequence[int], device: torch.device) -> torch.Tensor:
        """U[0, 1) of `shape` from member k's stream."""
        generator = self.generators[k]
        return torch.rand(tuple(shape), generator=generator, device=generator.device).to(device)

    def dropout(self, x: torch.Tensor, p: Sequence[float], axes: Axes) -> torch.Tensor:
        """Zero entries of member k's part of `x` [K, ...] with probability p[k], scale
        the rest by 1 / (1 - p[k]). Padding entries (outside a member's own box) are
        kept: they are masked downstream anyway."""
        if all(q == 0.0 for q in p):
            return x
        factors = torch.ones_like(x)  # [K, ...]
        for k, q in enumerate(p):
            if q == 0.0:
                continue
            box = self.box(k, x.shape[1:], axes)
            if 0 in box:
                continue
            keep = self.uniform(k, box, x.device) >= q
            region = (k, *(slice(0, n) for n in box))
            factors[region] = keep.to(x.dtype) / (1.0 - q)
        return x * factors


@dataclass
class Dropper:
    """Dropout as a model's layers apply it: each member's own p, from this step's
    `Noise`; `noise=None` (evaluation) keeps everything."""

    noise: Noise | None
    p: Sequence[float]

    def __call__(self, x: torch.Tensor, axes: Axes) -> torch.Tensor:
        return x if self.noise is None else self.noise.dropout(x, self.p, axes)
