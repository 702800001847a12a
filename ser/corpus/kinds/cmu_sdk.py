"""CMU-MOSI and CMU-MOSEI as the CMU-MultimodalSDK publishes them, read into segments: the
files' formats, not yet a corpus kind.

- Labels: a computational sequence (`.csd`, HDF5): one root group (`All Labels`, `Opinion
  Segment Labels`, ...) holding `data/<video>/intervals` [n, 2] (seconds) and
  `data/<video>/features` [n, k]: MOSEI's k = 7 (sentiment in [-3, 3], then happy, sad,
  anger, surprise, disgust, fear in [0, 3]), MOSI's k = 1 (sentiment). Or a plain CSV export
  of the same columns: `video,start,end,sentiment[,happy,...,fear]`.
- Transcripts: `Raw/Transcript/Segmented/Combined/<video>.txt`, a line per segment,
  `video___segment___start___end___text` (the text may itself hold `___`).
- Folds: the SDK's standard train / valid / test lists of video ids
  (`cmu_mosei_std_folds.py`, `cmu_mosi_std_folds.py`), shipped as `folds/<corpus>.json`
  with their source and licence.

A label row is matched to the transcript segment of its video whose (start, end) is the
same within `TOLERANCE` seconds; a row with none is a problem naming the transcript file.

>>> parse_transcript_line("abc___3___1.5___4.25___so ___ it goes", "abc.txt", 1)
TranscriptSegment(video='abc', segment='3', start=1.5, end=4.25, text='so ___ it goes')
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ser.corpus.records import Problem
from ser.corpus.text import read_lines
from ser.errors import CorpusError

#: MOSEI's label columns, in the `.csd` features' order.
MOSEI_COLUMNS = ("sentiment", "happy", "sad", "anger", "surprise", "disgust", "fear")
#: The six emotions whose intensity MOSEI rates (present when above 0).
EMOTIONS = MOSEI_COLUMNS[1:]
FOLDS = ("train", "valid", "test")
#: Seconds within which a label interval and a transcript segment are the same span (the
#: SDK writes both from the same segmentation, rounded differently).
TOLERANCE = 0.05
_SEPARATOR = "___"
#: What h5py raises for a file whose bytes are not HDF5's (cut short: OSError; overwritten
#: in its middle: RuntimeError or KeyError, from the damaged node it met).
_DAMAGED = (OSError, RuntimeError, KeyError, ValueError)


@dataclass(frozen=True)
class TranscriptSegment:
    """A line of a segmented transcript."""

    video: str
    segment: str
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class LabelRows:
    """One video's label rows: `intervals` [n, 2] seconds, `values` [n, k] in the label
    file's column order (`columns`)."""

    intervals: np.ndarray
    values: np.ndarray
    columns: tuple[str, ...]


@dataclass(frozen=True)
class StandardFolds:
    """The SDK's standard folds: fold name -> video ids in the SDK's order, and where
    they come from."""

    corpus: str
    source: str
    licence: str
    videos: dict[str, tuple[str, ...]]

    def fold_of(self) -> dict[str, str]:
        """Video id -> "train", "valid" or "test"."""
        return {v: name for name, ids in self.videos.items() for v in ids}


def standard_folds(corpus: str) -> StandardFolds:
    """The standard folds of "cmu-mosi" or "cmu-mosei", from the package's data."""
    name = corpus.replace("-", "_")
    text = resources.files("ser.corpus.kinds").joinpath(f"folds/{name}.json").read_text("utf-8")
    obj = json.loads(text)
    videos = {fold: tuple(obj[fold]) for fold in FOLDS}
    return StandardFolds(obj["corpus"], obj["source"], obj["licence"], videos)


def parse_transcript_line(line: str, path: str | Path, number: int) -> TranscriptSegment:
    """One `video___segment___start___end___text` line; `CorpusError` naming the file
    and line when it is not one."""
    parts = line.rstrip("\r\n").split(_SEPARATOR, 4)
    if len(parts) < 4:
        raise CorpusError(f"{path}, line {number}: not video___segment___start___end___text")
    video, segment, start, end = parts[:4]
    try:
        span = float(start), float(end)
    except ValueError as e:
        raise CorpusError(f"{path}, line {number}: start/end are not seconds ({e})") from e
    if not (math.isfinite(span[0]) and math.isfinite(span[1]) and span[0] < span[1]):
        raise CorpusError(f"{path}, line {number}: segment {start}-{end} s is not a span")
    text = parts[4].strip() if len(parts) == 5 else ""
    return TranscriptSegment(video, segment, span[0], span[1], text)


def read_transcript(path: Path, problems: list[Problem]) -> list[TranscriptSegment]:
    """A video's segmented transcript (blank lines skipped); a line not UTF-8 is read as
    Latin-1 and named in `problems` with its segment."""
    try:
        text = read_lines(path)
    except OSError as e:
        raise CorpusError(f"{path}: cannot read the transcript: {e.strerror or e}") from e
    numbered = [(n, parse_transcript_line(t, path, n)) for n, t in text.numbered() if t.strip()]
    problems.extend(text.problems({n: f"{s.video}_{s.segment}" for n, s in numbered}))
    return [segment for _, segment in numbered]


