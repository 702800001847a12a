"""Member-stacked parameters: `Linear`, `LayerNorm`, and initialisation per member.

A stacked model's parameter has shape [K, ...]: slice k is member k's. Members are
initialised one at a time from their own generator (`init_members`), on the CPU, so a
member's initial weights depend on its seed alone: not on K, on its position among the
members, or on the device.

>>> import torch
>>> a, b = Linear(2, 3, 4), Linear(1, 3, 4)
>>> init_members(a, [7, 8]); init_members(b, [8])
>>> torch.equal(a.weight[1], b.weight[0])
True
>>> a(torch.randn(2, 5, 3)).shape
torch.Size([2, 5, 4])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class Stacked(nn.Module):
    """A module whose parameters lead with the member dimension K."""

    def __init__(self, members: int) -> None:
        super().__init__()
        self.members = members

    def init_member(self, k: int, generator: torch.Generator) -> None:
        """Draw member k's slice of every own parameter from `generator` (CPU)."""
        raise NotImplementedError


def uniform(shape: Sequence[int], bound: float, generator: torch.Generator) -> torch.Tensor:
    """U(-bound, bound) of `shape`, drawn on the CPU."""
    return (torch.rand(tuple(shape), generator=generator) * 2.0 - 1.0) * bound


def normal(shape: Sequence[int], std: float, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=generator) * std


@torch.no_grad()
def fill(param: torch.Tensor, k: int, value: torch.Tensor) -> None:
    param[k].copy_(value.to(param.device, param.dtype))


class Linear(Stacked):
    """y = x W_k + b_k per member: x [K, ..., d_in] -> [K, ..., d_out], one batched product.

    Weights are stored [K, d_in, d_out] (the product's layout). Initialised as
    `nn.Linear` (uniform, bound 1/sqrt(d_in)) unless `init="xavier"` (zero bias), the
    attention projections' initialisation, or `init="zero_bias"` (`nn.Linear`'s weights,
    zero bias: `nn.MultiheadAttention`'s output projection).
    """

    def __init__(
        self, members: int, d_in: int, d_out: int, bias: bool = True, init: str = "default"
    ) -> None:
        super().__init__(members)
        self.d_in, self.d_out, self.init = d_in, d_out, init
        self.weight = nn.Parameter(torch.empty(members, d_in, d_out))
        self.bias = nn.Parameter(torch.zeros(members, 1, d_out)) if bias else None

    def init_member(self, k: int, generator: torch.Generator) -> None:
        if self.init == "xavier":
            fill(self.weight, k, uniform(self.weight.shape[1:], _xavier(self), generator))
            if self.bias is not None:
                fill(self.bias, k, torch.zeros(self.bias.shape[1:]))
            return
        bound = 1.0 / math.sqrt(self.d_in)
        fill(self.weight, k, uniform(self.weight.shape[1:], bound, generator))
        if self.bias is not None and self.init == "zero_bias":
            fill(self.bias, k, torch.zeros(self.bias.shape[1:]))
        elif self.bias is not None:
            fill(self.bias, k, uniform(self.bias.shape[1:], bound, generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        flat = x.reshape(self.members, -1, self.d_in)  # [K, N, d_in]
        if self.bias is None:
            out = torch.bmm(flat, self.weight)  # [K, N, d_out]
        else:
            out = torch.baddbmm(self.bias, flat, self.weight)  # [K, N, d_out]
        return out.view(*lead, self.d_out)


def _xavier(linear: Linear) -> float:
    return math.sqrt(6.0 / (linear.d_in + linear.d_out))


class LayerNorm(Stacked):
    """Layer norm over the last dimension with per-member gain and bias."""

    def __init__(self, members: int, dim: int, eps: float = 1e-5) -> None:
        super().__init__(members)
        self.dim, self.eps = dim, eps
        self.weight = nn.Parameter(torch.ones(members, dim))
        self.bias = nn.Parameter(torch.zeros(members, dim))

    def init_member(self, k: int, generator: torch.Generator) -> None:
        fill(self.weight, k, torch.ones(self.dim))
        fill(self.bias, k, torch.zeros(self.dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (self.members, *([1] * (x.dim() - 2)), self.dim)
        y = F.layer_norm(x, (self.dim,), eps=self.eps)  # [K, ..., d]
        return y * self.weight.view(shape) + self.bias.view(shape)


class Parameter(Stacked):
    """A free tensor per member ([K, *shape]), initialised N(0, std) (or zeros/ones)."""

    def __init__(self, members: int, *shape: int, std: float = 1.0) -> None:
        super().__init__(members)
        self.std = std
        self.value = nn.Parameter(torch.zeros(members, *shape))

    def init_member(self, k: int, generator: torch.Generator) -> None:
        fill(self.value, k, normal(self.value.shape[1:], self.std, generator))


def init_members(model: nn.Module, seeds: Sequence[int]) -> None:
    """Initialise member k of every `Stacked` module of `model` from `seeds[k]`.

    Modules are visited in registration order, so member k's weights are a function of
    its seed and the model's structure only.
    """
    stacked = [m for m in model.modules() if isinstance(m, Stacked)]
    for k, seed in enumerate(seeds):
        generator = torch.Generator().manual_seed(seed)
        for module in stacked:
            if module.members != len(seeds):
                raise ValueError(
                    f"{type(module).__name__} has {module.members} members, not {len(seeds)}"
                )
            module.init_member(k, generator)


def member_state(model: nn.Module, k: int) -> dict[str, torch.Tensor]:
    """Member k's parameters and buffers, each without the member dimension (CPU copies)."""
    return {name: t[k].detach().cpu().clone() for name, t in model.state_dict().items()}


@torch.no_grad()
def load_member_state(model: nn.Module, k: int, state: dict[str, torch.Tensor]) -> None:
    """Copy a `member_state` into member k of `model` (names and shapes must match)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"state does not fit the model: missing {missing}, unexpected {unexpected}"
        )
    for name, tensor in own.items():
        if tuple(state[name].shape) != tuple(tensor.shape[1:]):
            raise ValueError(
                f"{name}: shape {tuple(state[name].shape)} != {tuple(tensor.shape[1:])}"
            )
        tensor[k].copy_(state[name])
