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

from ser.corpus.kinds import crema_d, ravdess
from ser.errors import CorpusError
from ser.synth import audio

#: RAVDESS's calm, which IEMOCAP lacks: neutral's pitch, slower and laxer.
CALM = audio.Prosody(0.97, 0.08, 0.9, -2.5, 0.12, 0.08, 0.18, 0.0)


@dataclass(frozen=True)
class ActedConfig:
    """How many actors, sentences (statements) and seconds; the seed of every draw."""

    actors: int = 6
    sentences: int = 2
    seed: int = 0
    seconds: tuple[float, float] = (0.8, 1.4)


@dataclass(frozen=True)
class ActedTruth:
    """What was written: per utterance id its (label code, speaker); `empty`: ids whose
    wav holds no samples (a problem the reader reports)."""

    root: Path
    files: dict[str, tuple[str, str]]
    empty: tuple[str, ...] = ()


def write_crema_d(out: Path, config: ActedConfig = ActedConfig()) -> ActedTruth:
    """`out/AudioWAV/<actor>_<sentence>_<EMO>_<level>.wav` and `VideoDemographics.csv`."""
    folder = new_root(out) / crema_d.AUDIO
    folder.mkdir()
    sentences = [s for s in crema_d.SENTENCES if s != "MTI"][: config.sentences]
    files, rows = {}, []
    for a in range(config.actors):
        actor, gender = f"{1001 + a}", "FM"[a % 2]
        rows.append({"ActorID": actor, "Age": 30 + a, "Sex": "Female" if gender == "F" else "Male"})
        voice = voice_of(config.seed, a, gender)
        for k, (emo, code) in enumerate(crema_d.EMOTIONS.items()):
            for s, sentence in enumerate(sentences):
                level = ("HI", "MD", "LO", "XX")[(a + s) % 4]
                stem = f"{actor}_{sentence}_{emo}_{level}"
                rng = np.random.default_rng([config.seed, a, k, s])
                write_wav(folder / f"{stem}.wav", rng, voice, code, config.seconds)
                files[stem] = (code, actor)
    empty = f"{1000 + config.actors}_MTI_SAD_XX"
    soundfile.write(folder / f"{empty}.wav", np.zeros(0, np.int16), audio.SAMPLE_RATE)
    files[empty] = ("sad", empty[:4])
    with (out / "VideoDemographics.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, ["ActorID", "Age", "Sex"])
        writer.writeheader()
        writer.writerows(rows)
    return ActedTruth(out.resolve(), files, (empty,))


def write_ravdess(out: Path, config: ActedConfig = ActedConfig()) -> ActedTruth:
    """`out/Actor_XX/03-01-EE-II-SS-01-XX.wav`: speech, every emotion, both intensities
    (neutral: normal only), `config.sentences` statements (at most 2)."""
    root = new_root(out)
    files = {}
    for a in range(config.actors):
        actor = f"{a + 1:02d}"
        folder = root / f"Actor_{actor}"
        folder.mkdir()
        voice = voice_of(config.seed, a, "M" if (a + 1) % 2 else "F")
        for e, code in enumerate(ravdess.EMOTIONS, start=1):
            for intensity in ("01",) if code == "neu" else ("01", "02"):
                for s in range(1, min(config.sentences, 2) + 1):
                    stem = f"03-01-{e:02d}-{intensity}-{s:02d}-01-{actor}"
                    rng = np.random.default_rng([config.seed, a, e, int(intensity), s])
                    write_wav(folder / f"{stem}.wav", rng, voice, code, config.seconds)
                    files[stem] = (code, f"Actor_{actor}")
    return ActedTruth(root.resolve(), files)


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
    path: Path, rng: np.random.Generator, voice: audio.Voice, code: str,
    seconds: tuple[float, float],
) -> None:  # fmt: skip
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
