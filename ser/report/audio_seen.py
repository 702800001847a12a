"""`ser report`'s column of test audio seen in training: how many of a run's test
utterances have audio identical to an utterance on their fold's training side (the
record's `data.audio_seen`, `ser.train.audio_overlap`). Every run since audio prints
records it; the column is shown where some run of the table found any, so that tables
of runs without a repeated recording keep their shape.

>>> from ser.runs.data import AudioSeen, Data
>>> from ser.runs.record import RunRecord
>>> seen = AudioSeen(seen=1241, tested=1241, share=1.0)
>>> run = RunRecord("hubert", {}, "cross", (), data=Data(utterances=1241, audio_seen=seen))
>>> audio_seen_label(run)
'1241/1241 (100.0 %)'
"""

from __future__ import annotations

from ser.runs.data import AudioSeen
from ser.runs.record import RunRecord

HEADER = {"md": "test audio seen in training", "csv": "audio_seen"}
LEGEND = (
    " test audio seen in training: test utterances whose audio (a hash of its decoded "
    "samples, made at extraction) is that of an utterance on their fold's training side "
    "(cross-corpus: of --store), of those tested; ? where a store predates audio prints."
)


def audio_seen(run: RunRecord) -> AudioSeen | None:
    """The run's check of its test audio against its training side, None for a run
    recorded before it."""
    return run.data.audio_seen if run.data else None


def audio_seen_label(run: RunRecord) -> str:
    """``3/120 (2.5 %)``; ``?`` where a store had no prints; "" without the check."""
    seen = audio_seen(run)
    if seen is None:
        return ""
    if seen.seen is None:
        return "?"
    shown = f"{seen.seen}/{seen.tested} ({100 * (seen.share or 0.0):.1f} %)"
    return shown + (" allowed" if seen.allowed else "")


def add_column(runs: list[RunRecord], header: list[str], cells: list[list[str]], fmt: str) -> str:
    """The column appended to `header` and each run's `cells` where some run found test
    audio on its training side; the legend's sentence for it ("" without the column)."""
    if not any((seen := audio_seen(run)) and seen.seen for run in runs):
        return ""
    header.append(HEADER[fmt])
    for run, row in zip(runs, cells, strict=True):
        row.append(audio_seen_label(run) or ("" if fmt == "csv" else "-"))
    return LEGEND
