"""How long a file `ser predict` takes as one utterance without `--segment`: far longer
than anything the run trained on says nothing useful averaged into one row. And how
short: a file under `SHORTEST` is refused, with or without `--segment`.

The limit is `FACTOR` times the run's longest training utterance, at least `FLOOR`: the
longest utterance of the store its record names (its manifest's `duration` column; a
run's record keeps no lengths, so every record stays as it was), else, for a run whose
store moved or is gone, the fixed `LONGEST_UTTERANCE`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser.errors import SerError
from ser.runs.record import RECORD, read

#: A file over this many times the longest training utterance is refused.
FACTOR = 2.0
#: ... unless it is shorter than this (seconds): a sentence of a corpus of short clips is
#: still an utterance.
FLOOR = 30.0
#: The limit for a run whose store is not there (seconds):
#: well above any corpus's utterances (IEMOCAP's longest: ~35 s).
LONGEST_UTTERANCE = 60.0

#: A file shorter than this (seconds) is refused: a syllable at most, where a corpus's
#: utterances are words or sentences; the encoders would take it (HuBERT's least is 25 ms)
#: and give an emotion as confident as any.
SHORTEST = 0.25


def too_short(duration: float) -> str | None:
    """The refusal of a file of `duration` seconds; None when it is long enough, or
    empty (its decode says so)."""
    if not 0 < duration < SHORTEST:
        return None
    return f"too short to predict: {duration:.2f} s of audio, under the {SHORTEST:g} s ser takes"


@dataclass(frozen=True)
class Limit:
    """The longest file predicted whole (`seconds`), and what it comes from."""

    seconds: float
    longest: float | None = None  # the run's longest training utterance, when known
    source: str = "fixed"  # "store" | "fixed"

    def refusal(self, duration: float) -> str:
        why = (
            f"{FACTOR:g} x the longest utterance the run trained on, {self.longest:.1f} s"
            if self.longest is not None and self.seconds > FLOOR
            else "far longer than an utterance"
        )
        return (
            f"{duration:.0f} s is over {self.seconds:.0f} s ({why}): predict it in windows "
            "with --segment fixed:SECONDS (e.g. fixed:5) or --segment vad"
        )


def limit_of(longest: float | None, source: str) -> Limit:
    if longest is None or not math.isfinite(longest) or longest <= 0:
        return Limit(LONGEST_UTTERANCE)
    return Limit(max(FACTOR * longest, FLOOR), longest, source)


def run_limit(run_dir: Path) -> Limit:
    """The limit of the run in `run_dir` (module docstring)."""
    try:
        record = read(run_dir / RECORD)
    except (SerError, OSError):
        return Limit(LONGEST_UTTERANCE)
    return limit_of(_store_longest(record.store), "store")


def _store_longest(store: str | None) -> float | None:
    """The longest utterance of the store at `store` (None: not there, or no lengths)."""
    if not store or not Path(store).exists():
        return None
    from ser.cache import FeatureStore

    try:
        durations = np.asarray(FeatureStore.open(store).manifest.column("duration"), float)
    except (SerError, OSError, KeyError, ValueError):
        return None
    return float(np.nanmax(durations)) if durations.size else None
