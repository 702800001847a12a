"""Speech-like audio for the synthetic corpus, synthesized with numpy and scipy.

A glottal pulse train follows a pitch contour, is shaped into syllables and filtered by
vowel formants. Emotion sets the prosody on top of a speaker's voice and a session's
channel; an utterance's intensity blends its class's profile with neutral, so mild
utterances are confused with neutral and classes of similar arousal with each other.

>>> rng = np.random.default_rng(0)
>>> voice = draw_voice(rng, "F", channel=(0.0, 0.0, -42.0))
>>> audio = synthesize(rng, 1.5, voice, PROSODY["ang"])
>>> audio.dtype, audio.shape
(dtype('int16'), (24000,))
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, replace

import numpy as np
from scipy.signal import lfilter

SAMPLE_RATE = 16000
_VOICES = 9  # part of the voices' seeds, apart from the other draws of ser.synth.plan


@dataclass(frozen=True)
class Prosody:
    """How an emotion moves a voice away from its neutral baseline."""

    pitch: float = 1.0  # multiplier on the speaker's f0
    pitch_range: float = 0.12  # accent depth, in units of log f0
    rate: float = 1.0  # multiplier on the speaker's syllable rate
    energy_db: float = 0.0
    tension: float = 0.3  # 0 lax .. 1 pressed: shorter glottal opening, brighter sound
    breath: float = 0.04  # aspiration noise relative to the voiced source
    pause: float = 0.12  # chance of a pause between syllables
    final_rise: float = 0.0  # pitch rise on the last syllable (questions, surprise)


#: The emotion profiles; `xxx` is drawn as a blend of two of these.
PROSODY: dict[str, Prosody] = {
    "neu": Prosody(),
    "hap": Prosody(1.15, 0.24, 1.06, 3.5, 0.40, 0.04, 0.10, 0.05),
    "exc": Prosody(1.25, 0.30, 1.14, 5.5, 0.50, 0.03, 0.06, 0.08),
    "sad": Prosody(0.88, 0.05, 0.78, -7.0, 0.05, 0.14, 0.30, -0.05),
    "ang": Prosody(1.15, 0.18, 1.10, 8.0, 0.95, 0.02, 0.06, 0.0),
    "fru": Prosody(1.05, 0.15, 1.00, 3.5, 0.70, 0.06, 0.14, 0.0),
    "sur": Prosody(1.25, 0.32, 0.95, 3.0, 0.50, 0.04, 0.10, 0.30),
    "fea": Prosody(1.22, 0.10, 1.15, -1.0, 0.60, 0.10, 0.18, 0.05),
    "dis": Prosody(0.95, 0.16, 0.85, 1.0, 0.70, 0.06, 0.16, -0.05),
    "oth": Prosody(1.02, 0.14, 0.95, 0.0, 0.30, 0.05, 0.14, 0.0),
}


def blend(a: Prosody, b: Prosody, weight: float) -> Prosody:
    """`a` moved towards `b` by `weight` (0 -> a, 1 -> b), field by field."""
    pairs = zip(astuple(a), astuple(b), strict=True)
    return Prosody(*((1 - weight) * x + weight * y for x, y in pairs))


@dataclass(frozen=True)
class Voice:
    """A speaker in a session: who speaks and through which channel."""

    f0: float  # Hz, median pitch
    formant_scale: float  # vocal tract length: >1 shorter tract, higher formants
    rate: float  # syllables per second when neutral
    gain_db: float  # speaker loudness + session gain
    expressiveness: float  # scales how far emotions move this speaker
    tilt: float  # session channel: first-order pre-emphasis (+) or dulling (-)
    noise_db: float  # session background noise, dB re full scale


def draw_voice(rng: np.random.Generator, gender: str, channel: tuple[float, float, float]) -> Voice:
    """A random speaker of `gender` heard through `channel` = (gain_db, tilt, noise_db)."""
    female = gender == "F"
    return Voice(
        f0=float(rng.normal(205.0, 18.0) if female else rng.normal(118.0, 10.0)),
        formant_scale=float(rng.normal(1.15 if female else 1.0, 0.04)),
        rate=float(rng.uniform(3.8, 5.0)),
        gain_db=float(rng.normal(0.0, 2.5) + channel[0]),
        expressiveness=float(rng.uniform(0.65, 1.15)),
        tilt=float(channel[1]),
        noise_db=float(channel[2]),
    )


def draw_voices(seed: int) -> dict[tuple[int, str], Voice]:
    """The 10 speakers of a corpus, (session, gender) -> voice, through the session's channel."""
    voices = {}
    for session in range(1, 6):
        rng = np.random.default_rng([seed, _VOICES, session])
        channel = (rng.normal(0.0, 2.0), rng.uniform(-0.3, 0.5), rng.uniform(-56, -42))
        for k, gender in enumerate("FM", start=1):
            rng = np.random.default_rng([seed, _VOICES, session, k])
            voices[session, gender] = draw_voice(rng, gender, channel)
    return voices


