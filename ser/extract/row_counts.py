"""Each utterance's row count in a feature set, known before its extractor runs.

An audio set's count comes from the file's header (`ser.corpus.audio.decoded_length`:
the samples as decoded, cut to the utterance's clip and resampled to the extractor's
rate), a view's change of length (`View.length`), and the extractor's own arithmetic
(`Extractor.row_count`: the wav2vec2 family's conv strides, Whisper's 30 s windows,
log-mel's hop, one row of openSMILE functionals or of a pooled set); a text set's from
its tokenizer (`Extractor.lengths`). With them a set's offsets are fixed before any row
is computed, so a batch's rows have their place in the set from the start, whatever
order the batches run in (`ser.cache.scattered` writes them there).

A count only running the extractor tells (a header that does not count its samples
exactly: MP3, Ogg, the formats FFmpeg decodes) is `UNKNOWN`. A failure the header cannot
foresee (audio that does not decode, NaN output) gives no rows whatever was predicted.

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

from ser.corpus.audio import AudioError, Clip, audio_info, decoded_length
from ser.extract.base import Extractor, FeatureSetSpec, Level
from ser.extract.views import Viewed

#: The count of an utterance whose rows only running the extractor tells.
UNKNOWN = -1

# What the runner hands an extractor per utterance (`ser.extract.shards.Source`).
Source = Path | Clip | Viewed | str | None


def predicted_rows(extractor: Extractor, level: Level, sources: Sequence[Source]) -> np.ndarray:
    """[n_utt] int64: the rows each of `sources` will give a set of `level` of
    `extractor`; 0 where it fails for its absence or its length, `UNKNOWN` where only
    running the extractor tells."""
    if extractor.modality == "text":
        return _text_rows(extractor, level, sources)
    return np.array([_audio_rows(extractor, level, source) for source in sources], np.int64)


def predicted_sets(
    extractor: Extractor, specs: Sequence[FeatureSetSpec], sources: Sequence[Source]
) -> dict[str, np.ndarray]:
    """`predicted_rows` of each of `specs` (by name), worked out once per level."""
    levels: dict[str, np.ndarray] = {}
    for spec in specs:
        level = spec.attrs["level"]
        if level not in levels:
            levels[level] = predicted_rows(extractor, level, sources)
    return {spec.name: levels[spec.attrs["level"]] for spec in specs}


def _audio_rows(extractor: Extractor, level: Level, source: Source) -> int:
    if source is None or isinstance(source, str):
        return 0  # no audio: the runner fails it before decoding
    rate = extractor.sample_rate or 16000
    audio = source.audio if isinstance(source, Viewed) else source
    n = decoded_length(audio, rate)
    if n is None:
        return UNKNOWN
    if isinstance(source, Viewed):
        n = source.view.length(n, rate)
    elif _too_long_by_header(extractor, source):
        return 0
    if n == 0 or extractor.too_long(n / rate):  # as `check_lengths` sees the decoded audio
        return 0
    rows = extractor.row_count(n, level)
    return UNKNOWN if rows is None else rows


def _too_long_by_header(extractor: Extractor, source: Path | Clip) -> bool:
    """Whether the runner refuses `source` by its header before decoding it
    (`shards.decode`: a clip's span, a file's declared length)."""
    if extractor.length_limit() is None:
        return False
    if isinstance(source, Clip):
        return extractor.too_long(source.end - source.start) is not None
    try:
        return extractor.too_long(audio_info(source).seconds) is not None
    except AudioError:
        return False  # unreadable: a failure either way, said when it is decoded


def _text_rows(extractor: Extractor, level: Level, sources: Sequence[Source]) -> np.ndarray:
    """Token rows (an empty transcript still has its start and end tokens), or one row of
    a pooled set; 0 for no transcript (ASR failed on it)."""
    texts = [source for source in sources if isinstance(source, str)]
    tokens = iter(extractor.lengths(texts) if texts else [])
    rows = []
    for source in sources:
        count = next(tokens) if isinstance(source, str) else 0
        rows.append(count if level == "token" or count == 0 else 1)
    return np.array(rows, np.int64)
