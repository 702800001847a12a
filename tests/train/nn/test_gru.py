"""The member-stacked Bi-GRU's backward pass (ser.train.nn.gru)."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ser.train.nn.gru import BiGRU
from ser.train.nn.stacked import init_members


class Made(TorchDispatchMode):
    """(operator, size) of every tensor made while active."""

    def __init__(self) -> None:
        super().__init__()
        self.made: list[tuple[str, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor):
            self.made.append((func.__name__.split(".")[0], out.numel()))
        return out


def test_backward_makes_one_gradient_of_the_gates_not_a_zero_filled_one_per_part() -> None:
    """The input gates [N K, B, U, 3H] are split, not sliced, into their parts: slicing
    would make autograd zero-fill a gradient of the whole tensor once per part."""
    k, b, u, d, hidden = 2, 3, 5, 4, 6
    grus = [BiGRU(k, d, hidden) for _ in range(2)]
    for gru in grus:
        init_members(gru, [0, 1])
    x = torch.randn(2, k, b, u, d, requires_grad=True)
    out = BiGRU.run(grus, x, torch.ones(k, b, u, dtype=torch.bool))
    with Made() as made:
        out.sum().backward()
    gates = 4 * k * b * u * 3 * hidden  # two GRUs, two directions each
    assert ("slice_backward", gates) not in made.made  # a zero-filled copy of the gates
    assert sum(size == gates for _, size in made.made) <= 2  # split's one concatenation
    assert x.grad is not None and torch.isfinite(x.grad).all()