# F1, F2, F3 (Hz, adult male) of five vowels; bandwidths grow with frequency.
_VOWELS = np.array(
    [[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]]
)
_BANDWIDTHS = np.array([80.0, 100.0, 140.0])


def utterance_prosody(
    rng: np.random.Generator, code: str, intensity: float, voice: Voice, other: str | None = None
) -> Prosody:
    """The prosody of one utterance: its class (blended with `other`) at `intensity`, jittered."""
    target = PROSODY[code]
    if other is not None:
        target = blend(target, PROSODY[other], float(rng.uniform(0.3, 0.7)))
    base = blend(PROSODY["neu"], target, min(1.0, intensity * voice.expressiveness))
    noise = rng.normal(0.0, 1.0, 5)
    return replace(
        base,
        pitch=base.pitch * float(np.exp(0.05 * noise[0])),
        pitch_range=max(0.02, base.pitch_range * float(np.exp(0.2 * noise[1]))),
        rate=base.rate * float(np.exp(0.06 * noise[2])),
        energy_db=base.energy_db + 1.5 * float(noise[3]),
        tension=float(np.clip(base.tension + 0.1 * noise[4], 0.0, 1.0)),
    )


def speech_seconds(n_syllables: int, voice: Voice, prosody: Prosody) -> float:
    """How long `n_syllables` take at this voice and prosody, pauses included."""
    return n_syllables / (voice.rate * prosody.rate) * (1.0 + 1.5 * prosody.pause) + 0.3


