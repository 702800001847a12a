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

    Member k has its own learning rate, weight decay, step count and moments, and only
    the members named active in `step` are updated (a member without a batch this step,
    or one that stopped early, keeps its weights, moments and step count). The update
    of member k is `Adam`'s on its slices, through the same fused kernel, so a member
    trained stacked moves exactly as it does alone. With `scaled=True` (fp16) each member
    also has its own loss scale (`scale`, [K]): an overflow in one member's gradients
    skips that member's step only and halves its scale.
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
        if not self.params or not fused_supported(self.params):
            raise ValueError("MemberAdam needs floating point parameters on the CPU or CUDA")
        self.members = len(lr)
        if len(weight_decay) != self.members or any(
            p.shape[0] != self.members for p in self.params
        ):
            raise ValueError(f"every parameter and setting must have {self.members} members")
        if min(lr) < 0 or min(weight_decay) < 0 or eps < 0:
            raise ValueError(f"invalid Adam settings: lr {lr}, weight decay {weight_decay}")
        self.lr, self.weight_decay = list(lr), list(weight_decay)
        self.betas, self.eps = betas, eps
        device = self.params[0].device
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = [
            [torch.zeros((), dtype=torch.float32, device=device) for _ in self.params]
            for _ in range(self.members)
        ]
        self.scaled = scaled
        self.scale = torch.full((self.members,), 2.0**16 if scaled else 1.0, device=device)
        self._growth = [
            torch.zeros((), dtype=torch.int32, device=device) for _ in range(self.members)
        ]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, active: Sequence[bool]) -> None:
        """Update the active members (those with a batch in this step)."""
        if self.scaled:
            for k in (k for k, a in enumerate(active) if a):
                self._update([k], self.scale[k])
            return
        groups: dict[tuple[float, float], list[int]] = {}
        for k, a in enumerate(active):
            if a:
                groups.setdefault((self.lr[k], self.weight_decay[k]), []).append(k)
        for members in groups.values():
            self._update(members, None)

    def _update(self, members: list[int], scale: torch.Tensor | None) -> None:
        idx = [(i, k) for k in members for i, p in enumerate(self.params) if p.grad is not None]
        if not idx:
            return
        k0 = members[0]
        steps = [self.steps[k][i] for i, k in idx]
        found_inf = None
        if scale is not None:  # as GradScaler for fused optimizers: check, the kernel unscales
            found_inf = torch.zeros((), device=scale.device)
            grads = [self.params[i].grad[k] for i, k in idx]  # type: ignore[index]
            one = torch.ones((), device=scale.device)
            torch._amp_foreach_non_finite_check_and_unscale_(grads, found_inf, one)
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(
            [self.params[i][k] for i, k in idx],
            [self.params[i].grad[k] for i, k in idx],  # type: ignore[index]
            [self.exp_avg[i][k] for i, k in idx],
            [self.exp_avg_sq[i][k] for i, k in idx],
            [],
            steps,
            lr=self.lr[k0],
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=self.weight_decay[k0],
            eps=self.eps,
            amsgrad=False,
            maximize=False,
            grad_scale=scale,
            found_inf=found_inf,
        )
        if scale is not None and found_inf is not None:
            # As torch.optim: a skipped step does not count; the scale backs off or grows.
            torch._foreach_sub_(steps, [found_inf] * len(steps))
            torch._amp_update_scale_(scale, self._growth[k0], found_inf, 2.0, 0.5, 2000)
