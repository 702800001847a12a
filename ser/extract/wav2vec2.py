"""Hidden states of a wav2vec2-family speech model (HuBERT, wav2vec2, WavLM), 20 ms frames.

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
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ser.cache.fingerprint import model_location
from ser.cache.model_names import check_set_name
from ser.errors import ConfigError
from ser.extract.base import (
    FeatureSetSpec,
    PretrainedExtractor,
    base_attrs,
    check_audio,
    load_pretrained,
)
from ser.extract.options import KindOptions, option
from ser.runtime.precision import autocast

if TYPE_CHECKING:  # torch and transformers load with the model, not with the registry
    import torch
    from torch import nn

# Model types whose encoder zeroes padded frames before a single positional conv and masks
# them in attention, so padded frames never reach real ones (checked in transformers 5).
MASKED_ENCODERS = frozenset({"hubert", "wav2vec2", "wavlm"})


@dataclass(frozen=True)
class HubertOptions(KindOptions):
    """normalize: per-utterance zero-mean unit-variance input (None: as the model's
    preprocessor config says); name: the sets' name stem (None: the model's id)."""

    model: str = option(
        "facebook/hubert-base-ls960", "model (hub id or folder)", "kind", metavar="ID_OR_DIR"
    )
    layers: str = option(
        "last",
        "hidden states to keep: 12, 6,9,12, all or last (one set each)",
        "shared",
        metavar="LIST",
    )
    normalize: bool | None = None
    precision: str = "auto"
    name: str | None = None

    def __post_init__(self) -> None:
        layers: Any = self.layers
        if isinstance(layers, int):
            layers = str(layers)
        elif not isinstance(layers, str):
            layers = ",".join(str(int(layer)) for layer in layers)
        object.__setattr__(self, "layers", layers)
        parse_layers(layers, n_layers=10**6, model=self.model)  # syntax only; range at specs()
        if self.name is not None:
            check_set_name(self.name)

    @classmethod
    def set_name(cls, stem: str, attrs: Mapping[str, Any]) -> str:
        return f"{stem}.L{attrs.get('layer')}"

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {**super().from_attrs(attrs), "layers": str(attrs["layer"])}


def parse_layers(spec: str, n_layers: int, model: str) -> tuple[int, ...]:
    """Hidden-state indices from "12", "6,9,12", "all" (0..n) or "last" (n).

    >>> parse_layers("6, 9,12", 12, "m")
    (6, 9, 12)
    >>> parse_layers("all", 2, "m")
    (0, 1, 2)
    """
    text = spec.strip().lower()
    if text == "all":
        return tuple(range(n_layers + 1))
    if text == "last":
        return (n_layers,)
    if not re.fullmatch(r"\d+(\s*,\s*\d+)*", text):
        raise ConfigError(f"bad --layers {spec!r}: use a number, a list like 6,9,12, all or last")
    layers = tuple(dict.fromkeys(int(part) for part in text.split(",")))
    bad = [layer for layer in layers if layer > n_layers]
    if bad:
        raise ConfigError(
            f"layer(s) {', '.join(map(str, bad))} out of range: {model} has {n_layers} "
            f"transformer layers (valid: 0..{n_layers}, all, last)"
        )
    return layers


@dataclass(frozen=True)
class _Preprocessing:
    sample_rate: int
    normalize: bool


class HubertExtractor(PretrainedExtractor):
    """Frame-level hidden states, one feature set `<model name>.L<layer>` per layer.

    >>> import tempfile, torch
    >>> from ser.synth.tiny import save_tiny_hubert
    >>> folder = save_tiny_hubert(tempfile.mkdtemp() + "/tiny-hubert")
    >>> hubert = HubertExtractor(HubertOptions(model=str(folder), layers="all"))
    >>> [spec.name for spec in hubert.specs()]
    ['tiny-hubert.L0', 'tiny-hubert.L1', 'tiny-hubert.L2']
    >>> hubert.load(torch.device("cpu"))
    >>> out = hubert.extract([np.zeros(16000, np.float32)])
    >>> out[0]["tiny-hubert.L2"].shape
    (49, 32)
    """

    kind = "hubert"
    options: HubertOptions
    modality = "audio"

    def _check_config(self, config: Any) -> None:
        needed = ("conv_kernel", "conv_stride", "hidden_size", "num_hidden_layers")
        if not all(hasattr(config, name) for name in needed):
            raise ConfigError(
                f"{self.options.model} is a {config.model_type} model, not a wav2vec2-family "
                "speech model (HuBERT, wav2vec2, WavLM, data2vec-audio)"
            )

    @cached_property
    def _preprocessing(self) -> _Preprocessing:
        from transformers import AutoFeatureExtractor

        try:
            processor = load_pretrained(
                AutoFeatureExtractor.from_pretrained, self.options.model, "feature extractor"
            )
        except ConfigError:
            # A folder with only weights and config: the family's usual 16 kHz, raw input.
            processor = None
        normalize = self.options.normalize
        if normalize is None:
            normalize = bool(getattr(processor, "do_normalize", False))
        return _Preprocessing(int(getattr(processor, "sampling_rate", 16000)), normalize)

    @property
    def sample_rate(self) -> int:
        return self._preprocessing.sample_rate

    @cached_property
    def layers(self) -> tuple[int, ...]:
        return parse_layers(self.options.layers, self.config.num_hidden_layers, self.options.model)

    @cached_property
    def min_samples(self) -> int:
        """The conv stack's receptive field: fewest samples that give one frame."""
        field = 1
        for kernel, stride in reversed(
            list(zip(self.config.conv_kernel, self.config.conv_stride, strict=True))
        ):
            field = (field - 1) * stride + kernel
        return field

    @cached_property
    def _specs(self) -> tuple[FeatureSetSpec, ...]:
        import transformers

        config, prep = self.config, self._preprocessing
        common = base_attrs(
            self.kind,
            "audio",
            "frame",
            config.hidden_size,
            "float16",
            frame_shift=math.prod(config.conv_stride) / prep.sample_rate,
            sample_rate=prep.sample_rate,
            model=model_location(self.options.model),  # a folder: found from anywhere
            model_type=config.model_type,
            weights_sha256=self.weights_checksum(),
            n_layers=config.num_hidden_layers,
            normalize=prep.normalize,
            feat_extract_norm=getattr(config, "feat_extract_norm", None),
            precision=self.precision,
            transformers_version=transformers.__version__,
        )
        sets = ({**common, "layer": layer} for layer in self.layers)
        return tuple(FeatureSetSpec(HubertOptions.set_name(self.stem, a), a) for a in sets)

    def _load_detail(self) -> str:
        layers = ",".join(map(str, self.layers))
        return f"layer{'s' if len(self.layers) > 1 else ''} {layers}"

    def extract(self, batch: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        import torch

        check_audio(batch, self.min_samples, f"{self.options.model} (one 20 ms frame)")
        model: Any = self.model
        waves = [torch.from_numpy(self._prepare(wave)).to(self.device) for wave in batch]
        names = [spec.name for spec in self._specs]
        with torch.inference_mode(), autocast(self.device, self.precision):
            if self.config.model_type in MASKED_ENCODERS:
                states = self._forward(model, waves)
            else:  # masks that let padding leak (data2vec-audio's stacked positional convs)
                states = _by_length(lambda group: self._forward(model, group), waves)
            chosen = [output.float().cpu().numpy() for output in states]  # B x [L, T_i, D]
        return [{name: rows[j] for j, name in enumerate(names)} for rows in chosen]

    def _forward(self, model: Any, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        """The chosen layers of each input: B x [L, T_i, D]."""
        import torch

        frames = self._conv_frames(model, waves)  # B x [T_i, C]
        hidden = self._encode(model, frames)  # [max(layers) + 1] x [B, T, D]
        stacked = torch.stack([hidden[layer] for layer in self.layers], dim=1)  # [B, L, T, D]
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

    def _encode(self, model: Any, frames: list[torch.Tensor]) -> list[torch.Tensor]:
        """Hidden states 0..max(layers) of the padded frames: [B, T, D] each."""
        import torch
        from torch.nn.utils.rnn import pad_sequence

        lengths = torch.tensor([len(f) for f in frames], device=self.device)
        padded = pad_sequence(frames, batch_first=True)  # [B, T, C]
        mask = torch.arange(padded.shape[1], device=self.device)[None] < lengths[:, None]  # [B, T]
        hidden = model.feature_projection(padded)
        if isinstance(hidden, tuple):  # wav2vec2 / WavLM also return the normed conv features
            hidden = hidden[0]
        top = max(self.layers)
        with _recorded_hidden_states(model.encoder.layers, top) as states, suppress(_EnoughLayers):
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


class _EnoughLayers(Exception):
    """Raised by a hook once the highest wanted layer has run, to skip those above."""


@contextmanager
def _recorded_hidden_states(layers: nn.ModuleList, top: int) -> Iterator[list[torch.Tensor]]:
    """Collect HF's `hidden_states` 0..top (the first layer's input, then each layer's
    output), then stop the forward with `_EnoughLayers`. A raising hook, not a truncated
    `layers` list: the model is never mutated (threads share it), and the encoder's code
    after its layers (a final LayerNorm, in no hidden state) is skipped too."""
    states: list[torch.Tensor] = []

    def record_input(module: nn.Module, args: tuple[Any, ...]) -> None:
        states.append(args[0])
        if top == 0:
            raise _EnoughLayers

    def record_output(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        states.append(output[0] if isinstance(output, tuple) else output)
        if len(states) > top:
            raise _EnoughLayers

    handles = [layers[0].register_forward_pre_hook(record_input)]
    handles += [layer.register_forward_hook(record_output) for layer in layers[:top]]
    try:
        yield states
    finally:
        for handle in handles:
            handle.remove()
