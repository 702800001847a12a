"""Synthetic CMU-MOSI and CMU-MOSEI corpora in the CMU-MultimodalSDK's layout: a full-video
wav per video (its opinion segments in the acted generator's speech, a pause between
them), the segmented transcript with each segment's times, the labels as a computational
sequence (`.csd`) or its CSV export. The videos are the SDK's own standard-fold ids
(the first few of each fold), so the standard protocol splits them as it splits the
real corpus.

A segment's sentiment score in [-3, 3] is drawn first; its speech shows the emotion of
the score's sign (happiness above, sadness or anger below, neutral near 0) at an intensity
growing with |score|, and its text carries that emotion's cues (`ser.synth.text.compose`)
in one sentence or, the stronger the opinion, up to three, so audio and text both
predict the score. MOSEI's six intensities follow the same emotion.
Quirk kept: one label row whose segment has no transcript line (the reader's problem).

>>> import tempfile
>>> truth = write_cmu(Path(tempfile.mkdtemp()) / "MOSEI", CmuConfig(videos=(2, 1, 1)))
>>> len(truth.scores) > 0, sorted(truth.folds.values()).count("train")
(True, 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from ser.corpus.kinds import cmu_sdk
from ser.corpus.kinds.cmu_mosei import AUDIO_DIR, SDK_LABELS, TRANSCRIPT_DIR
from ser.synth import audio, text
from ser.synth.acted import ActedTruth, new_root, utterance, voice_of

LABEL_FILES = SDK_LABELS
_ROOT_GROUP = {"cmu-mosei": "All Labels", "cmu-mosi": "Opinion Segment Labels"}
PAUSE = (0.3, 0.8)  # seconds of silence before each segment


@dataclass(frozen=True)
class CmuConfig:
    """Which corpus, how many videos of each standard fold (train, valid, test), segments
    per video, a segment's seconds, labels as `.csd` or CSV; the seed of every draw."""

    corpus: str = "cmu-mosei"
    videos: tuple[int, int, int] = (6, 2, 2)
    segments: tuple[int, int] = (3, 5)
    seconds: tuple[float, float] = (0.8, 1.4)
    labels: str = "csd"  # or "csv"
    seed: int = 0


@dataclass(frozen=True)
class CmuTruth:
    """What was written: per segment id (`<video>_<segment>`) its sentiment score and, for
    MOSEI, its six intensities; each video's fold; `untranscribed`: ids whose label row has
    no transcript line."""

    root: Path
    scores: dict[str, float]
    intensities: dict[str, tuple[float, ...]]
    folds: dict[str, str]
    untranscribed: tuple[str, ...] = ()

    def acted(self) -> ActedTruth:
        """As the other layouts' truth: per segment its label code (the score's sign) and
        its speaker (the video)."""
        signs = {s: "neg" if v < 0 else "pos" if v > 0 else "neu" for s, v in self.scores.items()}
        return ActedTruth(self.root, {s: (c, s.rsplit("_", 1)[0]) for s, c in signs.items()})


def write_cmu(out: Path, config: CmuConfig = CmuConfig()) -> CmuTruth:
    """The corpus under `out` (a new or empty folder)."""
    if config.corpus not in LABEL_FILES:
        raise ValueError(f"corpus {config.corpus!r}: write cmu-mosi or cmu-mosei")
    root = new_root(out)
    for sub in (AUDIO_DIR, TRANSCRIPT_DIR):
        (root / sub).mkdir(parents=True)
    folds = _videos(config)
    labels: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    scores: dict[str, float] = {}
    intensities: dict[str, tuple[float, ...]] = {}
    for n, video in enumerate(folds):
        rng = np.random.default_rng([config.seed, 31, n])
        rows = _write_video(root, video, rng, config, n)
        labels[video] = (np.array([r[1] for r in rows]), np.array([r[2] for r in rows]))
        for utt_id, _, values in rows:
            scores[utt_id] = float(values[0])
            intensities[utt_id] = tuple(float(v) for v in values[1:])
    untranscribed = _drop_one_line(root, next(iter(folds)))
    _write_labels(root, config, labels)
    return CmuTruth(root, scores, intensities, folds, untranscribed)