def read_labels(path: Path, problems: list[Problem]) -> dict[str, LabelRows]:
    """Video id -> its label rows, from a `.csd` or a CSV export (a line of it not UTF-8
    read as Latin-1 and named in `problems`)."""
    if path.suffix.lower() == ".csv":
        return _read_label_csv(path, problems)
    return _read_csd(path)


def label_columns(path: Path) -> tuple[str, ...]:
    """The label file's columns, read from its header (a CSV) or its first video (a
    `.csd`) alone; `CorpusError` when it is neither."""
    if path.suffix.lower() == ".csv":
        try:
            header = next(csv.reader(read_lines(path).lines[:1]), [])
        except (OSError, csv.Error) as e:
            raise CorpusError(f"{path}: cannot read the label CSV: {e}") from e
        return tuple(c for c in MOSEI_COLUMNS if c in header)
    import h5py

    try:
        with h5py.File(path, "r") as file:
            data = file[next(iter(file.keys()))]["data"]
            first = data[next(iter(data.keys()))]["features"]
            return _columns(path, int(np.prod(first.shape[1:])))
    except (*_DAMAGED, StopIteration) as e:
        raise damaged(path, e) from None


def _read_csd(path: Path) -> dict[str, LabelRows]:
    import h5py

    try:
        with h5py.File(path, "r") as file:
            roots = list(file.keys())
            if len(roots) != 1 or "data" not in file[roots[0]]:
                raise CorpusError(
                    f"{path}: not a computational sequence (one root group with data/)"
                )
            data = file[roots[0]]["data"]
            return {str(v): _csd_rows(path, v, data[v]) for v in data}
    except _DAMAGED as e:
        raise damaged(path, e) from None


def damaged(path: Path, error: Exception) -> CorpusError:
    """The error of a `.csd` that HDF5 cannot read: cut short by a download or copy that
    stopped, or overwritten."""
    return CorpusError(
        f"{path}: the labels file is damaged (not a readable HDF5 computational sequence: "
        f"{error}); download it again with the CMU-MultimodalSDK"
    )


def _csd_rows(path: Path, video: str, group: object) -> LabelRows:
    try:
        intervals = np.asarray(group["intervals"], dtype=np.float64)  # type: ignore[index]
        values = np.asarray(group["features"], dtype=np.float64)  # type: ignore[index]
    except (KeyError, TypeError, ValueError) as e:
        raise CorpusError(f"{path}: video {video!r} lacks intervals/features ({e})") from e
    if intervals.ndim != 2 or intervals.shape[1] != 2 or values.shape[:1] != intervals.shape[:1]:
        raise CorpusError(
            f"{path}: video {video!r} has intervals {intervals.shape} and features "
            f"{values.shape}: want [n, 2] and [n, k]"
        )
    values = values.reshape(len(values), -1)
    return LabelRows(intervals, values, _columns(path, values.shape[1]))


def _columns(path: Path, k: int) -> tuple[str, ...]:
    if k == len(MOSEI_COLUMNS):
        return MOSEI_COLUMNS
    if k == 1:
        return ("sentiment",)
    raise CorpusError(f"{path}: {k} label columns; CMU-MOSEI has 7, CMU-MOSI 1")


def _read_label_csv(path: Path, problems: list[Problem]) -> dict[str, LabelRows]:
    try:
        text = read_lines(path)
        rows = list(csv.DictReader(text.lines))
        header = tuple(rows[0].keys()) if rows else ()
    except (OSError, csv.Error) as e:
        raise CorpusError(f"{path}: cannot read the label CSV: {e}") from e
    problems.extend(text.problems())
    columns = tuple(c for c in MOSEI_COLUMNS if c in header)
    if not {"video", "start", "end"} <= set(header) or "sentiment" not in columns:
        raise CorpusError(f"{path}: a label CSV needs the columns video, start, end, sentiment")
    by_video: dict[str, list[list[float]]] = {}
    for n, row in enumerate(rows, 2):
        try:
            numbers = [float(row[c]) for c in ("start", "end", *columns)]
        except (TypeError, ValueError) as e:
            raise CorpusError(f"{path}, line {n}: not a number ({e})") from e
        by_video.setdefault(row["video"], []).append(numbers)
    return {
        video: LabelRows(np.array(v)[:, :2], np.array(v)[:, 2:], columns)
        for video, v in by_video.items()
    }


def match(rows: LabelRows, segments: list[TranscriptSegment]) -> list[TranscriptSegment | None]:
    """For each label row, the transcript segment of the same span (None: no such line)."""
    found: list[TranscriptSegment | None] = []
    for start, end in rows.intervals:
        gaps = [
            (abs(s.start - start) + abs(s.end - end), n)
            for n, s in enumerate(segments)
            if abs(s.start - start) <= TOLERANCE and abs(s.end - end) <= TOLERANCE
        ]
        found.append(segments[min(gaps)[1]] if gaps else None)
    return found
