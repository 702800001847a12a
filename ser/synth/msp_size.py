"""MSP-Podcast at the real corpus's size, without its audio (`ser demo-corpus --layout
msp-podcast --utterances N` or `--hours H`): what reading, extraction planning, a store's
bytes and a streamed epoch cost at its shape, measured without 230 hours of wavs.

It writes `Labels/labels_consensus.csv` of N rows as release 1.11 has them (its class
mix, splits and share of `Unknown` speakers, rounded: `SHARES`, `SPLIT_SHARES`) and
`Labels/durations.csv` (`FileName,seconds`: each utterance's length, drawn from the
release's 2.75-11 s segments, mean ~5.5 s), and no `Audios/`: reading it lists every wav
as missing, and a frame set imported at those lengths stands in for extraction's.

>>> import tempfile
>>> written = write_msp_size(Path(tempfile.mkdtemp()) / "MSP", utterances=300)
>>> written.utterances, written.root.joinpath("Labels", "durations.csv").exists()
(300, True)
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np

from ser.corpus.kind import Written
from ser.corpus.kinds import msp_podcast
from ser.errors import ConfigError
from ser.runtime.units import human_bytes
from ser.synth.acted import new_root

#: The consensus classes' shares of release 1.11's rows (X: no agreement), rounded.
SHARES = {"N": 0.30, "X": 0.28, "H": 0.17, "A": 0.07, "S": 0.05, "C": 0.05, "U": 0.03,
          "O": 0.02, "D": 0.02, "F": 0.01}  # fmt: skip
#: Its splits' shares (Train, Development, Test1, Test2), rounded.
SPLIT_SHARES = {"Train": 0.56, "Development": 0.13, "Test1": 0.21, "Test2": 0.10}
UNKNOWN_SHARE = 0.2  # rows whose speaker the release does not know
PER_SPEAKER = 60  # utterances of each known speaker, about
SECONDS = (2.75, 11.0)  # the release's segments: at least, at most
MEAN_SECONDS = 5.5  # theirs on average, as drawn here
DURATIONS = "durations.csv"
#: The most utterances written: 37 times release 1.11's 270,000 (about 15,000 hours),
#: 0.9 GB of CSV drawn in under 1 GB of memory (`--hours 1e9` asked numpy for 9.52 TiB).
MAX_UTTERANCES = 10_000_000
ROW_BYTES = 93  # a row's bytes in the two CSVs, measured


def durations(rng: np.random.Generator, utterances: int | None, hours: float | None) -> np.ndarray:
    """Seconds of `utterances` segments, or of as many as make `hours`."""
    if (utterances is None) == (hours is None):
        raise ConfigError("give the size as --utterances or --hours, one of them")
    if hours is not None:
        if not hours > 0:
            raise ConfigError(f"--hours must be positive, got {hours}")
        count = int(hours * 3600 / SECONDS[0]) + 1  # more than enough, cut below
    elif utterances is not None and utterances < 1:
        raise ConfigError(f"--utterances must be positive, got {utterances}")
    else:
        count = int(utterances or 0)
    low, high = SECONDS
    seconds = np.round(np.clip(low + rng.gamma(2.0, 1.4, count), low, high), 2)
    if hours is not None:
        seconds = seconds[: int(np.searchsorted(np.cumsum(seconds), hours * 3600)) + 1]
    return seconds


def check_size(out: Path, utterances: int | None, hours: float | None) -> None:
    """`ConfigError` in one line, before anything is drawn or written, for a size beyond
    `MAX_UTTERANCES` or beyond the free space where `out` goes."""
    rows = utterances if utterances is not None else int((hours or 0) * 3600 / MEAN_SECONDS)
    asked = (
        f"--utterances {utterances:,}"
        if utterances is not None
        else f"--hours {hours:g} (about {rows:,} utterances)"
    )
    if rows > MAX_UTTERANCES:
        most = MAX_UTTERANCES * MEAN_SECONDS / 3600
        raise ConfigError(
            f"{asked} is beyond the {MAX_UTTERANCES:,} utterances (about {most:,.0f} hours) "
            "ser demo-corpus writes; MSP-Podcast 1.11 has about 270,000"
        )
    there = next(p for p in (out.absolute(), *out.absolute().parents) if p.exists())
    free, needed = shutil.disk_usage(there).free, rows * ROW_BYTES
    if needed > free:
        raise ConfigError(
            f"{asked} takes about {human_bytes(needed)} of labels and durations, and "
            f"{there} has {human_bytes(free)} free"
        )


def write_msp_size(
    out: Path, utterances: int | None = None, hours: float | None = None, seed: int = 0
) -> Written:
    """The labels and durations of an MSP-Podcast of `utterances` rows (or `hours`), no audio."""
    check_size(out, utterances, hours)
    rng = np.random.default_rng(seed)
    seconds = durations(rng, utterances, hours)
    n = len(seconds)
    root = new_root(out)
    (root / "Labels").mkdir()
    letters = rng.choice(list(SHARES), n, p=list(SHARES.values()))
    splits = rng.choice(list(SPLIT_SHARES), n, p=list(SPLIT_SHARES.values()))
    unknown = rng.random(n) < UNKNOWN_SHARE
    ratings = np.round(rng.uniform(1.0, 7.0, (n, 3)), 1)
    names = [f"MSP-PODCAST_{i // 40:04d}_{i % 40:04d}.wav" for i in range(n)]
    speakers = set()
    with (root / msp_podcast.LABELS).open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(msp_podcast.COLUMNS)
        for i, name in enumerate(names):
            speaker = msp_podcast.UNKNOWN if unknown[i] else str(1 + i // PER_SPEAKER)
            speakers.add(speaker)
            gender = "" if unknown[i] else ("Female", "Male")[(i // PER_SPEAKER) % 2]
            a, v, d = ratings[i]
            writer.writerow([name, letters[i], a, v, d, speaker, gender, splits[i]])
    with (root / "Labels" / DURATIONS).open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["FileName", "seconds"])
        writer.writerows(zip(names, seconds.tolist(), strict=True))
    detail = f"({seconds.sum() / 3600:.1f} h, durations only: no audio)"
    return Written(root.resolve(), n, len(speakers), detail)
