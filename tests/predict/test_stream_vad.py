"""`--segment vad` found online: the whole file's segments, whatever the pieces, with
what is held bounded."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from ser.predict.stream_vad import WINDOW, OnlineVad
from ser.predict.vad import SileroVad, VadOptions
from ser.synth import acted
from ser.synth.audio import SAMPLE_RATE, draw_voice


@pytest.fixture(scope="module")
def talk(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A minute of the demo's synthetic speech: turns of 1.5-3 s between pauses of
    0.2-2.5 s (some shorter than --merge-gap), as a wav and its samples."""
    rng = np.random.default_rng(5)
    voice = draw_voice(rng, "F", (0.0, 0.0, -60.0))
    parts: list[np.ndarray] = []
    while sum(len(p) for p in parts) < 60 * SAMPLE_RATE:
        pause = rng.choice([0.2, 0.8, 1.5, 2.5])
        parts += [np.zeros(int(pause * SAMPLE_RATE), np.float32)]
        parts += [acted.speech(rng, voice, str(rng.choice(["neu", "hap", "ang"])), (1.5, 3.0))]
    wave = np.concatenate(parts).astype(np.float32)
    path = tmp_path_factory.mktemp("stream") / "talk.wav"
    soundfile.write(path, wave, SAMPLE_RATE, subtype="PCM_16")
    return path, soundfile.read(path, dtype="float32")[0]


def _online(wave: np.ndarray, options: VadOptions, sizes: list[int]) -> tuple[list, int, int]:
    """Segments (seconds) of `wave` fed in pieces of `sizes` (cycled), and the most
    scores and samples the detector held at once."""
    vad = OnlineVad(options)
    found, at, held, audio, i = [], 0, 0, 0, 0
    while at < len(wave):
        piece = wave[at : at + sizes[i % len(sizes)]]
        found += vad.feed(piece)
        at, i = at + len(piece), i + 1
        held, audio = max(held, len(vad.probs)), max(audio, len(vad.audio))
    found += vad.close()
    return [s.seconds for s in found], held, audio


@pytest.mark.slow
@pytest.mark.parametrize("options", [VadOptions(), VadOptions(0.2, 1.5, 0.1, 0.05)])
def test_online_segments_are_the_whole_file_s(talk, options) -> None:
    path, wave = talk
    whole = SileroVad(options).cut(path, len(wave) / SAMPLE_RATE)
    online, held, audio = _online(wave, options, sizes=[WINDOW * 3 + 17, 1000, 4096, 7])
    assert len(whole) > 10 and np.allclose(online, whole, rtol=0, atol=1e-9)
    # A minute in, no more than a few segments' worth of scores and audio is held.
    assert held * WINDOW < 15 * SAMPLE_RATE and audio < 15 * SAMPLE_RATE


@pytest.mark.slow
def test_a_stream_cut_mid_speech_flushes_its_last_segment(talk) -> None:
    _, wave = talk
    options = VadOptions()
    whole, _, _ = _online(wave, options, [4096])
    start, end = whole[3]
    assert end - start > 1.2
    cut = int((start + 1.0) * SAMPLE_RATE)  # inside the fourth segment's speech
    online, _, _ = _online(wave[:cut], options, [4096])
    assert len(online) == 4 and online[:3] == whole[:3]
    assert online[-1][1] == pytest.approx(cut / SAMPLE_RATE)


def test_the_detector_keeps_no_autograd_history(talk) -> None:
    """Silero's state runs from window to window: scored with autograd on, each window's
    graph holds the one before, and memory grows with the stream (24 MB/s measured)."""
    import torch

    _, wave = talk
    vad = OnlineVad()
    vad.feed(wave[:WINDOW])
    model, modes = vad.model, []

    def spy(window, rate):  # type: ignore[no-untyped-def]
        modes.append(torch.is_grad_enabled())
        return model(window, rate)

    vad.model = spy
    vad.feed(wave[WINDOW : 20 * WINDOW])
    assert len(modes) == 19 and not any(modes)
