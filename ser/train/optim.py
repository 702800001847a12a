"""Adam over the stacked parameters of K members, in public tensor operations.

`MemberAdam` is K independent `torch.optim.Adam`s (L2 weight decay added to the
gradient), one per member, without `torch.optim`: its optimizers wrap every method in
a guard that imports the compiler stack on first use (1.4 s on the 2-core development
machine, a tenth of the fusion study's whole 150-epoch run), and they keep one step count
per tensor, not per member.

The parameters become views of one buffer [K, P] (`flatten`): member k's weights are row
k, contiguous. A step gathers the gradients into a buffer of the same layout (one `cat`)
and updates the rows of the members that step, once per distinct (lr, weight decay),
with Adam's formulas as `torch.optim.Adam` writes them (bias corrections from each
member's own step count, computed in float64 so that a member's update does not depend
on how many others share the call): a few operations per step whatever the number of
tensors and members.

>>> import torch
>>> w = torch.nn.Parameter(torch.ones(2, 3))  # K = 2 members of a [3] weight
>>> opt = MemberAdam([w], lr=[0.1, 0.2], weight_decay=[0.0, 0.0])
>>> (w * w).sum().backward()
>>> opt.step([True, True])
>>> w.detach()  # a first Adam step moves each weight by its member's lr
tensor([[0.9000, 0.9000, 0.9000],
        [0.8000, 0.8000, 0.8000]])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

FUSED_DEVICES = ("cpu", "cuda")


@torch.no_grad()
def flatten(params: Sequence[nn.Parameter]) -> torch.Tensor:
    """Move stacked parameters ([K, ...] each) into one buffer [K, P] and make each a view
    of its columns (values unchanged): row k holds member k's weights, contiguous."""
    members = params[0].shape[0]
    sizes = [p[0].numel() for p in params]
    flat = params[0].new_empty(members, sum(sizes))
    start = 0
    for p, n in zip(params, sizes, strict=True):
        columns = flat[:, start : start + n]  # [K, n]
        columns.copy_(p.reshape(members, n))
        p.data = columns.view(p.shape)
        start += n
    return flat


