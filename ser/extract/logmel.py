"""Log-mel spectrogram in torch (batched on a GPU): 80 bands, 25 ms window, 10 ms hop.

The mel filterbank is built by hand in numpy the way librosa builds its default one
(Slaney mel scale, or HTK's, with Slaney area normalisation), so outputs match
`librosa.feature.melspectrogram(center=True, pad_mode="constant")` without the
dependency. Frames are centred and the signal is zero-padded by half a window at each
end: since batch padding is zeros too, every utterance's own frames are the same batched
or alone. A recording over `WINDOW_FRAMES` frames is computed a window at a time, each
window with the samples its frames reach beyond it, so its memory is its samples and rows,
not its whole spectrum (benchmarks/bench_long_audio.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from ser.errors import ConfigError
from ser.extract.base import Extractor, FeatureSetSpec, Level, base_attrs, check_audio
from ser.extract.options import STORE_DTYPES, KindOptions, store_dtype_option, stored_dtype

if TYPE_CHECKING:  # torch loads with the filterbank, not with the registry
    import torch

MelScale = Literal["slaney", "htk"]

# Slaney's Auditory Toolbox scale: 200/3 Hz per mel up to 1 kHz, then 27 steps per
# factor 6.4 in frequency.
_SLANEY_HZ_PER_MEL = 200.0 / 3
_SLANEY_BREAK_HZ = 1000.0
_SLANEY_BREAK_MEL = _SLANEY_BREAK_HZ / _SLANEY_HZ_PER_MEL
_SLANEY_LOG_STEP = float(np.log(6.4) / 27.0)
#: Frames of a recording's spectrum held at once (5 minutes at a 10 ms hop: ~60 MB).
WINDOW_FRAMES = 30_000


@dataclass(frozen=True)
class LogmelOptions(KindOptions):
    """n_mels bands from fmin to fmax (None: Nyquist); win_ms / hop_ms analysis window and
    hop; n_fft (None: next power of two of the window); log(mel power + log_offset)."""

    n_mels: int = 80
    sample_rate: int = 16000
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int | None = None
    fmin: float = 0.0
    fmax: float | None = None
    mel_scale: MelScale = "slaney"
    log_offset: float = 1e-6
    store_dtype: str | None = store_dtype_option()

    def __post_init__(self) -> None:
        canonical = stored_dtype(self.store_dtype)  # float16 given is the default
        object.__setattr__(self, "store_dtype", None if canonical == STORE_DTYPES[0] else canonical)
        if self.mel_scale not in ("slaney", "htk"):
            raise ConfigError(f"unknown mel_scale {self.mel_scale!r}: use slaney or htk")
        if self.n_mels < 1 or self.hop_ms <= 0 or self.win_ms <= 0 or self.log_offset <= 0:
            raise ConfigError("n_mels, win_ms, hop_ms and log_offset must be positive")
        if not 0 <= self.fmin < (self.fmax or self.sample_rate / 2) <= self.sample_rate / 2:
            raise ConfigError(
                f"need 0 <= fmin < fmax <= {self.sample_rate / 2} Hz (Nyquist), "
                f"got fmin {self.fmin}, fmax {self.fmax}"
            )

    @property
    def win_length(self) -> int:
        return round(self.win_ms * self.sample_rate / 1000)

    @property
    def hop_length(self) -> int:
        return round(self.hop_ms * self.sample_rate / 1000)

    @property
    def fft_size(self) -> int:
        return self.n_fft or 1 << (self.win_length - 1).bit_length()

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> dict[str, Any]:
        rate = float(attrs["sample_rate"])  # window and hop are stored in samples
        win, hop = attrs["win_length"] * 1000 / rate, attrs["hop_length"] * 1000 / rate
        return {**super().from_attrs(attrs), "win_ms": win, "hop_ms": hop}


class LogmelExtractor(Extractor):
    """Feature set `logmel<n_mels>`: `[1 + n_samples // hop, n_mels]` per utterance.

    >>> import torch
    >>> logmel = LogmelExtractor()
    >>> logmel.load(torch.device("cpu"))
    >>> logmel.extract([np.zeros(16000, np.float32)])[0]["logmel80"].shape
    (101, 80)
    """

    kind = "logmel"
    modality = "audio"
    _transient = ("_filterbank", "_window")
    # Frames computed in one STFT call: a longer recording goes a window at a time, so a
    # 2-hour one never holds its whole complex spectrum (4 GB), for the same frames.
    window_frames: int = WINDOW_FRAMES

    def __init__(self, options: LogmelOptions | None = None) -> None:
        import torch

        self.options = options or LogmelOptions()
        if self.options.win_length > self.options.fft_size:
            raise ConfigError(f"n_fft {self.options.fft_size} is shorter than the window")
        self._filterbank: torch.Tensor | None = None  # [n_mels, n_fft // 2 + 1]
        self._window: torch.Tensor | None = None  # [win_length]
        self.device = torch.device("cpu")

    @property
    def sample_rate(self) -> int:
        return self.options.sample_rate

    def row_count(self, n_samples: int, level: Level) -> int:
        """Centred frames: one at every hop from sample 0 (none of no samples)."""
        return 1 + n_samples // self.options.hop_length if n_samples > 0 else 0

    @cached_property
    def _specs(self) -> tuple[FeatureSetSpec, ...]:
        o = self.options
        attrs = base_attrs(
            self.kind,
            "audio",
            "frame",
            o.n_mels,
            stored_dtype(o.store_dtype),
            frame_shift=o.hop_length / o.sample_rate,
            sample_rate=o.sample_rate,
            n_mels=o.n_mels,
            win_length=o.win_length,
            hop_length=o.hop_length,
            n_fft=o.fft_size,
            window="hann",
            center="zeros",
            power=2.0,
            fmin=o.fmin,
            fmax=o.fmax or o.sample_rate / 2,
            mel_scale=o.mel_scale,
            mel_norm="slaney",
            log=f"ln(mel + {o.log_offset:g})",
        )
        return (FeatureSetSpec(f"logmel{o.n_mels}", attrs),)

    def load(self, device: torch.device) -> None:
        import torch

        o = self.options
        bank = mel_filterbank(o.sample_rate, o.fft_size, o.n_mels, o.fmin, o.fmax, o.mel_scale)
        self._filterbank = torch.from_numpy(bank).to(device)
        self._window = torch.hann_window(o.win_length, periodic=True, device=device)
        self.device = device

    def extract(self, batch: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        check_audio(batch, 1, "a log-mel frame")
        self._loaded()
        from torch.nn.utils.rnn import pad_sequence

        hop, name = self.options.hop_length, self._specs[0].name
        n_frames = [1 + len(wave) // hop for wave in batch]
        rows: dict[int, np.ndarray] = {}
        short = [i for i, n in enumerate(n_frames) if n <= self.window_frames]
        if short:
            waves = [self._tensor(batch[i]) for i in short]
            logmel = self._logmel(pad_sequence(waves, batch_first=True), center=True)
            rows = {i: logmel[k, : n_frames[i]].copy() for k, i in enumerate(short)}
        for i, n in enumerate(n_frames):
            if n > self.window_frames:
                rows[i] = self._windowed(np.asarray(batch[i], np.float32), n)
        return [{name: rows[i]} for i in range(len(batch))]

    def _loaded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The filterbank and the analysis window `load` made."""
        if self._filterbank is None or self._window is None:
            raise RuntimeError("logmel: call load(device) before extract()")
        return self._filterbank, self._window

    def _tensor(self, wave: np.ndarray) -> torch.Tensor:
        import torch

        return torch.from_numpy(np.asarray(wave, np.float32)).to(self.device)

    def _windowed(self, wave: np.ndarray, n_frames: int) -> np.ndarray:
        """A long recording's `[n_frames, n_mels]` rows, `window_frames` at a time: each
        window's samples, with the half FFT of zeros or neighbours its centred frames see,
        go through an uncentred STFT, so memory holds one window's spectrum and the rows."""
        o = self.options
        half = o.fft_size // 2
        rows = np.empty((n_frames, o.n_mels), np.float32)
        for first in range(0, n_frames, self.window_frames):
            last = min(n_frames, first + self.window_frames)
            start, end = first * o.hop_length - half, (last - 1) * o.hop_length + o.fft_size - half
            piece = np.zeros(end - start, np.float32)  # zeros beyond the signal, as centring pads
            inside = slice(max(start, 0), min(end, len(wave)))
            piece[inside.start - start : inside.stop - start] = wave[inside]
            rows[first:last] = self._logmel(self._tensor(piece)[None], center=False)[0]
        return rows

    def _logmel(self, waves: torch.Tensor, center: bool) -> np.ndarray:
        """`[B, T, n_mels]` log-mel of `waves` `[B, S]`, on the host."""
        import torch

        o = self.options
        bank, window = self._loaded()
        # fp32 even under autocast: fp16 power spectra overflow (max 65504).
        with torch.inference_mode(), torch.autocast(self.device.type, enabled=False):
            spec = torch.stft(
                waves,
                n_fft=o.fft_size,
                hop_length=o.hop_length,
                win_length=o.win_length,
                window=window,
                center=center,
                pad_mode="constant",
                return_complex=True,
            )  # [B, F, T]
            mel = bank @ spec.abs().square()  # [B, n_mels, T]
            return torch.log(mel + o.log_offset).transpose(1, 2).cpu().numpy()  # [B, T, n_mels]


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    scale: MelScale = "slaney",
) -> np.ndarray:
    """Triangular filters `[n_mels, n_fft // 2 + 1]` (float32), equally spaced on the mel
    scale, each normalised to unit area (Slaney), as `librosa.filters.mel` builds them.

    >>> bank = mel_filterbank(16000, 512, 80)
    >>> bank.shape, bool((bank >= 0).all())
    ((80, 257), True)
    """
    fmax = sample_rate / 2 if fmax is None else fmax
    bins_hz = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)  # [F]
    mels = np.linspace(hz_to_mel(fmin, scale), hz_to_mel(fmax, scale), n_mels + 2)
    edges_hz = mel_to_hz(mels, scale)  # [n_mels + 2]: lower, centre, upper of each filter
    widths = np.diff(edges_hz)  # [n_mels + 1]
    ramps = edges_hz[:, None] - bins_hz[None, :]  # [n_mels + 2, F]
    rising = -ramps[:-2] / widths[:-1, None]  # [n_mels, F]
    falling = ramps[2:] / widths[1:, None]  # [n_mels, F]
    bank = np.maximum(0.0, np.minimum(rising, falling))
    bank *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    empty = np.flatnonzero(bank.max(axis=1) == 0)
    if empty.size:
        raise ConfigError(
            f"mel bands {empty.tolist()} fall between FFT bins: use fewer than {n_mels} "
            f"bands or an n_fft above {n_fft}"
        )
    return bank.astype(np.float32)


def hz_to_mel(frequencies: npt.ArrayLike, scale: MelScale = "slaney") -> np.ndarray:
    """Hz to mel: HTK's 2595 log10(1 + f/700), or Slaney's (linear below 1 kHz, log above)."""
    hz = np.asarray(frequencies, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    linear = hz / _SLANEY_HZ_PER_MEL
    log = _SLANEY_BREAK_MEL + np.log(np.maximum(hz, 1e-10) / _SLANEY_BREAK_HZ) / _SLANEY_LOG_STEP
    return np.where(hz >= _SLANEY_BREAK_HZ, log, linear)


def mel_to_hz(mels: npt.ArrayLike, scale: MelScale = "slaney") -> np.ndarray:
    """The inverse of `hz_to_mel`."""
    mel = np.asarray(mels, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    linear = mel * _SLANEY_HZ_PER_MEL
    log = _SLANEY_BREAK_HZ * np.exp(_SLANEY_LOG_STEP * (mel - _SLANEY_BREAK_MEL))
    return np.where(mel >= _SLANEY_BREAK_MEL, log, linear)
