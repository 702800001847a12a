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

from collections.abc import Iterable
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
