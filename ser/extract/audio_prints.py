"""Audio prints: a hash of each utterance's decoded samples, kept in the store's manifest
(`AUDIO_PRINT`), so that a run finds test audio identical to training audio
(`ser.train.audio_overlap`) without reading any audio.

A print is blake2b (16 bytes, hex) of the file's rate and its samples as `load_audio`
decodes them, mono float32, little-endian, at the file's own rate: never resampled, so
the print depends on the samples alone and not on a resampler's arithmetic (which may
differ between machines). The same recording in another container or folder layout gives
the same print wherever its decoded samples are the same: a WAV and its FLAC, 16-bit
and 24-bit or float PCM of the same values, a mono file and a stereo one with both
channels equal. A lossy re-encoding, a resampled, trimmed or gain-changed copy gives
another print: such a copy is not found.

`ser extract` prints a store's utterances once, when its manifest lacks the column (a new
store, or one made before prints: the cheap way to give an older store its prints) and,
under --repair, those that have none yet (their audio could not be read before).
Where a print cannot be made (audio missing or unreadable) it is "" and the utterance is
left out of the comparison; the feature sets name the reason. Before an audio set is
extracted into a store that has its prints, they are made again and compared
(`refuse_changed_audio`): sets from two versions of the corpus never share a store.
Either way the audio is decoded here before any set is extracted (all but that of
utterances whose print could not be made before), so the length each decoded to comes
back with the prints (`Lengths`): the exact row counts of audio whose header cannot say
its length (MP3, Ogg, FFmpeg's formats: `ser.extract.decoded_lengths`), for nothing more.

>>> import tempfile, numpy as np, soundfile
>>> folder = Path(tempfile.mkdtemp())
>>> wave = (np.arange(1600) % 50 * 300).astype(np.int16)  # 16-bit PCM
>>> soundfile.write(folder / "a.wav", wave, 16000)
>>> soundfile.write(folder / "b.flac", np.stack([wave, wave], axis=1), 16000)
>>> audio_print(folder / "a.wav") == audio_print(folder / "b.flac")
True
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from rich.console import Console

from ser.cache import FeatureStore
from ser.cache.manifest import AUDIO_PRINT
from ser.corpus.audio import AudioError, AudioSource, Counted, Lengths, decode_mono
from ser.errors import StoreError
from ser.extract.shards import audio_sources
from ser.runtime.progress import task_bar
from ser.runtime.threads import cpu_budget


def audio_print(source: AudioSource) -> str:
    """The print of `source` (a file, or a clip of one); `AudioError` naming the file
    when it cannot be read."""
    return _print_of(*decode_mono(source))  # at the file's own rate: not resampled


def _print_of(samples: np.ndarray, rate: int) -> str:
    """The print of `[n]` float32 mono `samples` at `rate`."""
    digest = hashlib.blake2b(f"{rate}:".encode(), digest_size=16)
    digest.update(samples.astype("<f4", copy=False).tobytes())
    return digest.hexdigest()


def _printed(source: AudioSource | None) -> tuple[str, Counted]:
    """The print of `source` ("" for none) and its length as decoded (0: none): a
    length the row counts need where a header cannot say it, got here for nothing."""
    if source is None:
        return "", Counted(0, 0)
    try:
        samples, rate = decode_mono(source)
    except AudioError:  # the feature sets record why; the comparison leaves it out
        return "", Counted(0, 0)
    return _print_of(samples, rate), Counted(rate, len(samples))


def prints_to_make(store: FeatureStore, repair: bool) -> list[int]:
    """The manifest rows `ser extract` prints: all where the manifest has no prints yet,
    under --repair those without one."""
    if AUDIO_PRINT not in store.manifest.names:
        return list(range(len(store.manifest)))
    if not repair:
        return []
    return [i for i, p in enumerate(store.manifest.column(AUDIO_PRINT).tolist()) if not p]


def add_prints(
    store: FeatureStore, root: Path, console: Console, repair: bool = False, bar: bool = True
) -> Lengths:
    """Print the rows `prints_to_make` names and write them into the store's manifest
    (in one step: a killed run prints them again), saying how many and how long (and,
    with `bar`, how far as it goes); the lengths of the audio it decoded."""
    rows = prints_to_make(store, repair)
    if not rows:
        return {}
    started = time.perf_counter()
    sources = audio_sources(store.manifest, root)
    made, lengths = _prints([sources[i] for i in rows], console if bar else None)
    prints = (
        store.manifest.column(AUDIO_PRINT).tolist()
        if AUDIO_PRINT in store.manifest.names
        else [""] * len(store.manifest)
    )
    for row, value in zip(rows, made, strict=True):
        prints[row] = value
    store.add_derived_column(AUDIO_PRINT, prints)
    missing = sum(not p for p in made)
    console.print(
        f"audio prints: {len(rows) - missing} of {len(rows)} utterances "
        f"({time.perf_counter() - started:.1f} s)"
        + (f"; {missing} without one (audio missing or unreadable)" if missing else "")
    )
    return lengths


def refuse_changed_audio(
    store: FeatureStore, root: Path, begun_before: set[str], console: Console | None = None
) -> Lengths:
    """StoreError when an utterance's audio no longer gives the print the store keeps: a
    set extracted now would come from other audio than the sets already there. Only
    those with a print that still read are compared (a missing file fails on its own).
    The sets begun since `begun_before` (the store's sets then) are taken out with the
    refusal: nothing was written into them. `console`: where the prints' bar goes. The
    lengths of the audio it decoded."""
    held = store.manifest.column(AUDIO_PRINT).tolist()
    rows = [i for i, p in enumerate(held) if p]
    sources = audio_sources(store.manifest, root)
    now, lengths = _prints([sources[i] for i in rows], console, "audio check")
    ids = store.manifest.utt_ids
    changed = [str(ids[i]) for i, p in zip(rows, now, strict=True) if p and p != held[i]]
    if changed:
        for name in sorted(set(store.feature_sets()) - begun_before):
            store.delete_feature_set(name)
        some = ", ".join(changed[:3]) + (
            f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        )
        raise StoreError(
            f"{store.path}: the audio of {len(changed)} utterance(s) in {root} changed since "
            f"the store was made ({some}): its feature sets came from the audio before. "
            "Extract into a new --store to have every set from the audio as it is now"
        )
    return lengths


def _prints(
    sources: Sequence[AudioSource | None],
    console: Console | None = None,
    label: str = "audio prints",
) -> tuple[list[str], Lengths]:
    """Each source's print ("" for none), decoded on the process's cores (libsndfile,
    FFmpeg and blake2b let go of Python's lock while they work), and the length each
    decoded to; shown on `console` (None or quiet: nowhere) as a bar of utterances,
    `label`, as a corpus's audio takes minutes."""
    workers = max(1, min(8, cpu_budget().cores))
    shown = console is not None and not console.quiet
    with ThreadPoolExecutor(workers) as pool, task_bar(console or Console(), shown) as bar:
        task = bar.add_task(label, total=len(sources))
        made, lengths = [], {}
        for source, (value, length) in zip(sources, pool.map(_printed, sources), strict=True):
            made.append(value)
            if source is not None:
                lengths[source] = length
            bar.advance(task, 1)
        return made, lengths
