"""Adam on PyTorch's fused kernel, without `torch.optim`.

`torch.optim` wraps every optimizer method in `torch._disable_dynamo`, which imports
`torch._dynamo` the first time an optimizer is built: 1.4 s on the 2-core development
machine, a tenth of the fusion study's whole 150-epoch run. `Adam` makes the same update
with the same kernel (`torch._fused_adam_`, the one `torch.optim.Adam(fused=True)` calls),
tested to give bit-identical parameters; `GradScaler` drives it like a `torch.optim`
optimizer (it reads `param_groups` and calls `step`).

>>> import torch
>>> w = torch.nn.Parameter(torch.ones(3))
>>> opt = Adam([w], lr=0.1)
>>> (w * w).sum().backward()
>>> opt.step()
>>> w.detach()  # the first Adam step moves each weight by lr against its gradient's sign
tensor([0.9000, 0.9000, 0.9000])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

FUSED_DEVICES = ("cpu", "cuda")


class Adam:
    """Adam (L2 weight decay added to the gradient, as `torch.optim.Adam`), fused kernel.

    Parameters must be floating point tensors on the CPU or a CUDA device; `fused_supported`
    says whether they are.
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.params = list(params)
        if not fused_supported(self.params):
            raise ValueError("Adam needs floating point parameters on the CPU or CUDA")
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid Adam settings: lr {lr}, betas {betas}, eps {eps}")
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        # What GradScaler reads to unscale gradients before `step`.
        self.param_groups: list[dict[str, Any]] = [{"params": self.params, "lr": lr}]
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        # The fused kernel counts steps in float32 tensors on the parameters' device.
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient (others keep their state)."""
        groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
        for i, p in enumerate(self.params):
            if p.grad is not None:
                groups.setdefault((p.device, p.dtype), []).append(i)
        for idx in groups.values():
            steps = [self.steps[i] for i in idx]
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(
                [self.params[i] for i in idx],
                [self.params[i].grad for i in idx],  # type: ignore[misc]
                [self.exp_avg[i] for i in idx],
                [self.exp_avg_sq[i] for i in idx],
                [],  # max_exp_avg_sqs: AMSGrad only
                steps,
                lr=self.lr,
                beta1=self.betas[0],
                beta2=self.betas[1],
                weight_decay=self.weight_decay,
                eps=self.eps,
                amsgrad=False,
                maximize=False,
            )


def fused_supported(params: Iterable[torch.Tensor]) -> bool:
    """Whether `Adam`'s fused kernel takes these parameters."""
    return all(p.device.type in FUSED_DEVICES and p.dtype.is_floating_point for p in params)


class MemberAdam:
    """Adam over stacked parameters [K, ...]: K independent Adams, one per member.

    Member k has its own learning rate, weight decay, step count (bias correction) and
    moments, and only the members named active in `step` are updated: a member without
    a batch this step, or one that stopped early, keeps its weights, moments and step
    count. (`torch.optim.Adam`'s update, L2 decay added to the gradient.) Each operation
    runs over all parameters at once (`ops._foreach_*`) with per-member factors shaped
    [K, 1, ...]: ~15 operations per step whatever K and the number of tensors, where
    slicing every tensor per member would cost the host thousands of small calls.

    With `scaled=True` (fp16) each member also has its own loss scale (`scale`, [K]): an
    overflow in one member's gradients skips that member's step only and halves its
    scale; 2000 clean steps double it.
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
        if not self.params or not all(p.dtype.is_floating_point for p in self.params):
            raise ValueError("MemberAdam needs floating point parameters")
        self.members = len(lr)
        if len(weight_decay) != self.members or any(
            p.shape[0] != self.members for p in self.params
        ):
            raise ValueError(f"every parameter and setting must have {self.members} members")
        if min(lr) < 0 or min(weight_decay) < 0 or eps < 0:
            raise ValueError(f"invalid Adam settings: lr {lr}, weight decay {weight_decay}")
        self.betas, self.eps = betas, eps
        device = self.params[0].device
        self.lr = torch.tensor(lr, dtype=torch.float32, device=device)  # [K]
        self.weight_decay = torch.tensor(weight_decay, dtype=torch.float32, device=device)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = torch.zeros(self.members, device=device)  # [K] per member
        self.scaled = scaled
        self.scale = torch.full((self.members,), 2.0**16 if scaled else 1.0, device=device)
        self._clean = torch.zeros(self.members, device=device)  # steps since an overflow

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _per_member(self, factor: torch.Tensor) -> list[torch.Tensor]:
        """[K] -> one view [K, 1, ...] per parameter, to scale each member's slice."""
        return [factor.view(-1, *[1] * (p.dim() - 1)) for p in self.params]

    @torch.no_grad()
    def step(self, active: Sequence[bool]) -> None:
        """Update the active members (those with a batch in this step)."""
        ops: Any = torch  # the foreach stubs want scalars where tensors ([K, 1, ...]) work
        params = [p for p in self.params if p.grad is not None]
        if len(params) != len(self.params):
            raise ValueError("every parameter needs a gradient (the stacked loss reaches all)")
        grads = [p.grad for p in params]
        on = torch.tensor(active, dtype=torch.float32).to(self.steps.device, non_blocking=True)
        if self.scaled:
            grads = ops._foreach_mul(grads, self._per_member(1.0 / self.scale))
            finite = torch.stack([g.flatten(1).isfinite().all(1) for g in grads]).all(0)  # [K]
            self._rescale(finite, on)
            on = on * finite
            grads = [g.nan_to_num(0.0, 0.0, 0.0) for g in grads]  # skipped members: no NaN
        b1, b2 = self.betas
        self.steps += on
        grads = ops._foreach_add(
            grads, ops._foreach_mul(params, self._per_member(self.weight_decay))
        )
        ops._foreach_lerp_(self.exp_avg, grads, self._per_member((1 - b1) * on))
        squares = ops._foreach_mul(grads, grads)
        ops._foreach_lerp_(self.exp_avg_sq, squares, self._per_member((1 - b2) * on))
        done = self.steps.clamp_min(1.0)  # members that never stepped have on = 0 anyway
        step_size = self.lr * on / (1 - b1**done)  # [K]
        root = (1 - b2**done).sqrt()  # [K]
        denom = ops._foreach_div(ops._foreach_sqrt(self.exp_avg_sq), self._per_member(root))
        ops._foreach_add_(denom, self.eps)
        update = ops._foreach_div(self.exp_avg, denom)
        ops._foreach_mul_(update, self._per_member(step_size))
        ops._foreach_sub_(params, update)

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
