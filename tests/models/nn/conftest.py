"""Shared by the tests of ser.models.nn: how many operators a piece of code runs."""

from __future__ import annotations

import pytest
from torch.utils._python_dispatch import TorchDispatchMode


class OpCount(TorchDispatchMode):
    """The operators that compute (views left out: no kernel on a GPU) while active."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.count += not func.is_view
        return func(*args, **(kwargs or {}))


@pytest.fixture
def op_count() -> type[OpCount]:
    """`with op_count() as ops: ...`, then `ops.count`."""
    return OpCount
