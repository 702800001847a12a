"""`--segment vad` on a stream: silero-vad's segments found as the audio arrives.

`ser predict --segment vad` gives silero-vad a whole block of audio (`vad.py`): its model
scores each 32 ms window in order, then `get_speech_timestamps_from_probs` turns those
scores into segments (a trigger, pauses shorter than --merge-gap kept, --min-segment,
--max-segment split at the longest pause, --pad). Here the same model scores each window
as it arrives and the same function runs again on the scores kept so far: a segment is
final, and given out, once nothing later can change it: a later segment has started, or
it has ended (before the last window) with at least --pad of silence after its padded end
(a closer next start would share that silence with it) and no speech is going on after
it (speech shorter than --min-segment is in no segment yet, but may become one). Its
bounds are then those the whole recording would give within one block.

What is kept stays bounded: once every segment found is given out and the scores end in a
silence long enough that the detector must be idle (a trigger would have ended within it),
the scores before that silence's last --pad are dropped and the function starts again from
there, as the whole block would have been at that point; audio is kept from the last
segment given out on. Only speech without such a pause keeps growing them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ser.predict.vad import SAMPLE_RATE, SileroModel, SileroVad, VadOptions

#: silero-vad's window at 16 kHz (samples).
WINDOW = 512
#: silero-vad's threshold (ser uses its default) and its exit threshold below it.
THRESHOLD = 0.5
NEG_THRESHOLD = THRESHOLD - 0.15


@dataclass(frozen=True)
class Segment:
    """A closed segment: [start, end) in samples from the stream's start, and its audio."""

    start: int
    end: int
    wave: np.ndarray  # [end - start] float32, 16 kHz

    @property
    def seconds(self) -> tuple[float, float]:
        return self.start / SAMPLE_RATE, self.end / SAMPLE_RATE


@dataclass
class OnlineVad:
    """Segments of a stream fed in pieces (`feed`), the rest at its end (`close`)."""

    options: VadOptions = field(default_factory=VadOptions)
    model: SileroModel | None = None  # loaded at the first window
    probs: list[float] = field(default_factory=list)  # window scores from `base` on
    base: int = 0  # the window `probs[0]` scores
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    audio_start: int = 0  # the stream's sample `audio[0]` is
    given: int = 0  # the end (samples) of the last segment given out
    received: int = 0  # samples fed so far

    def feed(self, samples: np.ndarray) -> list[Segment]:
        """The segments that `samples` (float32, 16 kHz) closed."""
        self.audio = np.concatenate([self.audio, np.asarray(samples, np.float32)])
        self.received += len(samples)
        scored = (self.base + len(self.probs)) * WINDOW  # the next window's first sample
        while self.received - scored >= WINDOW:
            self.probs.append(self._score(self._samples(scored, scored + WINDOW)))
            scored += WINDOW
        length = len(self.probs) * WINDOW
        found = self._segments(length)
        # Speech under --min-segment is in no segment yet; if it is going on, it may
        # still become one whose padding shares the silence with the last found.
        every = self._segments(length, min_segment=0.0)
        going = bool(every) and every[-1][1] >= self.base * WINDOW + length
        return self._given(found, final=False, going=going)

    def close(self) -> list[Segment]:
        """The segments left once the stream ended, the open one included."""
        scored = (self.base + len(self.probs)) * WINDOW
        if self.received > scored:  # the last window, zero-padded as silero pads it
            tail = self._samples(scored, self.received)
            self.probs.append(self._score(np.pad(tail, (0, WINDOW - len(tail)))))
        length = self.received - self.base * WINDOW
        return self._given(self._segments(length), final=True)

    def _segments(self, length: int, min_segment: float | None = None) -> list[tuple[int, int]]:
        """silero's segments of the scores kept, as stream samples (`length`: the samples
        the scores stand for; `min_segment`: another --min-segment)."""
        from silero_vad import get_speech_timestamps_from_probs

        if not self.probs:
            return []
        o = self.options
        found = get_speech_timestamps_from_probs(
            self.probs,
            sampling_rate=SAMPLE_RATE,
            threshold=THRESHOLD,
            min_speech_duration_ms=round(
                (o.min_segment if min_segment is None else min_segment) * 1000
            ),
            max_speech_duration_s=o.max_segment,
            min_silence_duration_ms=round(o.merge_gap * 1000),
            speech_pad_ms=round(o.pad * 1000),
            audio_length_samples=length,
        )
        offset = self.base * WINDOW
        return [(offset + int(s["start"]), offset + int(s["end"])) for s in found]

    def _given(
        self, found: list[tuple[int, int]], final: bool, going: bool = False
    ) -> list[Segment]:
        """The segments of `found` that are final and not given yet (module docstring)."""
        end = (self.base + len(self.probs)) * WINDOW
        pad = round(self.options.pad * SAMPLE_RATE)
        out = []
        for i, (start, stop) in enumerate(found):
            if stop <= self.given:
                continue
            last = i == len(found) - 1
            closed = stop < end and stop + pad <= end and not going
            if not (final or not last or closed):
                break
            out.append(Segment(start, stop, self._samples(start, stop).copy()))
            self.given = stop
        if not final and all(stop <= self.given for _, stop in found):
            self._drop_settled()
        self._trim_audio()
        return out

    def _drop_settled(self) -> None:
        """Drop the scores before the last --pad of a trailing silence in which the
        detector must be idle (module docstring)."""
        o = self.options
        needed = (
            math.ceil(o.merge_gap * SAMPLE_RATE / WINDOW)
            + math.ceil(o.pad * SAMPLE_RATE / WINDOW)
            + 2
        )
        quiet = 0
        for p in reversed(self.probs):
            if p >= NEG_THRESHOLD:
                break
            quiet += 1
        if quiet < needed:
            return
        keep = math.ceil(o.pad * SAMPLE_RATE / WINDOW) + 1  # windows before a new start's pad
        drop = len(self.probs) - keep
        self.probs = self.probs[drop:]
        self.base += drop

    def _trim_audio(self) -> None:
        """Keep audio from the first sample a later segment may start at."""
        keep = max(self.given, self.base * WINDOW)
        if keep > self.audio_start:
            self.audio = self.audio[keep - self.audio_start :].copy()
            self.audio_start = keep

    def _samples(self, start: int, stop: int) -> np.ndarray:
        return self.audio[max(start - self.audio_start, 0) : stop - self.audio_start]

    def _score(self, window: np.ndarray) -> float:
        import torch

        if self.model is None:
            self.model = SileroVad(self.options)._loaded()
            self.model.reset_states()
        # No autograd: the model's state runs from window to window, and a graph kept
        # through it would grow with the stream (get_speech_timestamps runs it so too).
        with torch.inference_mode():
            return float(self.model(torch.from_numpy(window), SAMPLE_RATE).item())
