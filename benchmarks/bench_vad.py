"""Which voice activity detector should `ser predict --segment vad` use? silero-vad
against webrtcvad and auditok on recordings whose speech is known: frame-level F1,
missed and false speech against the truth, and real-time factor, at a few SNRs.

A recording is sentences spoken by espeak-ng (four voices, speeds 140-190 words/min),
each after 0.4-2.5 s of silence, at 16 kHz; the truth of a sentence is its span between
its first and last sample above -50 dBFS (pauses between its words count as speech, as
the detectors' merging does). Noise (white, and babble-like: the same sentences
reversed, shuffled and summed, so that it is speech-shaped but not words) is added at
each SNR, the speech's power over its truth frames. Every detector's output goes through
the same post-processing as --segment vad's defaults (pauses under 0.3 s joined,
stretches under 0.5 s dropped, 0.1 s padded), so the comparison is of the detectors.
Frames are 10 ms; RTF is detection seconds per audio second, model loading excluded
(CPU, one thread each).

Needs espeak-ng (apt-get install espeak-ng) and, in the venv, the two others:
    .venv/bin/pip install webrtcvad-wheels auditok
Run:
    .venv/bin/python benchmarks/bench_vad.py            # ~1 min
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile
import soxr
import torch

from ser.predict.vad import SileroVad, VadOptions

RATE = 16000
FRAME = 0.01  # seconds per scored frame
VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb+f2")
SENTENCES = (
    "I told you already, the keys are on the kitchen table.",
    "Why would anyone leave the door open in the middle of winter?",
    "That is the best news I have heard all week.",
    "Please, just give me a minute to think about it.",
    "We missed the last train, so we walked home in the rain.",
    "Honestly, I do not care what they decide tomorrow.",
    "Look at this, it actually worked on the first try!",
    "She said she would call, but the phone never rang.",
    "Could you speak a little louder, the line is bad.",
    "Fine. Do it your way, and see what happens.",
)
# --segment vad's defaults, applied alike to every detector's raw speech
_DEFAULTS = VadOptions()
MERGE, SHORTEST, PAD = _DEFAULTS.merge_gap, _DEFAULTS.min_segment, _DEFAULTS.pad

Spans = list[tuple[float, float]]


def spoken(text: str, voice: str, speed: int, work: Path) -> np.ndarray:
    """One sentence by espeak-ng at 16 kHz, float32 [n]."""
    path = work / "s.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text],
        check=True,
        capture_output=True,
    )
    wave, rate = soundfile.read(path, dtype="float32")
    return soxr.resample(wave, rate, RATE).astype(np.float32)


def recording(seconds: float, seed: int, work: Path) -> tuple[np.ndarray, Spans, np.ndarray]:
    """Sentences with silences between them: (wave [n], truth spans, babble [n])."""
    rng = np.random.default_rng(seed)
    pieces, truth, at = [], [], 0
    clips = []
    while at < seconds * RATE:
        gap = np.zeros(round(rng.uniform(0.4, 2.5) * RATE), np.float32)
        text = SENTENCES[int(rng.integers(len(SENTENCES)))]
        voice = VOICES[int(rng.integers(len(VOICES)))]
        clip = spoken(text, voice, int(rng.integers(140, 191)), work) * rng.uniform(0.3, 0.9)
        loud = np.flatnonzero(np.abs(clip) > 10 ** (-50 / 20))
        at += len(gap)
        truth.append(((at + loud[0]) / RATE, (at + loud[-1] + 1) / RATE))
        pieces += [gap, clip]
        clips.append(clip)
        at += len(clip)
    wave = np.concatenate(pieces)
    babble = np.zeros_like(wave)
    for _ in range(4):  # four reversed talkers at random offsets
        for clip in clips:
            start = int(rng.integers(0, max(1, len(wave) - len(clip))))
            babble[start : start + len(clip)] += clip[::-1]
    return wave, truth, babble


def mask(spans: Spans, n_frames: int) -> np.ndarray:
    out = np.zeros(n_frames, bool)
    for a, b in spans:
        out[int(a / FRAME) : int(np.ceil(b / FRAME))] = True
    return out


def smoothed(spans: Spans, duration: float) -> Spans:
    """--segment vad's post-processing: join short pauses, drop short stretches, pad."""
    joined: Spans = []
    for a, b in sorted(spans):
        if joined and a - joined[-1][1] < MERGE:
            joined[-1] = (joined[-1][0], max(b, joined[-1][1]))
        else:
            joined.append((a, b))
    return [(max(0.0, a - PAD), min(duration, b + PAD)) for a, b in joined if b - a >= SHORTEST]


