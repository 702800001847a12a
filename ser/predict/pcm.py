"""A live PCM stream (`ser predict --stream SOURCE`): 16 kHz mono 16-bit little-endian
samples from stdin (`-`), a FIFO, or a file still being written, with or without a WAV
header in front (read by the standard library's `wave`; its declared length is ignored:
a stream's writer seldom knows it).

A thread reads as the source gives, into a bounded queue: a slow consumer holds back the
writer rather than the whole stream piling up in memory. The stream ends at the source's
end of file (stdin, a FIFO whose writer closed), or for a regular file once it has not
grown for `wait` seconds. A source that fails (a read error, a header of another format,
a sample cut in half at the end, no sample at all) raises `StreamError` with one line.
"""

from __future__ import annotations

import os
import queue
import stat
import sys
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np

from ser.errors import SerError

RATE = 16000
#: Bytes a read asks for: 0.128 s of audio, so a segment's end is seen soon after it comes.
BLOCK = 4096
#: Blocks the queue holds (~13 s) before the reader waits for the consumer.
QUEUED = 100
#: How often a regular file is checked for growth (seconds).
POLL = 0.05
FORMAT_HINT = "16 kHz mono 16-bit PCM (e.g. ffmpeg -i IN -f s16le -ar 16000 -ac 1 -)"


class StreamError(SerError):
    """The stream broke or is not what --stream reads (one line; exit code 1)."""

    exit_code = 1


@dataclass
class PcmSource:
    """Where the stream comes from and how long a growing file may pause."""

    name: str  # "-" for stdin, else a path
    wait: float = 2.0

    def blocks(self) -> Iterator[np.ndarray]:
        """The stream's samples (float32 in [-1, 1)) as they come."""
        handle, growing, first = self._open()
        samples = queue.Queue[bytes | BaseException | None](maxsize=QUEUED)
        if first:
            samples.put(first)
        reader = threading.Thread(target=self._read, args=(handle, growing, samples), daemon=True)
        reader.start()
        try:
            yield from self._samples(samples)
        finally:
            if handle is not sys.stdin.buffer:
                handle.close()

    def _samples(self, samples: queue.Queue[bytes | BaseException | None]) -> Iterator[np.ndarray]:
        """The reader's blocks as samples; a sample cut in half waits for its other byte."""
        carry = b""
        seconds = 0.0
        while True:
            block = samples.get()
            if block is None:
                break
            if isinstance(block, BaseException):
                raise StreamError(
                    f"--stream {self.name}: the stream broke after {seconds:.2f} s: {block}"
                )
            data = carry + block
            whole = len(data) - len(data) % 2
            carry = data[whole:]
            seconds += whole / 2 / RATE
            yield np.frombuffer(data[:whole], dtype="<i2").astype(np.float32) / 32768.0
        if carry:
            raise StreamError(
                f"--stream {self.name}: the stream ended inside a sample (one byte over, after "
                f"{seconds:.2f} s): not {FORMAT_HINT}"
            )
        if seconds == 0:  # else an empty pipe ends with exit 0 and no word
            held = "stdin" if self.name == "-" else "it"
            raise StreamError(
                f"--stream {self.name}: {held} held no audio (it ended before its first "
                f"sample): send it {FORMAT_HINT}"
            )

    def _open(self) -> tuple[BinaryIO, bool, bytes]:
        """The source opened, whether it is a file that may still grow, and the first
        samples' bytes read while looking for a WAV header (read off)."""
        if self.name == "-":
            handle: BinaryIO = sys.stdin.buffer
            growing = False
        else:
            path = Path(self.name)
            try:
                mode = path.stat().st_mode
                # Kept open past this call: `blocks` closes it at the stream's end.
                handle = open(path, "rb")  # noqa: SIM115 (a FIFO's open waits for its writer)
            except OSError as err:
                raise StreamError(
                    f"--stream {self.name}: cannot open it ({err.strerror})"
                ) from None
            growing = stat.S_ISREG(mode)
        return handle, growing, self._skip_header(handle)

    def _skip_header(self, handle: BinaryIO) -> bytes:
        """Read a WAV header off the source, checking its format; without one, the
        bytes read to tell (the stream's first samples)."""
        first = b""
        while len(first) < 4 and (more := handle.read(4 - len(first))):
            first += more
        if first != b"RIFF":
            return first
        try:
            # `wave` reads up to the data chunk and leaves the source open.
            with wave.open(cast(BinaryIO, _Prefixed(first, handle))) as header:
                rate, channels, width = (
                    header.getframerate(),
                    header.getnchannels(),
                    header.getsampwidth(),
                )
        except (wave.Error, EOFError, OSError) as err:
            raise StreamError(
                f"--stream {self.name}: its WAV header cannot be read ({err})"
            ) from None
        if (rate, channels, width) != (RATE, 1, 2):
            raise StreamError(
                f"--stream {self.name}: a WAV of {rate} Hz, {channels} channel(s), "
                f"{8 * width}-bit: --stream reads {FORMAT_HINT}"
            )
        return b""

    def _read(
        self, handle: BinaryIO, growing: bool, out: queue.Queue[bytes | BaseException | None]
    ) -> None:
        """The reader thread: blocks into `out`, then None at the end or the error."""
        quiet_since = time.monotonic()
        try:
            while True:
                block = _read_some(handle)
                if block:
                    out.put(block)
                    quiet_since = time.monotonic()
                elif growing and time.monotonic() - quiet_since < self.wait:
                    time.sleep(POLL)
                else:
                    break
        except (OSError, ValueError) as err:
            out.put(err)
            return
        out.put(None)


def _read_some(handle: BinaryIO) -> bytes:
    """What the source holds now, up to `BLOCK` bytes (b"" at its end)."""
    read1 = getattr(handle, "read1", None)
    if read1 is not None:
        return bytes(read1(BLOCK))
    return bytes(os.read(handle.fileno(), BLOCK))


class _Prefixed:
    """A source read again from its start for `wave`: the bytes read off it already,
    then the source itself."""

    def __init__(self, first: bytes, handle: BinaryIO) -> None:
        self.first, self.handle = first, handle

    def read(self, size: int = -1) -> bytes:
        head, self.first = (self.first, b"") if size < 0 else (self.first[:size], self.first[size:])
        rest = size - len(head) if size >= 0 else -1
        return head + (self.handle.read(rest) if rest else b"")
