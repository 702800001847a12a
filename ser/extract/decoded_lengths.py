"""The lengths of audio whose header cannot say them exactly (MP3 and Ogg, whose length
libsndfile may estimate, and every format FFmpeg decodes: `ser.corpus.decode.EXACT_FORMATS`
are the others), counted by decoding it as the loader does (`ser.corpus.audio.count_decoded`),
so that its sets' row counts are known before extraction (`row_counts`) and their rows
are written once, at their place.

Decoding is dear beside a GPU's encoder (MELD's AAC 4 ms an audio second, up to 6x
HuBERT-base on an H200: benchmarks/README.md, "How fast are MELD's clips, MP3 and Ogg
decoded"), so `ser extract` takes most lengths from a decode it makes anyway: the audio
prints decode the utterances' audio before the passes (`ser.extract.audio_prints`).
`count_lengths` decodes what they left (audio that gave no print before, which no check
decodes), each source once, on the process's cores; a clip is decoded by its span as the
loader decodes it, so the clips of one file decode it about once between them. A source
that does not decode counts 0: the runner fails it, as it fails a missing file. The pass
shows its progress as a corpus read shows its passes (`ser.runtime.progress.read_progress`:
count, rate, ETA; nothing under -q).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console

from ser.corpus.audio import AudioSource, Lengths, count_decoded, exact_info, source_path
from ser.extract.row_counts import Source
from ser.extract.views import Viewed
from ser.runtime.progress import read_progress
from ser.runtime.threads import cpu_budget

#: The pass's name, as its progress shows it.
AUDIO_LENGTHS = "audio lengths"


def count_lengths(
    sources: Sequence[Source], known: Lengths, console: Console, shown: bool = True
) -> Lengths:
    """`known` and the length of each of `sources`' audio (a view's: its audio's) whose
    header cannot say it exactly and that `known` lacks, counted by decoding it; its
    progress on `console` unless not `shown`."""
    todo = uncounted(sources, known)
    if not todo:
        return known
    lengths = dict(known)
    workers = max(1, min(8, cpu_budget().cores))  # libsndfile and FFmpeg let go of the GIL
    with read_progress(console, shown) as told, ThreadPoolExecutor(workers) as pool:
        for done, length in enumerate(pool.map(count_decoded, todo), start=1):
            lengths[todo[done - 1]] = length
            if told is not None:
                told(AUDIO_LENGTHS, done, len(todo))
    return lengths


def uncounted(sources: Sequence[Source], known: Lengths) -> list[AudioSource]:
    """The audio of `sources`, each once, whose length neither its header says exactly
    nor `known` holds."""
    exact: dict[Path, bool] = {}  # a file's header read once, however many clips it holds
    todo: dict[AudioSource, None] = {}
    for source in sources:
        audio = source.audio if isinstance(source, Viewed) else source
        if audio is None or isinstance(audio, str) or audio in known or audio in todo:
            continue
        path = source_path(audio)
        if path not in exact:
            exact[path] = exact_info(path) is not None
        if not exact[path]:
            todo[audio] = None
    return list(todo)