def synthesize(
    rng: np.random.Generator, seconds: float, voice: Voice, prosody: Prosody
) -> np.ndarray:
    """`seconds` of speech-like int16 audio at 16 kHz, `[round(seconds * 16000)]`."""
    n = round(seconds * SAMPLE_RATE)
    bounds, vowels = _syllables(rng, n, voice.rate * prosody.rate, prosody.pause)
    f0 = _pitch_contour(rng, n, bounds, voice.f0 * prosody.pitch, prosody)  # [n]
    source = _glottal_source(rng, f0, prosody)  # [n]
    out = np.zeros(n + SAMPLE_RATE // 20)
    for (a, b), vowel in zip(bounds, vowels, strict=True):
        shape = np.hanning(b - a + 2)[1:-1] ** 0.7 * rng.uniform(0.6, 1.0)
        segment = np.concatenate([source[a:b] * shape, np.zeros(SAMPLE_RATE // 20)])
        out[a : a + len(segment)] += _formant_filter(segment, vowel, voice, prosody)
    out[:n] += _consonants(rng, n, bounds, float(np.sqrt(np.mean(out**2))))
    speech = out[:n] * 10 ** ((voice.gain_db + prosody.energy_db - 24.0) / 20)
    speech = lfilter([1.0, -voice.tilt], [1.0], speech)
    speech += rng.normal(0.0, 10 ** (voice.noise_db / 20), n)
    return (np.tanh(speech * 1.2) / 1.2 * 32767).astype(np.int16)


def _consonants(
    rng: np.random.Generator, n: int, bounds: list[tuple[int, int]], level: float
) -> np.ndarray:
    """Short hiss bursts (fricatives, releases) before about half of the syllables."""
    noise = np.zeros(n)
    for a, _ in bounds:
        if rng.random() < 0.5:
            m = int(rng.uniform(0.03, 0.08) * SAMPLE_RATE)
            s0 = max(0, a - m // 2)
            burst = np.diff(rng.normal(0.0, 1.0, m + 2), 2) * np.hanning(m)  # [m], high-passed
            noise[s0 : s0 + m] += burst[: n - s0] * level * 0.2
    return noise


def _syllables(
    rng: np.random.Generator, n: int, rate: float, pause: float
) -> tuple[list[tuple[int, int]], list[int]]:
    """Syllable spans (start, end samples) and their vowels, pauses in between."""
    t = int(rng.uniform(0.05, 0.15) * SAMPLE_RATE)
    end = n - int(0.08 * SAMPLE_RATE)
    bounds: list[tuple[int, int]] = []
    while True:
        length = int(rng.gamma(8.0, 1.0 / (8.0 * rate)) * SAMPLE_RATE)
        if t + length > end and bounds:
            break
        bounds.append((t, min(t + max(length, 400), end)))
        t = bounds[-1][1]
        if rng.random() < pause:
            t += int(rng.uniform(0.08, 0.35) * SAMPLE_RATE)
        if t >= end:
            break
    return bounds, [int(v) for v in rng.integers(0, len(_VOWELS), len(bounds))]


def _pitch_contour(
    rng: np.random.Generator, n: int, bounds: list[tuple[int, int]], f0: float, prosody: Prosody
) -> np.ndarray:
    """Per-sample f0 in Hz: declination + one accent per syllable + jitter."""
    centers = np.array([(a + b) / 2 for a, b in bounds])  # [S]
    accents = rng.normal(0.0, 1.0, len(bounds)) * prosody.pitch_range  # [S] log-f0 offsets
    accents[-1] += prosody.final_rise
    position = np.arange(n) / n  # [n]
    log_f0 = np.interp(np.arange(n), centers, accents) + 0.08 * (0.5 - position)
    jitter = np.repeat(rng.normal(0.0, 0.01, n // 80 + 1), 80)[:n]
    return np.asarray(f0 * np.exp(log_f0 + jitter))


def _glottal_source(rng: np.random.Generator, f0: np.ndarray, prosody: Prosody) -> np.ndarray:
    """A Rosenberg-like pulse train, differentiated (lip radiation), with breath noise."""
    phase = np.cumsum(f0 / SAMPLE_RATE) % 1.0  # [n] position within the glottal cycle
    open_q = 0.65 - 0.3 * prosody.tension
    rise = 0.6 * open_q
    pulse = np.where(
        phase < rise,
        0.5 * (1 - np.cos(np.pi * phase / rise)),
        np.where(phase < open_q, np.cos(0.5 * np.pi * (phase - rise) / (open_q - rise)), 0.0),
    )
    source = np.diff(pulse, prepend=0.0) * 8.0
    return np.asarray(source + prosody.breath * rng.normal(0.0, 1.0, len(f0)))


def _formant_filter(x: np.ndarray, vowel: int, voice: Voice, prosody: Prosody) -> np.ndarray:
    """Three resonators in cascade at the vowel's formants, scaled to the speaker."""
    formants = _VOWELS[vowel] * voice.formant_scale
    formants = formants * np.array([1.0 + 0.12 * prosody.tension, 1.0, 1.0])  # tense: higher F1
    a = np.array([1.0])
    for freq, bandwidth in zip(formants, _BANDWIDTHS, strict=True):
        radius = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
        theta = 2 * np.pi * freq / SAMPLE_RATE
        a = np.convolve(a, [1.0, -2 * radius * np.cos(theta), radius**2])
    gain = np.abs(np.polyval(a[::-1], 1.0))  # unit gain at DC keeps levels comparable
    return np.asarray(lfilter([gain], a, x))
