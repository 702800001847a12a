"""Each utterance's row count in a feature set, known before its extractor runs.

An audio set's count comes from the file's header (`ser.corpus.audio.decoded_length`:
the samples as decoded, cut to the utterance's clip and resampled to the extractor's
rate) or, where the header cannot say it exactly (MP3, Ogg, the formats FFmpeg decodes),
from the audio counted by decoding it as the loader does (`lengths`,
`ser.extract.decoded_lengths`; then resampled), a view's change of length
(`View.length`), and the extractor's own arithmetic (`Extractor.row_count`: the wav2vec2
family's conv strides, Whisper's 30 s windows, log-mel's hop, one row of openSMILE
functionals or of a pooled set); a text set's from its tokenizer (`Extractor.lengths`).
With them a set's offsets are fixed before any row is computed, so a batch's rows have
their place in the set from the start, whatever order the batches run in
(`ser.cache.scattered` writes them there).

A count only running the extractor tells (an extractor without `row_count`, audio whose
header cannot say its length and that was not counted) is `UNKNOWN`. A failure the count
cannot foresee (a WAV whose data goes bad after its header, NaN output) gives no rows
whatever was predicted; audio counted by decoding it that does not decode counts 0.

>>> import tempfile, soundfile
>>> from pathlib import Path
>>> from ser.extract.logmel import LogmelExtractor
>>> wav = Path(tempfile.mkdtemp()) / "a.wav"
>>> soundfile.write(wav, np.zeros(8000, np.float32), 16000)
>>> predicted_rows(LogmelExtractor(), "frame", [wav, None]).tolist()
[51, 0]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ser.corpus.audio import (
    AudioError,
    AudioInfo,
    Clip,
    Lengths,
    audio_info,
    exact_info,
    length_by_header,
    source_path,
)
from ser.extract.base import Extractor, FeatureSetSpec, Level
from ser.extract.views import Viewed

#: The count of an utterance whose rows only running the extractor tells.
UNKNOWN = -1

# What the runner hands an extractor per utterance (`ser.extract.shards.Source`).
Source = Path | Clip | Viewed | str | None


def predicted_rows(
    extractor: Extractor, level: Level, sources: Sequence[Source], lengths: Lengths | None = None
) -> np.ndarray:
    """[n_utt] int64: the rows each of `sources` will give a set of `level` of
    `extractor`; 0 where it fails for its absence or its length, `UNKNOWN` where only
    running the extractor tells. `lengths`: audio whose header cannot say its length,
    counted by decoding it."""
    return _by_level(extractor, {level}, sources, lengths or {})[level]


def predicted_sets(
    extractor: Extractor,
    specs: Sequence[FeatureSetSpec],
    sources: Sequence[Source],
    lengths: Lengths | None = None,
) -> dict[str, np.ndarray]:
    """`predicted_rows` of each of `specs` (by name), each header read once for them all."""
    levels = {spec.attrs["level"] for spec in specs}
    counts = _by_level(extractor, levels, sources, lengths or {})
    return {spec.name: counts[spec.attrs["level"]] for spec in specs}


def _by_level(
    extractor: Extractor, levels: set[Level], sources: Sequence[Source], lengths: Lengths
) -> dict[Level, np.ndarray]:
    if extractor.modality == "text":
        tokens = _tokens(extractor, sources)
        return {
            level: np.array([_text_rows(level, n) for n in tokens], np.int64) for level in levels
        }
    samples = [_samples(extractor, source, lengths) for source in sources]
    return {
        level: np.array([_audio_rows(extractor, level, n) for n in samples], np.int64)
        for level in levels
    }


def _samples(extractor: Extractor, source: Source, lengths: Lengths) -> int | None:
    """The samples `source` decodes to at the extractor's rate (0: it fails for its
    absence or its length; None: neither its header nor `lengths` can say)."""
    if source is None or isinstance(source, str):
        return 0  # no audio: the runner fails it before decoding
    rate = extractor.sample_rate or 16000
    audio = source.audio if isinstance(source, Viewed) else source
    found = exact_info(source_path(audio))  # the one header read
    counted = lengths.get(audio)
    if found is not None:
        n = length_by_header(found, audio, rate)
    elif counted is not None:
        n = counted.at(rate)
    else:
        return None
    if isinstance(source, Viewed):
        n = source.view.length(n, rate)
    elif n and _refused_by_header(extractor, source, found):
        n = 0
    return 0 if extractor.too_long(n / rate) else n  # as `check_lengths` sees it decoded


def _refused_by_header(extractor: Extractor, source: Path | Clip, found: AudioInfo | None) -> bool:
    """Whether `shards.decode` refuses `source` for its length before decoding it: a
    clip's span, a file's seconds by its header (`found`, or read as the runner reads
    it where the header is not exact; unreadable, it fails)."""
    if extractor.length_limit() is None:
        return False
    if isinstance(source, Clip):
        seconds = source.end - source.start
    elif found is not None:
        seconds = found.seconds
    else:
        try:
            seconds = audio_info(source).seconds
        except AudioError:
            return True
    return extractor.too_long(seconds) is not None


def _audio_rows(extractor: Extractor, level: Level, n: int | None) -> int:
    if n is None:
        return UNKNOWN
    if n == 0:
        return 0
    rows = extractor.row_count(n, level)
    return UNKNOWN if rows is None else rows


def _tokens(extractor: Extractor, sources: Sequence[Source]) -> list[int]:
    """Each transcript's tokens, its start and end tokens among them (an empty one has
    those two); 0 for no transcript (ASR failed on it)."""
    texts = [source for source in sources if isinstance(source, str)]
    tokens = iter(extractor.lengths(texts) if texts else [])
    return [next(tokens) if isinstance(source, str) else 0 for source in sources]


def _text_rows(level: Level, tokens: int) -> int:
    """A token set's rows, or a pooled set's one."""
    return tokens if level == "token" or tokens == 0 else 1
