"""Hidden states of any Hugging Face speech encoder, 20 ms frames: the `speech` kind
(`--speech-model`, a hub id or folder), registered again as `hubert` with HuBERT-base
(`ser.extract.registry`), whose sets keep their attrs and fingerprints.

wav2vec2-family models (HuBERT, wav2vec2, WavLM, data2vec-audio) run through
`wav2vec2.py`, Whisper's encoder through `whisper_encoder.py` (30 s windows; how longer
and shorter utterances are cut and joined is said there). One feature set per layer
(`--layers`: `layer_sets.py`), named `<model name>.L<layer>`; `--pool mean,meanstd` adds
`<model name>.L<layer>.mean` / `.meanstd`, one row per utterance (`--pooled-only`: those
alone). Every set is stored fp16.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ser.errors import ConfigError
from ser.extract.base import FeatureSetSpec, Level, check_audio
from ser.extract.device_rows import Hidden
from ser.extract.layer_sets import LayerExtractor, LayerOptions, describe, settle_options
from ser.extract.wav2vec2 import Wav2Vec2Frames, is_wav2vec2_family
from ser.extract.whisper_encoder import WhisperFrames, is_whisper
from ser.runtime.attention import attention_backends
from ser.runtime.precision import autocast

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig


@dataclass(frozen=True)
class SpeechOptions(LayerOptions):
    """layers: `layers.parse_layers`; pool: pooled views ("" none, "mean", "meanstd",
    "mean,meanstd"); pooled_only: no frame sets; normalize: per-utterance zero-mean
    unit-variance input of wav2vec2-family models (None: as the model's preprocessor
    config says); name: the sets' name stem (None: the model's id)."""

    normalize: bool | None = None
    precision: str = "auto"
    name: str | None = None

    def __post_init__(self) -> None:
        settle_options(self, "speech", self.name)

    @classmethod
    def set_name(cls, stem: str, attrs: Mapping[str, Any]) -> str:
        pool = attrs.get("pool")
        return f"{stem}.L{attrs.get('layer')}" + (f".{pool}" if pool else "")

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {**super().from_attrs(attrs), "layers": str(attrs["layer"])}


class SpeechExtractor(LayerExtractor):
    """Frame-level hidden states, one feature set `<model name>.L<layer>` per layer.

    >>> import tempfile, torch
    >>> from ser.synth.tiny import save_tiny_hubert
    >>> folder = save_tiny_hubert(tempfile.mkdtemp() + "/tiny-hubert")
    >>> speech = SpeechExtractor(SpeechOptions(model=str(folder), layers="all", pool="mean"))
    >>> [spec.name for spec in speech.specs()][:4]
    ['tiny-hubert.L0', 'tiny-hubert.L0.mean', 'tiny-hubert.L1', 'tiny-hubert.L1.mean']
    >>> speech.load(torch.device("cpu"))
    >>> out = speech.extract([np.zeros(16000, np.float32)])
    >>> out[0]["tiny-hubert.L2"].shape, out[0]["tiny-hubert.L2.mean"].shape
    ((49, 32), (1, 32))
    """

    kind = "speech"
    options: SpeechOptions
    modality = "audio"

    def _check_config(self, config: PretrainedConfig) -> None:
        if not (is_wav2vec2_family(config) or is_whisper(config)):
            raise ConfigError(
                f"{self.options.model} is a {config.model_type} model, not a speech encoder "
                "(HuBERT, wav2vec2, WavLM, data2vec-audio or Whisper)"
            )

    @cached_property
    def frames(self) -> Wav2Vec2Frames | WhisperFrames:
        """The model family's forward."""
        family = WhisperFrames if is_whisper(self.config) else Wav2Vec2Frames
        return family(self.config, self.options.model, self.options.normalize)

    @property
    def sample_rate(self) -> int:
        return self.frames.sample_rate

    def padded_seconds(self, seconds: float) -> float:
        return self.frames.padded_seconds(seconds)

    def length_limit(self) -> tuple[float, str] | None:
        return self.frames.length_limit()

    def row_count(self, n_samples: int, level: Level) -> int:
        frames = self.frames.frame_count(n_samples)
        return frames if level == "frame" else min(frames, 1)  # a pooled set: one row

    @property
    def n_layers(self) -> int:
        return self.frames.n_layers

    @cached_property
    def _specs(self) -> tuple[FeatureSetSpec, ...]:
        import transformers

        frames = self.frames
        common = self._model_attrs(
            "frame",
            frames.dim,
            frames.frame_shift,
            frames.sample_rate,
            n_layers=frames.n_layers,
            **frames.settings(),
            precision=self.precision,
            transformers_version=transformers.__version__,
        )
        return self._layer_specs([{**common, "layer": layer} for layer in self.layers])

    def _load_detail(self) -> str:
        return describe(self.layers, self.options.pool)

    def _loaded_model(self) -> torch.nn.Module:
        model = super()._loaded_model()
        encoder = getattr(model, "encoder", None)
        if is_whisper(self.config) and encoder is not None:
            # Only the encoder makes the features (and its weights their checksum).
            self._model = model = encoder.eval()
        return model

    def _hidden(self, batch: Sequence[np.ndarray]) -> Hidden:
        import torch
        from torch.nn.attention import sdpa_kernel

        frames = self.frames
        check_audio(batch, frames.min_samples, f"{self.options.model} (one 20 ms frame)")
        self.check_lengths(batch)
        with (
            torch.inference_mode(),
            autocast(self.device, self.precision),
            sdpa_kernel(attention_backends()),
        ):
            return frames.hidden(self.model, list(batch), self.layers, self.device)
