"""How a step's CPU time grows with its input, for tests that a step stays linear in the
number of utterances (`from tests.growth import assert_linear`).

CPU time (`time.process_time`: this process, all its threads), never the wall clock, so
the machine's load does not count. A step is timed at two sizes, ``n`` and ``factor * n``:
linear work grows about ``factor`` times (less, with fixed costs), quadratic work
``factor**2`` times; a ratio over ``factor * slack`` fails. A run is on an input prepared
afresh (a step may change what it runs on), and of several runs the least is kept: a pause
of the machine makes a time longer, never shorter. The small size is run `repeats` times;
the large one, four times the work, once, and again only when the ratio says quadratic.

What fails: with F the step's fixed cost, L its linear work and Q its quadratic work at
``n`` (factor 4, slack 2), 16Q + 4L + F > 8(Q + L + F), i.e. Q > 7F/8 + L/2: quadratic
work as costly as about the step's own at ``n``. Cheaper quadratic work (a C-speed scan
per utterance, `list.index`) shows only at sizes beyond a fast test's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

# prepare(size) -> the step over an input of `size` utterances; preparing is not timed
Prepare = Callable[[int], Callable[[], object]]


def cpu_seconds(prepare: Prepare, size: int, repeats: int = 2) -> float:
    """The least CPU time of the step over `size` utterances, of `repeats` runs."""
    best = math.inf
    for _ in range(repeats):
        step = prepare(size)
        start = time.process_time()
        step()
        best = min(best, time.process_time() - start)
    return best


def growth(
    prepare: Prepare, n: int, factor: int = 4, repeats: int = 2, bound: float = math.inf
) -> float:
    """CPU time of the step at ``factor * n`` utterances over its time at ``n``: the small
    size's least of `repeats` runs (a pause there would hide growth), the large size's one
    run, run again `repeats - 1` times only when the ratio reaches `bound` (a pause there
    can only make the ratio larger)."""
    small = cpu_seconds(prepare, n, repeats)
    large = cpu_seconds(prepare, factor * n, 1)
    if large / max(small, 1e-6) >= bound and repeats > 1:
        large = min(large, cpu_seconds(prepare, factor * n, repeats - 1))
    return large / max(small, 1e-6)


def assert_linear(
    prepare: Prepare, n: int, what: str, factor: int = 4, slack: float = 2.0, repeats: int = 2
) -> float:
    """Fail when `what`'s CPU time grows more than ``factor * slack`` times for ``factor``
    times the utterances; the ratio."""
    ratio = growth(prepare, n, factor, repeats, bound=factor * slack)
    assert ratio < factor * slack, (
        f"{what}: CPU time grew {ratio:.1f}x from {n} to {factor * n} utterances "
        f"(linear: about {factor}x; quadratic: {factor**2}x)"
    )
    return ratio
