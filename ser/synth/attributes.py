"""What a synthetic utterance's prosody conveys: its arousal, valence and dominance, and
which emotions annotators hear in it.

Each attribute moves from neutral's (`NEUTRAL`) with the prosodic cues of `WEIGHTS`, by
how far the utterance's prosody (`ser.synth.audio.Prosody`, relative to the speaker's
voice) lies from the neutral profile: arousal with loudness, pitch range, speaking rate
and vocal effort (tension); valence with pitch range and rate, against effort and breath;
dominance with loudness and effort, against raised pitch and breath. A class's mean is
what its full profile conveys (`class_mean`), and each utterance's attributes move with
its own audio: a mild angry utterance (its prosody blended towards neutral) is rated
calmer than a full one, a speaker who shows little nearer neutral, and each utterance's
jitter of loudness or pitch range shows in its ratings. Annotators hear the classes whose
means lie near what an utterance conveys (`heard`): one between two classes gets votes
for both.

>>> from ser.synth.audio import PROSODY
>>> calm, angry = conveyed(PROSODY["neu"]), conveyed(PROSODY["ang"])
>>> angry.arousal > calm.arousal + 1 and angry.valence < calm.valence
True
>>> max(heard(angry, ("neu", "ang", "sad")).items(), key=lambda kv: kv[1])[0]
'ang'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass

import numpy as np

from ser.corpus.records import ATTRIBUTES
from ser.synth.audio import PROSODY, Prosody

#: Each attribute's change per unit of each cue away from the neutral profile (1-5 scale).
WEIGHTS: dict[str, dict[str, float]] = {
    "arousal": {"energy_db": 0.1, "pitch_range": 2.5, "rate": 1.0, "tension": 0.6},
    "valence": {"pitch_range": 6.0, "rate": 1.0, "tension": -2.0, "breath": -6.0},
    "dominance": {"energy_db": 0.06, "tension": 1.5, "pitch": -2.0, "breath": -5.0},
}
#: How far (in scale points) a class's mean may lie from what an utterance conveys and
#: still be heard in it.
HEARING = 0.45


@dataclass(frozen=True)
class Attributes:
    """Arousal, valence and dominance on IEMOCAP's 1-5 scale."""

    arousal: float
    valence: float
    dominance: float

    def on_scale(self, low: float, high: float) -> Attributes:
        """The same attributes on a `low`..`high` scale (MSP-Podcast's 1-7)."""
        to = (high - low) / 4.0
        return Attributes(*(low + (value - 1.0) * to for value in astuple(self)))

    def vad(self) -> tuple[float, float, float]:
        """(valence, arousal, dominance): IEMOCAP's order."""
        return (self.valence, self.arousal, self.dominance)


#: What the neutral profile conveys (IEMOCAP's neutral means).
NEUTRAL = Attributes(arousal=2.4, valence=3.0, dominance=2.6)


def conveyed(prosody: Prosody) -> Attributes:
    """What `prosody` conveys, clipped to the 1-5 scale."""
    base, neutral = PROSODY["neu"], NEUTRAL
    moved = {
        name: sum(w * (getattr(prosody, cue) - getattr(base, cue)) for cue, w in cues.items())
        for name, cues in WEIGHTS.items()
    }
    return Attributes(
        *(float(np.clip(getattr(neutral, n) + moved[n], 1.0, 5.0)) for n in ATTRIBUTES)
    )


def class_mean(code: str) -> Attributes:
    """What class `code`'s full profile conveys: the mean its utterances are rated near."""
    return conveyed(PROSODY[code])


def heard(attributes: Attributes, codes: Sequence[str]) -> dict[str, float]:
    """How likely an annotator names each of `codes` (each with a `PROSODY` profile) for
    an utterance conveying `attributes`: a Gaussian of the distance to each class's mean,
    normalised."""
    here = np.array(attributes.vad())
    distances = np.array([np.sum((here - class_mean(c).vad()) ** 2) for c in codes])  # [codes]
    weights = np.exp(-(distances - distances.min()) / (2 * HEARING**2))
    return dict(zip(codes, (weights / weights.sum()).tolist(), strict=True))
