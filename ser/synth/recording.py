"""A synthetic long recording for `ser predict --segment`: a few minutes of two speakers'
turns (the synthetic speech of the acted corpora, each turn's prosody by its emotion)
with a pause after each, as one wav, `recording.wav`, and the truth of every turn: what
a podcast or a call looks like to a segmenter, made locally.

>>> import tempfile
>>> truth = write_recording(Path(tempfile.mkdtemp()) / "r", seconds=20.0)
>>> (truth.root / "recording.wav").is_file(), len(truth.files) >= 4
(True, True)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from ser.synth import audio
from ser.synth.acted import ActedTruth, new_root, speech, voice_of

CODES = ("neu", "hap", "sad", "ang")
PAUSE = 1.0  # seconds of silence after each turn
TURN = (2.0, 4.0)  # a turn's length (s)


def write_recording(out: Path, seconds: float = 180.0, seed: int = 0) -> ActedTruth:
    """`out/recording.wav`: turns of two voices, each followed by `PAUSE` s of silence,
    until `seconds` are written; truth: per turn `<start>-<end>` its (code, speaker)."""
    root = new_root(out)
    rng = np.random.default_rng([seed, 23])
    voices = [voice_of(seed, n, gender) for n, gender in ((1, "F"), (2, "M"))]
    pause = np.zeros(round(PAUSE * audio.SAMPLE_RATE), np.float32)
    files: dict[str, tuple[str, str]] = {}
    written = 0
    with soundfile.SoundFile(root / "recording.wav", "w", audio.SAMPLE_RATE, 1) as wav:
        while written < seconds * audio.SAMPLE_RATE:
            speaker = len(files) % 2
            code = CODES[int(rng.integers(len(CODES)))]
            turn = speech(rng, voices[speaker], code, TURN)  # [n]
            start = written / audio.SAMPLE_RATE
            files[f"{start:.2f}-{start + len(turn) / audio.SAMPLE_RATE:.2f}"] = (
                code,
                f"speaker{speaker + 1}",
            )
            wav.write(turn)
            wav.write(pause)
            written += len(turn) + len(pause)
    return ActedTruth(root, files)