def _videos(config: CmuConfig) -> dict[str, str]:
    """Video id -> fold: the first ids of each standard fold, in the SDK's order."""
    standard = cmu_sdk.standard_folds(config.corpus).videos
    return {
        v: fold
        for fold, k in zip(cmu_sdk.FOLDS, config.videos, strict=True)
        for v in standard[fold][:k]
    }


def _write_video(
    root: Path, video: str, rng: np.random.Generator, config: CmuConfig, n: int
) -> list[tuple[str, tuple[float, float], tuple[float, ...]]]:
    """The video's wav and transcript; per segment (id, interval, label values)."""
    voice = voice_of(config.seed, n, "F" if n % 2 else "M")
    pieces, lines, rows = [], [], []
    at = 0.0
    for segment in range(1, int(rng.integers(config.segments[0], config.segments[1] + 1)) + 1):
        score = float(np.round(rng.uniform(-3, 3) * 3) / 3)  # the mean of 3 raters' integers
        code = _code(score, rng)
        pause = np.zeros(round(float(rng.uniform(*PAUSE)) * audio.SAMPLE_RATE), np.float32)
        _, samples = utterance(rng, voice, code, config.seconds, min(1.0, abs(score) / 3 + 0.2))
        start = at + len(pause) / audio.SAMPLE_RATE
        end = start + len(samples) / audio.SAMPLE_RATE
        pieces += [pause, samples.astype(np.float32)]
        at = end
        # A stronger opinion is said at more length: more sentences, so more chances of
        # its emotion's cue words (each sentence holds one with `text.CUE_P`'s chance).
        words = " ".join(text.compose(rng, code) for _ in range(1 + round(abs(score) / 1.5)))
        lines.append(f"{video}___{segment}___{start:.3f}___{end:.3f}___{words}")
        values = (score, *_intensities(code, score)) if config.corpus == "cmu-mosei" else (score,)
        rows.append((f"{video}_{segment}", (round(start, 3), round(end, 3)), values))
    tail = np.zeros(round(0.5 * audio.SAMPLE_RATE), np.float32)
    soundfile.write(
        root / AUDIO_DIR / f"{video}.wav", np.concatenate([*pieces, tail]), audio.SAMPLE_RATE
    )
    (root / TRANSCRIPT_DIR / f"{video}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rows


def _code(score: float, rng: np.random.Generator) -> str:
    if score > 0.5:
        return "hap"
    if score < -0.5:
        return "sad" if rng.random() < 0.5 else "ang"
    return "neu"


def _intensities(code: str, score: float) -> tuple[float, ...]:
    """happy, sad, anger, surprise, disgust, fear: the segment's emotion at |score|."""
    level = float(np.round(min(3.0, abs(score)) * 3) / 3)
    named = {"hap": "happy", "sad": "sad", "ang": "anger"}.get(code)
    return tuple(level if e == named else 0.0 for e in cmu_sdk.EMOTIONS)


def _drop_one_line(root: Path, video: str) -> tuple[str, ...]:
    """The quirk: the first video's last transcript line removed (its label row stays)."""
    path = root / TRANSCRIPT_DIR / f"{video}.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    return (f"{video}_{lines[-1].split('___')[1]}",)


def _write_labels(
    root: Path, config: CmuConfig, labels: dict[str, tuple[np.ndarray, np.ndarray]]
) -> Path:
    if config.labels == "csv":
        path = root / "labels.csv"
        columns = cmu_sdk.MOSEI_COLUMNS if config.corpus == "cmu-mosei" else ("sentiment",)
        with path.open("w", encoding="utf-8") as file:
            file.write(",".join(("video", "start", "end", *columns)) + "\n")
            for video, (intervals, values) in labels.items():
                for (start, end), row in zip(intervals, values, strict=True):
                    file.write(",".join([video, f"{start}", f"{end}", *map(str, row)]) + "\n")
        return path
    import h5py

    path = root / LABEL_FILES[config.corpus]
    with h5py.File(path, "w") as file:
        data = file.create_group(_ROOT_GROUP[config.corpus]).create_group("data")
        for video, (intervals, values) in labels.items():
            group = data.create_group(video)
            group.create_dataset("intervals", data=intervals)
            group.create_dataset("features", data=values.reshape(len(values), -1))
        file[_ROOT_GROUP[config.corpus]].create_group("metadata")
    return path
