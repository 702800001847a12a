"""The `speech` kind's forward for wav2vec2-family models (HuBERT, wav2vec2, WavLM,
data2vec-audio): hidden states of 20 ms frames.

Padding must not change outputs, and the HF forward cannot promise that: hubert-base and
wav2vec2-base normalise their first conv layer with GroupNorm over time, so zero padding
shifts every frame's conv features. On the CPU we run the conv encoder on each utterance's
own samples (as fast there, and the numbers of every earlier CPU store), pad the frames,
and let the transformer encoder mask them. On a GPU (`BATCHED_DEVICES`) one conv call per
layer takes the whole batch, padded to a bucketed length so that a shard meets few
shapes, its GroupNorm counting each utterance's own frames (`masked_group_norm`): a
conv call per utterance, each of a new shape, left the GPU idle. `FRONT_END` says how
each conv layer runs there: cuDNN's conv ("conv"), or one matrix product of its windows
("matmul", `strided_conv`), which the benchmarks measure side by side. Encoders that let
padding leak anyway (data2vec-audio's stacked positional convs) only batch inputs of
equal length.

Layer n is HF's `hidden_states[n]` (0 = the transformer input; for stable-layer-norm
models the last is before the final LayerNorm). Layers above the highest asked never run.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ser.extract.base import load_feature_extractor
from ser.extract.device_rows import Hidden, pad_states, row_mask, to_device
from ser.extract.layer_sets import recorded_hidden_states

if TYPE_CHECKING:  # torch and transformers load with the model, not with the registry
    import torch
    from transformers import PretrainedConfig

# Model types whose encoder zeroes padded frames before a single positional conv and masks
# them in attention, so padded frames never reach real ones (checked in transformers 5).
MASKED_ENCODERS = frozenset({"hubert", "wav2vec2", "wavlm"})
# Device types whose conv front end runs over the padded batch (`Wav2Vec2Frames.hidden`).
BATCHED_DEVICES = frozenset({"cuda"})
# How the batched front end runs each conv layer: "conv" (cuDNN) or "matmul"
# (`strided_conv`). On an H100 cuDNN gave the family's strided convs generic kernels
# (implicit_convolve_sgemm: 63 % of an extraction's GPU time); a product of the windows
# runs on the tensor cores, its kernel chosen without timing. HuBERT-base's last layer,
# an hour end to end on an H200: 1568x real time against cuDNN's 1386x (same call).
FRONT_END = "matmul"
# How the batched path runs the encoder's grouped positional conv: "conv" (cuDNN's
# generic kernels: 57 % of an H200 extraction's GPU time) or "matmul"
# (`GroupedConvProduct`, equal within float rounding, not yet measured on a GPU).
POSITIONAL = "conv"
#: The longest recording taken in one piece: the whole of it goes through the conv front
#: end and the attention at once (HuBERT-base: 1.3 GB peak at 30 s, 2.7 GB at 120 s, ~16 MB
#: a second more; attention's time grows with the square), and windows would change its
#: frames, so a longer one is refused, naming the limit, before it is decoded.
MAX_SECONDS = 300.0
W = TypeVar("W", bound=Sized)  # an input: samples on the host or on the device
_NEEDED = ("conv_kernel", "conv_stride", "hidden_size", "num_hidden_layers")


def is_wav2vec2_family(config: PretrainedConfig) -> bool:
    return all(hasattr(config, name) for name in _NEEDED)


@dataclass(frozen=True)
class _Preprocessing:
    sample_rate: int
    normalize: bool


class Wav2Vec2Frames:
    """How one wav2vec2-family model turns waves into hidden states; `normalize`: the
    `speech` option (None: as the model's preprocessor config says)."""

    def __init__(self, config: PretrainedConfig, model: str, normalize: bool | None) -> None:
        self.config, self.model_name, self._normalize = config, model, normalize
        self.dim, self.n_layers = int(config.hidden_size), int(config.num_hidden_layers)

    @cached_property
    def _preprocessing(self) -> _Preprocessing:
        from transformers import AutoFeatureExtractor

        # None for a folder with only weights and config: the family's 16 kHz, raw input.
        processor = load_feature_extractor(AutoFeatureExtractor.from_pretrained, self.model_name)
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

    def padded_seconds(self, seconds: float) -> float:
        return seconds  # frames of the audio itself: a batch pads to its longest input

    def length_limit(self) -> tuple[float, str]:
        return MAX_SECONDS, "its memory grows ~16 MB a second, its attention's time as the square"

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
        self,
        model: torch.nn.Module,
        waves: list[np.ndarray],
        layers: tuple[int, ...],
        device: torch.device,
        batched: bool | None = None,
    ) -> Hidden:
        """The chosen layers of the inputs, padded, and each input's frame count.
        `batched`: the conv front end over the padded batch at once, else over each
        utterance's own samples (None: batched on `BATCHED_DEVICES`)."""
        if batched is None:
            batched = device.type in BATCHED_DEVICES
        prepared = [self._prepare(wave) for wave in waves]
        lengths = [self.frame_count(len(wave)) for wave in prepared]
        if self.config.model_type not in MASKED_ENCODERS:
            # Masks that let padding leak (data2vec-audio's stacked positional convs).
            def run(group: list[np.ndarray]) -> list[torch.Tensor]:
                return self._forward_each(model, group, layers, device)

            return Hidden(pad_states(_by_length(run, prepared)), lengths)
        if batched:
            if POSITIONAL == "matmul":
                positional_as_product(model)
            frames = self._conv_batched(model, prepared, device)  # [B, T, C]
        else:
            frames = self._conv_each(model, prepared, device)  # [B, T, C]
        return Hidden(self._layers(model, frames[:, : max(lengths)], lengths, layers), lengths)

    # `model` below: Any, as the family's parts are reached by name (feature_extractor,
    # encoder ...), which nn.Module types as Tensor | Module.
    def _forward_each(
        self, model: Any, waves: list[np.ndarray], layers: tuple[int, ...], device: torch.device
    ) -> list[torch.Tensor]:
        """Inputs of one length together, unmasked: B x [L, T, D]."""
        import torch

        frames = model.feature_extractor(torch.from_numpy(np.stack(waves)).to(device))
        stacked = self._layers(model, frames.transpose(1, 2), None, layers)  # [B, L, T, D]
        return list(stacked)

    def _layers(
        self, model: Any, frames: torch.Tensor, lengths: list[int] | None, layers: tuple[int, ...]
    ) -> torch.Tensor:
        """The chosen hidden states of padded conv features [B, T, C]: [B, L, T, D]."""
        import torch

        mask = None if lengths is None else row_mask(lengths, frames.shape[1], frames.device)
        hidden = model.feature_projection(frames)
        if isinstance(hidden, tuple):  # wav2vec2 / WavLM also return the normed conv features
            hidden = hidden[0]
        top = max(layers)
        with recorded_hidden_states(model.encoder.layers, top) as states:
            model.encoder(hidden, attention_mask=mask)
        return torch.stack([states[layer] for layer in layers], dim=1)

    def _prepare(self, wave: np.ndarray) -> np.ndarray:
        wave = np.asarray(wave, dtype=np.float32)
        if self._preprocessing.normalize:
            # As Wav2Vec2FeatureExtractor does, but on the unpadded samples only.
            wave = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)
        return wave

    def _conv_each(self, model: Any, waves: list[np.ndarray], device: torch.device) -> torch.Tensor:
        """Conv features of each utterance on its own samples, padded: [B, T, C]."""
        import torch
        from torch.nn.utils.rnn import pad_sequence

        conv = model.feature_extractor
        inputs = [torch.from_numpy(wave).to(device) for wave in waves]
        if getattr(self.config, "feat_extract_norm", None) == "layer":
            # Per-frame LayerNorm: frames within an utterance never see its padding.
            return conv(pad_sequence(inputs, batch_first=True)).transpose(1, 2)
        # GroupNorm over time (or a norm we do not know): equal-length utterances together.
        each = _by_length(lambda group: conv(torch.stack(group)).transpose(1, 2), inputs)
        return pad_sequence(each, batch_first=True)

    def _conv_batched(
        self, model: Any, waves: list[np.ndarray], device: torch.device
    ) -> torch.Tensor:
        """Conv features of the batch padded to its length's bucket (`bucket_length`), in
        one call per layer: [B, T, C]. A GroupNorm over time counts each utterance's own
        frames only, so the features are those of `_conv_each` (within float rounding);
        every later layer is a plain strided conv whose frames inside an utterance's count
        never reach its padding."""
        import torch

        samples = bucket_length(max(len(wave) for wave in waves))
        padded = np.zeros((len(waves), samples), dtype=np.float32)
        for row, wave in zip(padded, waves, strict=True):
            row[: len(wave)] = wave
        if FRONT_END == "matmul":
            return self._windows_batched(model, padded, waves, device)
        h = to_device(padded, device)[:, None]  # [B, 1, S]
        first, *rest = model.feature_extractor.conv_layers
        norm = getattr(first, "layer_norm", None)
        if isinstance(norm, torch.nn.GroupNorm):
            h = first.conv(h)  # [B, C, T0]
            kernel, stride = self.config.conv_kernel[0], self.config.conv_stride[0]
            counts = [(len(wave) - kernel) // stride + 1 for wave in waves]
            h = first.activation(masked_group_norm(h, to_device(np.asarray(counts), device), norm))
        else:
            h = first(h)
        for layer in rest:
            h = layer(h)
        return h.transpose(1, 2)  # [B, T, C]

    def _windows_batched(
        self, model: Any, padded: np.ndarray, waves: list[np.ndarray], device: torch.device
    ) -> torch.Tensor:
        """`_conv_batched` with time first and each conv layer one matrix product of its
        windows (`strided_conv`): [B, T, C]."""
        import torch

        from ser.extract.conv_products import strided_conv

        h = to_device(padded, device)[:, :, None]  # [B, S, 1]
        counts = np.array([len(wave) for wave in waves])
        for layer in model.feature_extractor.conv_layers:
            h = strided_conv(h, layer.conv)  # [B, T', C]
            counts = (counts - layer.conv.kernel_size[0]) // layer.conv.stride[0] + 1
            norm = getattr(layer, "layer_norm", None)
            if isinstance(norm, torch.nn.GroupNorm):  # over time: [B, C, T] as it expects
                counted = to_device(counts, device)
                h = masked_group_norm(h.transpose(1, 2), counted, norm).transpose(1, 2)
            elif norm is not None:  # a LayerNorm over each frame's channels
                h = norm(h)
            h = layer.activation(h)
        return h

    def frame_count(self, n_samples: int) -> int:
        """Frames the conv stack gives of `n_samples` (0: fewer than `min_samples`)."""
        if n_samples < self.min_samples:
            return 0
        for kernel, stride in zip(self.config.conv_kernel, self.config.conv_stride, strict=True):
            n_samples = (n_samples - kernel) // stride + 1
        return n_samples


def bucket_length(n: int, per_octave: int = 8) -> int:
    """The smallest length >= n on a grid of `per_octave` steps between powers of two:
    padding stays under 1/per_octave, and a length-sorted shard meets few distinct conv
    shapes.

    >>> bucket_length(59200), bucket_length(4096), bucket_length(100)
    (61440, 4096, 104)
    """
    step = max(1, (1 << (n.bit_length() - 1)) // per_octave)
    return -(-n // step) * step


def positional_as_product(model: Any) -> None:  # Any: its encoder reached by name
    """The encoder's positional conv (HF's `pos_conv_embed.conv`) as a
    `GroupedConvProduct`, in place, once."""
    from ser.extract.conv_products import GroupedConvProduct

    embed = getattr(model.encoder, "pos_conv_embed", None)
    conv = getattr(embed, "conv", None)
    if embed is not None and conv is not None and not isinstance(conv, GroupedConvProduct):
        embed.conv = GroupedConvProduct(conv)


def masked_group_norm(
    x: torch.Tensor, counts: torch.Tensor, norm: torch.nn.GroupNorm
) -> torch.Tensor:
    """`norm` of x [B, C, T] over each input's first `counts[b]` frames only: [B, C, T]
    float32, as autocast runs a GroupNorm (frames past the count are normalised too, with
    the input's statistics, and never used)."""
    import torch

    batch, channels, frames = x.shape
    groups = norm.num_groups
    h = x.float().reshape(batch, groups, channels // groups, frames)
    valid = torch.arange(frames, device=x.device) < counts.view(-1, 1)  # [B, T]
    weight = valid.view(batch, 1, 1, frames).float()
    n = counts.float().view(batch, 1, 1, 1) * (channels // groups)
    mean = (h * weight).sum(dim=(2, 3), keepdim=True) / n  # [B, G, 1, 1]
    var = ((h - mean).square() * weight).sum(dim=(2, 3), keepdim=True) / n
    out = ((h - mean) * torch.rsqrt(var + norm.eps)).view(batch, channels, frames)
    if norm.affine:
        out = out * norm.weight.float().view(1, -1, 1) + norm.bias.float().view(1, -1, 1)
    return out


def _by_length(
    run: Callable[[list[W]], Iterable[torch.Tensor]], waves: list[W]
) -> list[torch.Tensor]:
    """`run` on each group of equal-length inputs, its outputs back in input order."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, wave in enumerate(waves):
        groups[len(wave)].append(i)
    out: dict[int, torch.Tensor] = {}
    for members in groups.values():
        out.update(zip(members, run([waves[i] for i in members]), strict=True))
    return [out[i] for i in range(len(waves))]
