"""`--stream`'s sources: stdin, a FIFO, a file still being written; a WAV header read
off; a broken stream is one line."""

from __future__ import annotations

import io
import os
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from ser.predict.pcm import PcmSource, StreamError

SAMPLES = (np.sin(np.arange(8000) / 7.0) * 20000).astype("<i2")


def _wav_bytes(samples: np.ndarray, rate: int = 16000, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buffer.getvalue()


def _read(source: PcmSource) -> np.ndarray:
    return np.concatenate(list(source.blocks()))


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))


def test_stdin_raw_or_with_a_wav_header(monkeypatch) -> None:
    expected = SAMPLES.astype(np.float32) / 32768
    for data in (SAMPLES.tobytes(), _wav_bytes(SAMPLES)):
        _stdin(monkeypatch, data)
        assert np.array_equal(_read(PcmSource("-")), expected)


def test_a_fifo_ends_when_its_writer_closes(tmp_path: Path) -> None:
    fifo = tmp_path / "live"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as f:
            for part in np.array_split(SAMPLES, 5):
                f.write(part.tobytes())
                f.flush()
                time.sleep(0.02)

    threading.Thread(target=write, daemon=True).start()
    assert len(_read(PcmSource(str(fifo)))) == len(SAMPLES)


@pytest.mark.slow
def test_a_growing_file_is_read_until_it_stops_growing(tmp_path: Path) -> None:
    path = tmp_path / "growing.raw"
    path.write_bytes(b"")

    def write() -> None:
        for part in np.array_split(SAMPLES, 4):
            time.sleep(0.1)  # under --stream-wait: the reader waits for more
            with open(path, "ab") as f:
                f.write(part.tobytes())

    threading.Thread(target=write, daemon=True).start()
    started = time.monotonic()
    assert len(_read(PcmSource(str(path), wait=0.5))) == len(SAMPLES)
    assert time.monotonic() - started >= 0.9  # the last write, then the wait


def test_a_broken_stream_is_one_line(monkeypatch, tmp_path: Path) -> None:
    class Failing(io.RawIOBase):
        def __init__(self) -> None:
            self.given = False

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            if self.given:
                raise OSError(5, "Input/output error")
            self.given = True
            buffer[:4000] = SAMPLES[:2000].tobytes()
            return 4000

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(Failing())))
    got: list[np.ndarray] = []
    broke = r"^--stream -: the stream broke after 0\.12 s: .*Input/output"
    with pytest.raises(StreamError, match=broke) as err:
        got.extend(PcmSource("-").blocks())
    assert "\n" not in str(err.value) and sum(map(len, got)) == 2000
    _stdin(monkeypatch, SAMPLES.tobytes() + b"\x01")
    with pytest.raises(StreamError, match="ended inside a sample"):
        _read(PcmSource("-"))
    _stdin(monkeypatch, _wav_bytes(np.zeros(100, "<i2"), rate=44100, channels=2))
    with pytest.raises(StreamError, match="a WAV of 44100 Hz, 2 channel"):
        _read(PcmSource("-"))
    with pytest.raises(StreamError, match="cannot open it"):
        _read(PcmSource(str(tmp_path / "missing.raw")))