class MemberAdam:
    """Adam over stacked parameters [K, ...]: K independent Adams, one per member.

    Member k has its own learning rate, weight decay, step count (bias correction) and
    moments, and only the members named active in `step` are updated: a member without
    a batch this step, or one that stopped early, keeps its weights, moments and step
    count. Every parameter must be [K, ...], floating point, of one dtype and device (the
    CPU or CUDA); building the optimizer makes them views of `flat` (module docstring).

    With `scaled=True` (fp16) each member also has its own loss scale (`scale`, [K]): an
    overflow in one member's gradients skips that member's step only and halves its
    scale; 2000 clean steps double it. Nothing here waits for the device.
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        lr: Sequence[float],
        weight_decay: Sequence[float],
        scaled: bool = False,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.members = len(lr)
        _check(self.params, self.members, lr, weight_decay, eps)
        self.lr, self.weight_decay = list(lr), list(weight_decay)
        self.betas, self.eps = betas, eps
        self.flat = flatten(self.params)  # [K, P]
        self.exp_avg = torch.zeros_like(self.flat)
        self.exp_avg_sq = torch.zeros_like(self.flat)
        device = self.flat.device
        # [K] per member; float64 for the bias corrections (module doc)
        self.steps = torch.zeros(self.members, dtype=torch.float64, device=device)
        self.scaled = scaled
        self.scale = torch.full((self.members,), 2.0**16 if scaled else 1.0, device=device)
        self._clean = torch.zeros(self.members, device=device)  # steps since an overflow
        self._active: dict[tuple[bool, ...], torch.Tensor] = {}
        self._rows: dict[tuple[object, ...], torch.Tensor] = {}
        self._settings: dict[tuple[float, float], list[int]] = {}
        for k, key in enumerate(zip(self.lr, self.weight_decay, strict=True)):
            self._settings.setdefault(key, []).append(k)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def gradients(self) -> torch.Tensor:
        """The parameters' gradients in `flat`'s layout, [K, P] (one copy)."""
        if any(p.grad is None for p in self.params):
            raise ValueError("every parameter needs a gradient (the stacked loss reaches all)")
        return torch.cat([p.grad.reshape(self.members, -1) for p in self.params], dim=1)  # type: ignore[union-attr]

    @torch.no_grad()
    def step(self, active: Sequence[bool]) -> None:
        """Update the active members (those with a batch in this step)."""
        grads = self.gradients()  # [K, P]
        on = self._on(tuple(active))  # [K] 1.0 where a member steps
        if not self.scaled:
            self.steps += on
            for (lr, decay), members in self._settings.items():
                rows = [k for k in members if active[k]]
                if rows:
                    self._adam(rows, grads, lr, decay)
            return
        # Each member's own scale divides its gradients, and its own overflow flag skips
        # its update on the device: no member's step waits for the device.
        scale = self.scale
        finite = grads.isfinite().all(dim=1)  # [K]
        self._rescale(finite, on)
        self.steps += on * finite
        overflow = (~finite).float()  # [K]
        for k, stepping in enumerate(active):
            if stepping:
                lr, decay = self.lr[k], self.weight_decay[k]
                self._adam([k], grads, lr, decay, scale=scale[k], overflow=overflow[k])

    def _on(self, active: tuple[bool, ...]) -> torch.Tensor:
        """`active` as a [K] float tensor on the device, made once per pattern: a copy from
        the host in every step could make the host wait for the device."""
        if active not in self._active:
            self._active[active] = torch.tensor(active, dtype=torch.float32).to(self.flat.device)
        return self._active[active]

    def _adam(
        self,
        rows: list[int],
        grads: torch.Tensor,
        lr: float,
        decay: float,
        scale: torch.Tensor | None = None,
        overflow: torch.Tensor | None = None,
    ) -> None:
        """One Adam update of the members `rows`, which share lr and weight decay; with
        `scale`, gradients are divided by it, and `overflow` > 0 skips the update (moments
        too) without reading it on the host."""
        index = self._index(rows)
        b1, b2 = self.betas
        param, m, v = self.flat[index], self.exp_avg[index], self.exp_avg_sq[index]  # [R, P]
        g = grads[index] if scale is None else grads[index] / scale
        if decay:
            g = g + decay * param
        new_m = m * b1 + g * (1 - b1)
        new_v = v * b2 + g * g * (1 - b2)
        step = self.steps[index].unsqueeze(1)  # [R, 1], float64
        correction1 = (1 - b1**step).float()
        root2 = (1 - b2**step).sqrt().float()
        new_p = param - (lr / correction1) * new_m / (new_v.sqrt() / root2 + self.eps)
        if overflow is not None:  # keep everything of a member whose gradients overflowed
            keep = overflow > 0
            new_p, new_m, new_v = (torch.where(keep, old, new) for old, new in
                                   ((param, new_p), (m, new_m), (v, new_v)))  # fmt: skip
        self.flat.index_copy_(0, index, new_p)
        self.exp_avg.index_copy_(0, index, new_m)
        self.exp_avg_sq.index_copy_(0, index, new_v)

    def _index(self, rows: list[int]) -> torch.Tensor:
        """`rows` as an index tensor on the device, made once per pattern (module doc)."""
        key = ("rows", *rows)
        if key not in self._rows:
            self._rows[key] = torch.tensor(rows, dtype=torch.long).to(self.flat.device)
        return self._rows[key]

    def _rescale(self, finite: torch.Tensor, on: torch.Tensor) -> None:
        """Per member, as GradScaler: halve after an overflow, double after 2000 clean steps."""
        stepped = on > 0
        self._clean = torch.where(
            stepped & finite, self._clean + 1, torch.where(stepped, 0, self._clean)
        )
        grow = self._clean >= 2000
        self.scale = torch.where(
            stepped & ~finite, self.scale * 0.5, torch.where(grow, self.scale * 2, self.scale)
        )
        self._clean = torch.where(grow, 0, self._clean)


def _check(
    params: Sequence[nn.Parameter],
    members: int,
    lr: Sequence[float],
    weight_decay: Sequence[float],
    eps: float,
) -> None:
    """ValueError unless the parameters and settings fit `MemberAdam`."""
    if not params:
        raise ValueError("MemberAdam needs parameters to train")
    kinds = {(p.dtype, p.device) for p in params}
    dtype, device = next(iter(kinds))
    if len(kinds) > 1 or not dtype.is_floating_point or device.type not in FUSED_DEVICES:
        raise ValueError(
            f"MemberAdam needs floating point parameters of one dtype on one CPU or CUDA "
            f"device, got {sorted(str(k) for k in kinds)}"
        )
    if len(weight_decay) != members or any(p.dim() == 0 or p.shape[0] != members for p in params):
        raise ValueError(f"every parameter and setting must have {members} members")
    if min(lr) < 0 or min(weight_decay) < 0 or eps < 0:
        raise ValueError(f"invalid Adam settings: lr {lr}, weight decay {weight_decay}")
