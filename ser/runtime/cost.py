"""What a model family costs to train, as the execution policy reads it (`FamilyCost`):
each family states its own beside its declaration (`ser.models.registry.Family.cost`),
with the measurements behind each number as comments there; a family that states none
trains as an unmeasured one (`FamilyCost()`: never stacked on the CPU, stacked on a GPU,
eager, one process, its sweep cells in this process).
`benchmarks/bench_family_cost.py --family NAME` measures a new family's and prints the
line to paste (benchmarks/README.md, "What does a model family cost to train?").

>>> FamilyCost().measured_processes
False
>>> cost = FamilyCost(stack_width=1024, rate=(1e-6, 1.5e-8), min_seconds=50.0, thread_gain=1.7)
>>> round(cost.seconds(work=20 * 30 * 5531, width=768), 1)
41.5
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

GPU_STEPS = ("eager", "graphed", "compiled")


@dataclass(frozen=True)
class FamilyCost:
    """A family's training cost on the machine, measured (benchmarks/README.md, "How should
    a run's members share the CPU?"):

    - `stack_width`: the widest member input (input sets' dims summed) at which members
      stacked in one model train faster than one after another on the CPU (0: never);
    - `gpu_alone`: members train one at a time on a GPU (else stacked on the device);
    - `gpu_step`: how its steps run on a GPU by default (`ser.train.engine.steps`): "eager";
      "graphed" (each whole step one CUDA graph a padded shape, members one at a time);
      or "compiled" (torch.compile, members one at a time; the step must trace without
      a graph break);
    - `rate`: (a, b): an utterance-epoch's seconds in one process on the 2-core CPU,
      a + b x the member's input width (None: unmeasured);
    - `min_seconds`: the seconds of training from which members go to one-thread
      processes side by side on the CPU (None: processes unmeasured, one process);
    - `thread_gain`: a member's speed with both threads of the 2-core CPU over one, where
      members train one after another (what one process gains from its threads, against
      one-thread processes side by side that leave a core idle when the members do not
      divide among them);
    - `cell_per_process`: its sweep cells train one per process (a one-thread dask worker
      each) rather than in this process.
    """

    stack_width: int = 0
    gpu_alone: bool = False
    gpu_step: str = "eager"
    rate: tuple[float, float] | None = None
    min_seconds: float | None = None
    thread_gain: float | None = None
    cell_per_process: bool = False

    def __post_init__(self) -> None:
        if self.stack_width < 0:
            raise ValueError(f"stack_width must be at least 0, got {self.stack_width}")
        if self.gpu_step not in GPU_STEPS:
            raise ValueError(
                f"gpu_step must be one of {', '.join(GPU_STEPS)}, got {self.gpu_step!r}"
            )
        # Whether processes pay is read from all three: the run's seconds at its rate
        # against min_seconds, and a queue of members against one process at the gain.
        if self.min_seconds is not None and (self.rate is None or self.thread_gain is None):
            raise ValueError("min_seconds needs the rate and thread_gain it is weighed with")
        if self.thread_gain is not None and self.thread_gain <= 0:
            raise ValueError(f"thread_gain must be above 0, got {self.thread_gain}")

    @property
    def measured_processes(self) -> bool:
        """Whether processes side by side were measured for the family."""
        return self.min_seconds is not None

    def seconds(self, work: int, width: int) -> float:
        """About how long `work` utterance-epochs of `width`-d members take in one process
        (ValueError for a family whose rate is unmeasured)."""
        if self.rate is None:
            raise ValueError("the family's rate is unmeasured")
        a, b = self.rate
        return work * (a + b * width)


# An utterance this many times its set's median length pads its batch beyond what a
# family's measured `rate` (on corpora of like-length utterances) already holds.
PADS_AT = 3.0


def padded_utterances(lengths: Sequence[int], batch_size: int) -> float:
    """The utterances an epoch over sequences of `lengths` (frames or tokens) costs at a
    `rate` measured on like-length ones: batches are padded to their longest member, so
    each utterance over `PADS_AT` x the median makes its batch cost `batch_size` x its
    length over the median instead of `batch_size`.

    >>> padded_utterances([100] * 99 + [100], 8), padded_utterances([100] * 99 + [1000], 8)
    (100.0, 172.0)
    """
    if not len(lengths):
        return 0.0
    median = max(int(statistics.median_high(lengths)), 1)
    size = min(batch_size, len(lengths))
    extra = sum(size * (n / median - 1) for n in lengths if n > PADS_AT * median)
    return float(len(lengths) + extra)