def silero() -> Callable[[np.ndarray], Spans]:
    vad = SileroVad(VadOptions(min_segment=0.05, merge_gap=0.0, pad=0.0, max_segment=1e6))
    vad._loaded()
    return lambda wave: vad._speech(wave)


def webrtc(mode: int) -> Callable[[np.ndarray], Spans]:
    import webrtcvad

    detector = webrtcvad.Vad(mode)
    step = int(0.03 * RATE)  # 30 ms frames

    def detect(wave: np.ndarray) -> Spans:
        pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2")
        spans = []
        for i in range(0, len(pcm) - step + 1, step):
            if detector.is_speech(pcm[i : i + step].tobytes(), RATE):
                spans.append((i / RATE, (i + step) / RATE))
        return spans

    return detect


def auditok_split(threshold: float) -> Callable[[np.ndarray], Spans]:
    import auditok

    def detect(wave: np.ndarray) -> Spans:
        pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2").tobytes()
        found = auditok.split(
            pcm, sampling_rate=RATE, sample_width=2, channels=1, min_dur=0.05, max_dur=1e6,
            max_silence=0.05, energy_threshold=threshold,
        )  # fmt: skip
        return [(r.start, r.end) for r in found]

    return detect


def scores(found: Spans, truth: Spans, duration: float) -> dict[str, float]:
    n = int(np.ceil(duration / FRAME))
    got, want = mask(found, n), mask(truth, n)
    hit = float((got & want).sum())
    precision, recall = hit / max(got.sum(), 1), hit / max(want.sum(), 1)
    return {
        "f1": 2 * precision * recall / max(precision + recall, 1e-9),
        "missed": 1 - recall,  # of the speech
        "false": float((got & ~want).sum()) / max((~want).sum(), 1),  # of the non-speech
    }


def noisy(wave: np.ndarray, noise: np.ndarray, truth: Spans, snr: float | None) -> np.ndarray:
    if snr is None:
        return wave
    speech = np.zeros(len(wave), bool)
    for a, b in truth:
        speech[int(a * RATE) : int(b * RATE)] = True
    power = float(np.mean(wave[speech] ** 2))
    scale = np.sqrt(power / 10 ** (snr / 10) / float(np.mean(noise**2)))
    return (wave + scale * noise).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="per recording")
    parser.add_argument("--snrs", default="clean,20,10,5,0")
    args = parser.parse_args()
    torch.set_num_threads(1)
    detectors = {
        "silero": silero(),
        "webrtc-2": webrtc(2),
        "webrtc-3": webrtc(3),
        "auditok-50": auditok_split(50.0),
        "auditok-55": auditok_split(55.0),
    }
    with tempfile.TemporaryDirectory() as work:
        wave, truth, babble = recording(args.seconds, 0, Path(work))
    duration = len(wave) / RATE
    white = np.random.default_rng(1).normal(0, 1, len(wave)).astype(np.float32)
    share = sum(b - a for a, b in truth) / duration
    print(f"{duration:.0f} s, {len(truth)} sentences, {100 * share:.0f} % speech; 10 ms frames")
    print("| noise | SNR | detector | F1 | missed speech | false speech | RTF |")
    print("|---|---|---|---|---|---|---|")
    for kind, noise in (("white", white), ("babble", babble)):
        for snr_text in args.snrs.split(","):
            snr = None if snr_text == "clean" else float(snr_text)
            if snr is None and kind == "babble":
                continue
            audio = noisy(wave, noise, truth, snr)
            for name, detect in detectors.items():
                t0 = time.perf_counter()
                found = detect(audio)
                rtf = (time.perf_counter() - t0) / duration
                s = scores(smoothed(found, duration), truth, duration)
                label = "-" if snr is None else f"{snr:g} dB"
                print(f"| {kind if snr is not None else 'none'} | {label} | {name} | "
                      f"{s['f1']:.3f} | {100 * s['missed']:.1f} % | {100 * s['false']:.1f} % | "
                      f"{rtf:.4f} |")  # fmt: skip


if __name__ == "__main__":
    main()
