"""Extraction planning: utterance costs -> length-sorted batches -> shards.

A plan is a deterministic function of the manifest and the settings, so a resumed run or
a dask worker recomputes the same shards and batches and writes the same bytes (model
outputs depend slightly on what else is in a batch). Shards are cut from an order taken
from the manifest alone (annotated duration, or token count): shard membership never
depends on the batch budget or on the wav files, so a run resumed with another
`--batch-seconds`, or after a wav was restored, completes the same shards.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ser.corpus.audio import AudioError, AudioSource, Clip, audio_info
from ser.errors import ConfigError
from ser.runtime.progress import clock_time

# Batch budgets by device: padded seconds of audio / padded tokens per forward call.
# CPU: HuBERT-base is as fast one utterance per call as in batches <= 20 s, 25 % slower
# at 60 s; BERT-base is fastest at ~512 padded tokens (benchmarks/bench_extract.py).
# CUDA: big batches keep the GPU busy; HuBERT-base fp16 holds minutes of audio in < 8 GB.
DEFAULT_BATCH_SECONDS = {"cpu": 10.0, "cuda": 240.0}
DEFAULT_BATCH_TOKENS = {"cpu": 512, "cuda": 16384}
DEFAULT_SHARD_SIZE = 256


@dataclass(frozen=True)
class Shard:
    """A unit of resumable work, committed as one file: batches of manifest indices, one
    forward call each."""

    shard_id: int
    batches: tuple[tuple[int, ...], ...]

    @property
    def indices(self) -> tuple[int, ...]:
        return tuple(i for batch in self.batches for i in batch)

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(frozen=True)
class ShardPlan:
    """All shards of one extractor's pass over the manifest."""

    shards: tuple[Shard, ...]
    costs: tuple[float, ...]  # per manifest index: seconds (audio) or tokens (text)


def plan_shards(
    costs: Sequence[float],
    budget: float,
    shard_size: int,
    sort_keys: Sequence[float] | None = None,
    max_batch: int | None = None,
) -> ShardPlan:
    """Sort utterances by `sort_keys` (default: `costs`; ties by manifest index), cut the
    order into shards of `shard_size`, and each shard into batches of at most `max_batch`
    whose padded cost (size x longest) stays within `budget`; an utterance over budget is
    a batch alone.

    >>> plan = plan_shards([3.0, 1.0, 2.0, 1.0, 9.0], budget=4.0, shard_size=3)
    >>> [shard.batches for shard in plan.shards]
    [((1, 3), (2,)), ((0,), (4,))]
    """
    if not budget > 0:
        raise ConfigError(f"the batch budget must be positive, got {budget}")
    keys = costs if sort_keys is None else sort_keys
    if len(keys) != len(costs):
        raise ValueError(f"{len(keys)} sort keys for {len(costs)} costs")
    order = np.argsort(np.asarray(keys, dtype=np.float64), kind="stable")
    shards = []
    for shard_id, start in enumerate(range(0, len(order), shard_size)):
        members = [int(i) for i in order[start : start + shard_size]]
        shards.append(Shard(shard_id, _batches(members, costs, budget, max_batch)))
    return ShardPlan(tuple(shards), tuple(float(c) for c in costs))


def _batches(
    members: list[int], costs: Sequence[float], budget: float, max_batch: int | None
) -> tuple[tuple[int, ...], ...]:
    # Members come sorted by (roughly) cost; the padded cost of a batch is its size times
    # its longest member.
    batches: list[tuple[int, ...]] = []
    current: list[int] = []
    longest = 0.0
    for index in members:
        cost = float(costs[index])
        full = len(current) == max_batch or (len(current) + 1) * max(longest, cost) > budget
        if current and full:
            batches.append(tuple(current))
            current, longest = [], 0.0
        current.append(index)
        longest = max(longest, cost)
    if current:
        batches.append(tuple(current))
    return tuple(batches)


def audio_seconds(paths: Sequence[AudioSource | None]) -> list[float]:
    """Seconds of each file from its header (a clip's own); 0 for a missing or unreadable
    one (it fails with its reason when decoded)."""
    return [_header_seconds(path) for path in paths]


def _header_seconds(path: AudioSource | None) -> float:
    if path is None:
        return 0.0
    if isinstance(path, Clip):
        return path.end - path.start
    try:
        return audio_info(path).seconds
    except AudioError:
        return 0.0


def estimate_bytes(attrs: dict, costs: Sequence[float]) -> int:
    """Bytes of a feature set's data: frames (audio), tokens (text) or 1 row (functionals)
    per utterance of `cost` (seconds or tokens), x dim x bytes per value, plus offsets."""
    level = attrs.get("level")
    if level == "utterance":
        rows = len(costs)
    elif level == "frame":
        shift = float(attrs.get("frame_shift") or 0.02)
        # An encoder's frames are at most one per shift plus one (a centred window's last)
        rows = sum(math.floor(cost / shift) + 1 for cost in costs)
    else:
        rows = sum(int(cost) for cost in costs)
    width = np.dtype(str(attrs.get("dtype", "float32"))).itemsize
    return rows * int(attrs["dim"]) * width + 8 * (len(costs) + 1)


