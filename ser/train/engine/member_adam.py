"""Adam over stacked members whose epochs differ in steps: each member counts its own steps,
and a member without a batch at a step keeps its parameters and state exactly.

LOSO's folds differ in training utterances, so in a stack one member runs out of batches
before another. torch's Adam keeps one step count a tensor, and the count sets the bias
correction: a member that skipped steps would be corrected as if it had not. Here the
count is [K], one a member, and `active` [K] (a tensor on the device, set before each
step, so a CUDA graph can read it) says which members update; the others' parameters,
moments and counts stay as they were, bit for bit. The arithmetic is torch's Adam's
(`torch.optim.Adam` without amsgrad), in plain element-wise operations: slower than its
fused kernel, which is why stacks of equal members keep that one.

>>> import torch
>>> w = torch.nn.Parameter(torch.ones(2, 3))  # two members' [3] weights
>>> adam = MemberAdam([w], lr=0.1)
>>> w.grad = torch.ones(2, 3)
>>> adam.active.copy_(torch.tensor([True, False]))
tensor([ True, False])
>>> adam.step()
>>> w.detach()[1].tolist(), adam.counts.tolist()
([1.0, 1.0, 1.0], [1.0, 0.0])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


class MemberAdam(torch.optim.Optimizer):
    """Adam for parameters that lead with the member axis [K, ...] (module doc)."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(
            params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        )
        first = self.param_groups[0]["params"][0]
        members, device = first.shape[0], first.device
        self.counts = torch.zeros(members, device=device)  # [K] steps each member took
        self.active = torch.ones(members, dtype=torch.bool, device=device)  # [K]

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> None:  # type: ignore[override]
        if closure is not None:
            raise ValueError("MemberAdam takes no closure")
        self.counts.add_(self.active.float())
        t = self.counts.clamp_min(1.0)  # [K]; a member never stepped is masked anyway
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            step_size = group["lr"] / (1 - beta1**t)  # [K]
            correction = (1 - beta2**t).sqrt()  # [K]
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, group, step_size, correction)

    def _update(
        self,
        p: torch.Tensor,
        group: dict[str, Any],
        step_size: torch.Tensor,
        correction: torch.Tensor,
    ) -> None:
        """One parameter [K, ...]: torch's Adam arithmetic, kept where `active`."""
        state = self.state[p]
        if not state:
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        beta1, beta2 = group["betas"]
        shape = (-1,) + (1,) * (p.dim() - 1)  # a member's value over its slot
        grad = p.grad if p.grad is not None else torch.zeros_like(p)
        if group["weight_decay"]:
            grad = grad.add(p, alpha=group["weight_decay"])
        m_new = m.lerp(grad, 1 - beta1)
        v_new = (v * beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (v_new.sqrt() / correction.view(shape)).add_(group["eps"])
        p_new = p - step_size.view(shape) * m_new / denom
        keep = self.active.view(shape)
        p.copy_(torch.where(keep, p_new, p))
        m.copy_(torch.where(keep, m_new, m))
        v.copy_(torch.where(keep, v_new, v))
