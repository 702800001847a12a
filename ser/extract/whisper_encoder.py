"""The `speech` kind's forward for Whisper's encoder: hidden states of 20 ms frames.

Whisper's encoder reads a fixed 30 s window: 3000 log-mel frames (10 ms hop), which its
strided conv halves to 1500 frames of 20 ms. An utterance is cut into consecutive 30 s
windows (one window up to 30 s; a 45 s one: 0-30 s and 30-45 s), each padded with
silence to 30 s and turned into log-mel by the model's own feature extractor, exactly as
Whisper always pads its input; of each window only the frames of real audio are kept
(`samples // 320`: one frame per 20 ms), and the windows' frames are joined in order. A
utterance of n samples so gives n // 320 frames (45 s: 1500 + 750), and its first 1500
frames are those of its first 30 s extracted alone. Windows never see each other (no
overlap, no context across the cut), and padding never changes a window's frames: every
window is padded to 30 s however the batch is made. At most `WINDOWS_PER_CALL` windows go
through the encoder at once, so a recording of hours costs its frames, not its attention.

Layer n is HF's `hidden_states[n]` of `WhisperEncoder`: 0 is the conv + positional
embedding, the last is after the encoder's final LayerNorm, as HF returns it. Layers above
the highest asked never run.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ser.errors import ConfigError
from ser.extract.base import load_feature_extractor
from ser.extract.device_rows import Hidden, pad_states
from ser.extract.layer_sets import recorded_hidden_states

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import PretrainedConfig, WhisperFeatureExtractor


#: Windows through the encoder in one call: a GPU batch's (240 padded seconds), so an hour's
#: 120 windows never hold their attention and activations at once.
WINDOWS_PER_CALL = 8


def is_whisper(config: PretrainedConfig) -> bool:
    return getattr(config, "model_type", None) == "whisper"


class WhisperFrames:
    """How one Whisper model's encoder turns waves into hidden states."""

    def __init__(self, config: PretrainedConfig, model: str, normalize: bool | None) -> None:
        if normalize is not None:
            raise ConfigError(
                f"{model} is a Whisper model: its log-mel input is normalised as Whisper's "
                "feature extractor does; the normalize option is for wav2vec2-family models"
            )
        self.config, self.model_name = config, model
        self.dim, self.n_layers = int(config.d_model), int(config.encoder_layers)

    @cached_property
    def processor(self) -> WhisperFeatureExtractor:
        """The model's log-mel feature extractor (Whisper's defaults for a bare folder)."""
        from transformers import WhisperFeatureExtractor

        processor = load_feature_extractor(WhisperFeatureExtractor.from_pretrained, self.model_name)
        if processor is None:
            processor = WhisperFeatureExtractor(feature_size=self.config.num_mel_bins)
        processor.dither = 0.0  # no noise: the same audio always gives the same features
        return processor

    @property
    def sample_rate(self) -> int:
        return int(self.processor.sampling_rate)

    @property
    def window(self) -> int:
        """Samples per window: 30 s."""
        return int(self.processor.n_samples)

    @property
    def hop(self) -> int:
        """Samples per encoder frame: 320 (two 10 ms log-mel frames)."""
        return self.window // int(self.config.max_source_positions)

    @property
    def frame_shift(self) -> float:
        return self.hop / self.sample_rate

    @property
    def min_samples(self) -> int:
        return self.hop

    def frame_count(self, n_samples: int) -> int:
        """Frames `hidden` gives of `n_samples`: each 30 s window's `len // hop` (a tail
        under one hop gives none)."""
        whole, tail = divmod(n_samples, self.window)
        return whole * (self.window // self.hop) + tail // self.hop

    def padded_seconds(self, seconds: float) -> float:
        """Every window costs 30 s, however short: a 4 s utterance computes as a 30 s one."""
        windows = max(1, math.ceil(seconds * self.sample_rate / self.window))
        return windows * self.window / self.sample_rate

    def settings(self) -> dict[str, Any]:
        """The attrs of its sets that only Whisper has (after `n_layers`)."""
        return {
            "n_mels": int(self.config.num_mel_bins),
            "window_seconds": self.window / self.sample_rate,
        }

    def hidden(
        self,
        encoder: nn.Module,
        waves: list[np.ndarray],
        layers: tuple[int, ...],
        device: torch.device,
    ) -> Hidden:
        """The chosen layers of the inputs padded, T_i = n_samples // 320 frames each (the
        windows of a batch run as one batch, whatever the device)."""
        import torch

        pieces = [self._windows(np.asarray(wave, np.float32)) for wave in waves]
        flat = [chunk for chunks in pieces for chunk in chunks]  # every window of the batch
        kept: list[torch.Tensor] = []  # each window's frames of real audio, [L, T_w, D]
        for first in range(0, len(flat), WINDOWS_PER_CALL):
            group = flat[first : first + WINDOWS_PER_CALL]
            mel = self.processor(group, sampling_rate=self.sample_rate, return_tensors="pt")
            states = self._encode(encoder, mel.input_features.to(device), max(layers))
            stacked = torch.stack([states[layer] for layer in layers], dim=1)  # [W, L, 1500, D]
            kept += [stacked[j, :, : len(c) // self.hop] for j, c in enumerate(group)]
        out, start = [], 0
        for chunks in pieces:
            out.append(torch.cat(kept[start : start + len(chunks)], dim=1))  # [L, T_i, D]
            start += len(chunks)
        return Hidden(pad_states(out), [int(state.shape[1]) for state in out])

    def length_limit(self) -> None:
        return None  # any length: WINDOWS_PER_CALL windows at a time

    def _windows(self, wave: np.ndarray) -> list[np.ndarray]:
        """Consecutive 30 s pieces holding at least one frame (a tail under 20 ms has none)."""
        starts = range(0, len(wave), self.window)
        chunks = [wave[s : s + self.window] for s in starts]
        return [c for c in chunks if len(c) >= self.hop]

    # `encoder`: Any, as its parts are reached by name (layers, layer_norm), which
    # nn.Module types as Tensor | Module.
    def _encode(self, encoder: Any, mel: torch.Tensor, top: int) -> list[torch.Tensor]:
        """Hidden states 0..top of the windows' log-mel `[W, n_mels, 3000]`: [W, 1500, D]
        each; the last layer's through the final LayerNorm, as HF's `hidden_states`."""
        with recorded_hidden_states(encoder.layers, top) as states:
            encoder(mel)
        if top == self.n_layers:
            states[top] = encoder.layer_norm(states[top])
        return states
