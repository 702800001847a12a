"""Audio encoded by FFmpeg (PyAV's encoders): the containers corpora ship that libsndfile
does not write, MELD's MP4 clips (AAC) above all, and any other a test or benchmark wants.
The same samples give the same bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: The codec each container suffix gets.
CODECS = {".mp4": "aac", ".m4a": "aac", ".ogg": "libopus", ".mp3": "libmp3lame", ".flac": "flac"}
LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


def write_encoded(path: Path, samples: np.ndarray, rate: int, codec: str | None = None) -> Path:
    """`samples` (`[n, channels]` float32, 1, 2 or 6 channels) at `rate` Hz, encoded with
    `codec` (by default the suffix's, `CODECS`) into the container the suffix names."""
    import av

    layout = LAYOUTS[samples.shape[1]]
    planar = np.ascontiguousarray(samples.T, dtype=np.float32)  # [channels, n]
    # bitexact: no random Ogg serial, no version string; the bytes are the samples' alone
    with av.open(str(path), "w", options={"fflags": "+bitexact"}) as container:
        name = codec or CODECS[path.suffix.lower()]
        stream = container.add_stream(name, rate=rate, layout=layout)
        if not isinstance(stream, av.AudioStream):
            raise ValueError(f"{name} is not an audio codec")
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.rate, frame.pts = rate, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path
