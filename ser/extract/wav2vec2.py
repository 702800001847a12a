"""The `speech` kind's forward for wav2vec2-family models (HuBERT, wav2vec2, WavLM,
data2vec-audio): hidden states of 20 ms frames.

Padding must not change outputs, and the HF forward cannot promise that: hubert-base and
wav2vec2-base normalise their first conv layer with GroupNorm over time, so zero padding
shifts every frame's conv features. We run the conv encoder on each utterance's own
samples, pad the frames, and let the transformer encoder mask them. Encoders that let
padding leak anyway (data2vec-audio's stacked positional convs) only batch inputs of
equal length.

Layer n is HF's `hidden_states[n]` (0 = the transformer input; for stable-layer-norm
models the last is before the final LayerNorm). Layers above the highest asked never run.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ser.errors import ConfigError
from ser.extract.base import load_pretrained
from ser.extract.layer_sets import recorded_hidden_states

if TYPE_CHECKING:  # torch and transformers load with the model, not with the registry
    import torch

# Model types whose encoder zeroes padded frames before a single positional conv and masks
# them in attention, so padded frames never reach real ones (checked in transformers 5).
MASKED_ENCODERS = frozenset({"hubert", "wav2vec2", "wavlm"})
_NEEDED = ("conv_kernel", "conv_stride", "hidden_size", "num_hidden_layers")


def is_wav2vec2_family(config: Any) -> bool:
    return all(hasattr(config, name) for name in _NEEDED)


@dataclass(frozen=True)
class _Preprocessing:
    sample_rate: int
    normalize: bool


class Wav2Vec2Frames:
    """How one wav2vec2-family model turns waves into hidden states; `normalize`: the
    `speech` option (None: as the model's preprocessor config says)."""

    def __init__(self, config: Any, model: str, normalize: bool | None) -> None:
        self.config, self.model_name, self._normalize = config, model, normalize

    @cached_property
    def _preprocessing(self) -> _Preprocessing:
        from transformers import AutoFeatureExtractor

        try:
            processor = load_pretrained(
                AutoFeatureExtractor.from_pretrained, self.model_name, "feature extractor"
            )
        except ConfigError:
            # A folder with only weights and config: the family's usual 16 kHz, raw input.
            processor = None
        normalize = self._normalize
        if normalize is None:
            normalize = bool(getattr(processor, "do_normalize", False))
        return _Preprocessing(int(getattr(processor, "sampling_rate", 16000)), normalize)

    @property
    def sample_rate(self) -> int:
        return self._preprocessing.sample_rate

    @property
    def frame_shift(self) -> float:
        return math.prod(self.config.conv_stride) / self.sample_rate

    @property
    def dim(self) -> int:
        return int(self.config.hidden_size)

    @property
    def n_layers(self) -> int:
        return int(self.config.num_hidden_layers)

    def padded_seconds(self, seconds: float) -> float:
        return seconds  # frames of the audio itself: a batch pads to its longest input

    def settings(self) -> dict[str, Any]:
        """The attrs of its sets that only this family has (after `n_layers`)."""
        return {
            "normalize": self._preprocessing.normalize,
            "feat_extract_norm": getattr(self.config, "feat_extract_norm", None),
        }

    @cached_property
    def min_samples(self) -> int:
        """The conv stack's receptive field: fewest samples that give one frame."""
        field = 1
        for kernel, stride in reversed(
            list(zip(self.config.conv_kernel, self.config.conv_stride, strict=True))
        ):
            field = (field - 1) * stride + kernel
        return field

    def hidden(
        self, model: Any, waves: list[np.ndarray], layers: tuple[int, ...], device: torch.device
    ) -> list[torch.Tensor]:
        """The chosen layers of each input: B x [L, T_i, D]."""
        import torch

        inputs = [torch.from_numpy(self._prepare(wave)).to(device) for wave in waves]
        if self.config.model_type in MASKED_ENCODERS:
            return self._forward(model, inputs, layers)
        # Masks that let padding leak (data2vec-audio's stacked positional convs).
        return _by_length(lambda group: self._forward(model, group, layers), inputs)

    def _forward(
        self, model: Any, waves: list[torch.Tensor], layers: tuple[int, ...]
    ) -> list[torch.Tensor]:
        import torch

        frames = self._conv_frames(model, waves)  # B x [T_i, C]
        hidden = self._encode(model, frames, max(layers))  # [max(layers) + 1] x [B, T, D]
        stacked = torch.stack([hidden[layer] for layer in layers], dim=1)  # [B, L, T, D]
        return [stacked[i, :, : len(f)] for i, f in enumerate(frames)]

    def _prepare(self, wave: np.ndarray) -> np.ndarray:
        wave = np.asarray(wave, dtype=np.float32)
        if self._preprocessing.normalize:
            # As Wav2Vec2FeatureExtractor does, but on the unpadded samples only.
            wave = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)
        return wave

    def _conv_frames(self, model: Any, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        """Conv features of each utterance on its own samples: B x [T_i, C]."""
        import torch
        from torch.nn.utils.rnn import pad_sequence

        conv = model.feature_extractor
        if getattr(self.config, "feat_extract_norm", None) == "layer":
            # Per-frame LayerNorm: frames within an utterance never see its padding.
            n_frames = [self._n_frames(len(wave)) for wave in waves]
            feats = conv(pad_sequence(waves, batch_first=True)).transpose(1, 2)  # [B, T, C]
            return [feats[i, :n] for i, n in enumerate(n_frames)]
        # GroupNorm over time (or a norm we do not know): equal-length utterances together.
        return _by_length(lambda group: conv(torch.stack(group)).transpose(1, 2), waves)

    def _encode(self, model: Any, frames: list[torch.Tensor], top: int) -> list[torch.Tensor]:
        """Hidden states 0..top of the padded frames: [B, T, D] each."""
        import torch
        from torch.nn.utils.rnn import pad_sequence

        device = frames[0].device
        lengths = torch.tensor([len(f) for f in frames], device=device)
        padded = pad_sequence(frames, batch_first=True)  # [B, T, C]
        mask = torch.arange(padded.shape[1], device=device)[None] < lengths[:, None]  # [B, T]
        hidden = model.feature_projection(padded)
        if isinstance(hidden, tuple):  # wav2vec2 / WavLM also return the normed conv features
            hidden = hidden[0]
        with recorded_hidden_states(model.encoder.layers, top) as states:
            model.encoder(hidden, attention_mask=mask)
        return states

    def _n_frames(self, n_samples: int) -> int:
        for kernel, stride in zip(self.config.conv_kernel, self.config.conv_stride, strict=True):
            n_samples = (n_samples - kernel) // stride + 1
        return n_samples


def _by_length(
    run: Callable[[list[torch.Tensor]], Iterable[torch.Tensor]], waves: list[torch.Tensor]
) -> list[torch.Tensor]:
    """`run` on each group of equal-length inputs, its outputs back in input order."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, wave in enumerate(waves):
        groups[len(wave)].append(i)
    out: dict[int, torch.Tensor] = {}
    for members in groups.values():
        out.update(zip(members, run([waves[i] for i in members]), strict=True))
    return [out[i] for i in range(len(waves))]
