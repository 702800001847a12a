"""Synthetic corpora in the layouts of the acted corpora, CREMA-D and RAVDESS, and a
manifest beside either: the IEMOCAP generator's speech-like audio (`ser.synth.audio`),
its prosody following the file's emotion, so that every corpus kind is read, extracted
and trained on end to end without the licensed data. Tiny by default; a seed gives the
same bytes.

Quirks kept: CREMA-D's one empty file (its last actor's `MTI_SAD_XX`, as 1076's in the
release) and `VideoDemographics.csv`; RAVDESS's neutral has no strong intensity.

>>> import tempfile
>>> truth = write_crema_d(Path(tempfile.mkdtemp()) / "CREMA-D", ActedConfig(actors=2))
>>> len(truth.files), truth.empty
(25, ('1002_MTI_SAD_XX',))
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from ser.corpus.kind import ActedConfig
from ser.corpus.kinds import crema_d, ravdess
from ser.errors import CorpusError
from ser.synth import audio

#: RAVDESS's calm, which IEMOCAP lacks: neutral's pitch, slower and laxer.
CALM = audio.Prosody(0.97, 0.08, 0.9, -2.5, 0.12, 0.08, 0.18, 0.0)


#: What `write_crema_d` and `write_ravdess` write unless told: 6 actors, 2 sentences.
ACTED = ActedConfig()


@dataclass(frozen=True)
class ActedTruth:
    """What was written: per utterance id its (label code, speaker); `empty`: ids whose
    wav holds no samples (a problem the reader reports)."""

    root: Path
    files: dict[str, tuple[str, str]]
    empty: tuple[str, ...] = ()


def write_crema_d(out: Path, config: ActedConfig = ACTED) -> ActedTruth:
    """`out/AudioWAV/<actor>_<sentence>_<EMO>_<level>.wav` and `VideoDemographics.csv`
    (the kind's writer, `ser.corpus.kinds.crema_d.write_synthetic`)."""
    files, empty = crema_d.write_synthetic(out, MAKER, config)
    return ActedTruth(out.resolve(), files, (empty,))


def write_ravdess(out: Path, config: ActedConfig = ACTED) -> ActedTruth:
    """`out/Actor_XX/03-01-EE-II-SS-01-XX.wav` (the kind's writer,
    `ser.corpus.kinds.ravdess.write_synthetic`)."""
    return ActedTruth(out.resolve(), ravdess.write_synthetic(out, MAKER, config))


def write_manifest(truth: ActedTruth, path: Path, splits: bool = True) -> Path:
    """A manifest CSV of `truth`'s files (wav relative to it), speakers split by actor:
    the last actor test, the one before dev, the rest train (`splits`)."""
    speakers = sorted({speaker for _, speaker in truth.files.values()})
    split = {s: "train" for s in speakers} | {speakers[-1]: "test", speakers[-2]: "dev"}
    wavs = {p.stem: p for p in truth.root.rglob("*.wav")}
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["utt_id", "wav", "label", "speaker", *(["split"] if splits else [])])
        for utt_id, (label, speaker) in sorted(truth.files.items()):
            wav = Path(os.path.relpath(wavs[utt_id], path.parent.resolve()))
            writer.writerow(
                [utt_id, wav.as_posix(), label, speaker, *([split[speaker]] if splits else [])]
            )
    return path


def new_root(out: Path) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CorpusError(
            f"{out} is not empty: a synthetic corpus is written only into a new or empty folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def voice_of(seed: int, actor: int, gender: str) -> audio.Voice:
    rng = np.random.default_rng([seed, 11, actor])
    channel = (
        float(rng.normal(0.0, 2.0)),
        float(rng.uniform(-0.3, 0.5)),
        float(rng.uniform(-56, -42)),
    )
    return audio.draw_voice(rng, gender, channel)


def write_wav(
    path: Path,
    rng: np.random.Generator,
    voice: audio.Voice,
    code: str,
    seconds: tuple[float, float],
) -> None:
    """A wav of `code`'s prosody (contempt: disgust's; no agreement: other's), its length
    drawn from `seconds`."""
    soundfile.write(path, speech(rng, voice, code, seconds), audio.SAMPLE_RATE)


def speech(
    rng: np.random.Generator, voice: audio.Voice, code: str, seconds: tuple[float, float]
) -> np.ndarray:
    """`write_wav`'s samples, mono `[n]` at `audio.SAMPLE_RATE`."""
    return utterance(rng, voice, code, seconds)[1]


def utterance(
    rng: np.random.Generator,
    voice: audio.Voice,
    code: str,
    seconds: tuple[float, float],
    intensity: float = 1.0,
) -> tuple[audio.Prosody, np.ndarray]:
    """The prosody drawn for an utterance of `code` shown at `intensity` (0 neutral .. 1
    its full profile) and its samples (`speech`)."""
    code = {"con": "dis", "xxx": "oth"}.get(code, code)
    prosody = CALM if code == "cal" else audio.utterance_prosody(rng, code, intensity, voice)
    length = float(rng.uniform(*seconds))
    return prosody, audio.synthesize(rng, length, voice, prosody)


class ActedMaker:
    """The speech the kinds' synthetic writers make (`ser.corpus.kind.Maker`): this
    module's `new_root`, `voice_of` and `write_wav`."""

    sample_rate = audio.SAMPLE_RATE
    new_root = staticmethod(new_root)
    voice = staticmethod(voice_of)
    write_wav = staticmethod(write_wav)


MAKER = ActedMaker()
