"""The growth tests' own rule (tests/growth.py): a quadratic step fails, a linear one
passes, and the large size is run again only when the ratio says quadratic."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.growth import assert_linear


def _counted(
    power: int, sizes: list[int], work: int = 100
) -> Callable[[int], Callable[[], object]]:
    def prepare(size: int) -> Callable[[], object]:
        sizes.append(size)
        return lambda: sum(i * i for i in range(work * size**power))

    return prepare


def test_a_linear_step_passes_with_its_large_size_run_once() -> None:
    """~20 ms and ~80 ms of CPU: far from the bound, whatever a collector's pause adds."""
    sizes: list[int] = []
    assert_linear(_counted(1, sizes, work=500), 400, "a linear step")
    assert sizes == [400, 400, 1600]


def test_a_quadratic_step_fails_on_the_least_of_its_runs() -> None:
    sizes: list[int] = []
    with pytest.raises(AssertionError, match="quadratic step: CPU time grew"):
        assert_linear(_counted(2, sizes, work=5), 60, "a quadratic step")
    assert sizes == [60, 60, 240, 240]