# What a set's files hold beside its rows, an upper bound: each staged shard's header,
# offsets and receipt; the laid-out set's metadata, offsets and failure arrays.
SHARD_FILES = 1024
SET_FILES = 8192


def peak_bytes(
    passes: Sequence[Sequence[int]],
    shards: Sequence[int],
    placed: Sequence[Sequence[bool]] | None = None,
) -> int:
    """The most disk the feature sets take at once, by the estimated bytes of each pass's
    sets (`estimate_bytes`) and its `shards`: a pass stages all its shards, then lays
    each set out beside them before its shards go, so pass k peaks at the sets of the
    passes before it, its staged shards and its laid-out sets (as many bytes again). A
    set `placed` (its rows written straight into the store) stages its records alone.

    >>> peak_bytes([[100, 50]], [1]) == 2 * (100 + 50) + 2 * (SHARD_FILES + SET_FILES)
    True
    >>> files = 2 * (SHARD_FILES + SET_FILES)
    >>> peak_bytes([[100, 50]], [1], [[True, False]]) == 100 + 2 * 50 + files
    True
    """
    peak, before = 0, 0
    for k, (sizes, count) in enumerate(zip(passes, shards, strict=True)):
        ours = placed[k] if placed is not None else [False] * len(sizes)
        rows = sum(size for size, put in zip(sizes, ours, strict=True) if not put)
        staged = rows + len(sizes) * count * SHARD_FILES
        laid_out = sum(sizes) + len(sizes) * SET_FILES
        peak = max(peak, before + staged + laid_out)
        before += laid_out
    return peak


# An utterance is said to be far longer than its corpus's when it is both this many times
# the median and over this many seconds: batches are padded to their longest member, so
# one 10-minute utterance among 2-5 s ones made an MSMSER epoch take 98 s, not 40.
LONG_FACTOR = 10.0
LONG_SECONDS = 60.0


def long_utterances(ids: Sequence[str], seconds: Sequence[float]) -> list[str]:
    """A warning line for each utterance far longer than the others (`LONG_FACTOR` x the
    median and over `LONG_SECONDS`): it is kept, and what it costs is said.

    >>> print(long_utterances(["a", "b", "c"], [2.0, 3.0, 600.0])[0][:52])
    c is 600.0 s long, 200x the corpus's median of 3.0 s
    """
    known = [s for s in seconds if s > 0]
    if not known:
        return []
    median = statistics.median_high(known)
    return [
        f"{utt} is {length:.1f} s long, {length / median:.0f}x the corpus's median of "
        f"{median:.1f} s: it is kept, and every batch it joins is padded to its length in "
        "extraction and in training (a sequence model's epochs take longer); cut it, or leave "
        "it out of the corpus, if it is not meant as one utterance"
        for utt, length in zip(ids, seconds, strict=True)
        if length > LONG_SECONDS and length > LONG_FACTOR * median
    ]


#: A recording over LONG_SECONDS holding more than this share of a pass's audio, or over
#: STILL_SECONDS, is said before the pass: the progress counts utterances, and would stand
#: still while it is extracted (minutes, on a CPU, for a recording of an hour), so it is
#: said under way then (`ser.extract.progress.Underway`).
STILL_SHARE = 0.25
STILL_SECONDS = 300.0


def still_indices(seconds: Sequence[float], indices: Sequence[int]) -> list[int]:
    """Those of the utterances `indices` that hold so much of a pass's audio that its
    progress (by utterances) would stand still on them.

    >>> still_indices([2.0, 3.0, 2400.0], [0, 1, 2])
    [2]
    """
    total = sum(max(seconds[i], 0.0) for i in indices)
    most = max(LONG_SECONDS, min(STILL_SECONDS, STILL_SHARE * total))
    return [i for i in indices if seconds[i] > most]


def standing_still(
    ids: Sequence[str], seconds: Sequence[float], indices: Sequence[int], long: Sequence[int]
) -> str:
    """The line that says, before a pass over the utterances `indices`, which of them
    (`long`: `still_indices`', not empty) holds so much of its audio that the progress (by
    utterances) stands still on it.

    >>> standing_still(["a", "b", "c"], [2.0, 3.0, 2400.0], [0, 1, 2], [2])[:48]
    'c is 40:00 of audio, 100% of this pass: its prog'
    """
    said = ", ".join(f"{ids[i]} is {clock_time(seconds[i])} of audio" for i in long)
    share = sum(seconds[i] for i in long) / sum(max(seconds[i], 0.0) for i in indices)
    return (
        f"{said}, {share:.0%} of this pass: its progress counts utterances and stands still "
        "on a recording that long, so a line says how far it is while it is extracted "
        "(stopped, the run keeps what it finished)"
    )
