"""A speech encoder as an ONNX graph: 16 kHz samples in, the run's stored sets out.

Input `waveform` [batch, samples] float32: utterances of one length (no padding: the
GroupNorm of HuBERT-base's first conv would see it). Outputs: each of the run's feature
sets this encoder makes, by its stored name, [batch, rows, D] float32 (frames, or one
row for a pooled `.mean`/`.meanstd` set), as `ser extract` computes them on the CPU
(its per-utterance normalisation when the model's preprocessor asks for it, the recorded
layer's hidden states); the head rounds them to the stored dtype. Batch and samples are
dynamic.

wav2vec2-family encoders export (HuBERT, wav2vec2, WavLM, data2vec-audio). Whisper's does
not: its log-mel front end is transformers' numpy feature extractor, outside any graph;
nor do the other extractors (openSMILE, log-mel, text encoders), which `ser predict
--runtime onnx` runs as `--runtime torch` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ser.cache.fingerprint import differences, identity
from ser.errors import ConfigError, FingerprintMismatch
from ser.export.onnx_io import save_onnx
from ser.extract.registry import build_extractor, kind
from ser.extract.speech import SpeechExtractor
from ser.extract.wav2vec2 import Wav2Vec2Frames

INPUT = "waveform"
#: What a pooled set's attrs add to its layer's (the encoder is the same).
VIEW = ("pool", "level", "dim")
#: Samples of the traced example (two seconds: above any conv's receptive field).
EXAMPLE_SAMPLES = 32000


def refusal(attrs: Mapping[str, Any]) -> str | None:
    """Why the encoder of a set with these attrs does not export (None: it does)."""
    if attrs.get("modality") != "audio" or attrs.get("model") is None:
        what = attrs.get("extractor")
        return f"{what} features are not made by a speech encoder (they run as in torch)"
    if attrs.get("model_type") == "whisper":
        return (
            "Whisper's encoder does not export: its log-mel front end is transformers' numpy "
            "feature extractor, outside the graph"
        )
    return None


class SpeechSets(nn.Module):
    """Waveforms [B, S] -> each set's rows [B, T, D] (module docstring)."""

    def __init__(
        self, frames: Wav2Vec2Frames, model: nn.Module, sets: Mapping[str, Mapping[str, Any]]
    ):
        super().__init__()
        # A transformers wav2vec2-family model: Any, as its parts are reached by name
        # (feature_extractor, encoder), which nn.Module types as Tensor | Module.
        self.model: Any = model
        self.normalize = bool(frames.settings()["normalize"])
        self.sets = [(name, int(a["layer"]), a.get("pool")) for name, a in sets.items()]
        self.top = max(layer for _, layer, _ in self.sets)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.normalize:  # as `ser extract`: over each utterance's own samples
            mean = wave.mean(dim=-1, keepdim=True)
            wave = (wave - mean) / torch.sqrt(wave.var(dim=-1, unbiased=False, keepdim=True) + 1e-7)
        frames = self.model.feature_extractor(wave).transpose(1, 2)  # [B, T, C]
        hidden = self.model.feature_projection(frames)
        if isinstance(hidden, tuple):  # wav2vec2 / WavLM also return the normed conv features
            hidden = hidden[0]
        states = _hidden_states(self.model.encoder, hidden, self.top)
        out = []
        for _, layer, pool in self.sets:
            rows = states[layer]  # [B, T, D]
            if pool is None:
                out.append(rows)
                continue
            mean = rows.mean(dim=1, keepdim=True)  # [B, 1, D]
            out.append(
                mean
                if pool == "mean"
                else torch.cat([mean, rows.std(dim=1, unbiased=False, keepdim=True)], -1)
            )
        return tuple(out)


# `encoder`: Any, as its `layers` are swapped for the forward (nn.Module types them as
# Tensor | Module).
def _hidden_states(encoder: Any, hidden: torch.Tensor, top: int) -> list[torch.Tensor]:
    """HF's hidden states 0..top (the first layer's input, then each layer's output) of
    the encoder run on layers 0..top-1 only. `recorded_hidden_states` stops the forward
    with an exception, which `torch.export` cannot trace through; here the layers above
    are left out of the encoder the graph calls (its own module list: the layers are
    shared, nothing is copied)."""
    states: list[torch.Tensor] = []
    layers = encoder.layers
    handles = [layers[0].register_forward_pre_hook(lambda _m, args: states.append(args[0]))]

    def record(
        _module: nn.Module,
        _args: tuple[torch.Tensor, ...],
        out: torch.Tensor | tuple[torch.Tensor, ...],
    ) -> None:
        states.append(out[0] if isinstance(out, tuple) else out)

    handles += [layer.register_forward_hook(record) for layer in layers[:top]]
    encoder.layers = nn.ModuleList(layers[: max(top, 1)])
    try:
        encoder(hidden, attention_mask=None)
    finally:
        encoder.layers = layers
        for handle in handles:
            handle.remove()
    return states[: top + 1]


def loaded_encoder(sets: Mapping[str, Mapping[str, Any]], model: str) -> SpeechExtractor:
    """The speech extractor of these sets (their model at `model`), loaded on the CPU and
    checked to make them as recorded."""
    attrs = next(iter(sets.values()))
    options = kind(str(attrs["extractor"])).options.from_attrs(attrs)
    layers = ",".join(dict.fromkeys(str(a["layer"]) for a in sets.values()))
    options.update(model=model, layers=layers, pool="", pooled_only=False)
    extractor = build_extractor(str(attrs["extractor"]), **options)
    if not isinstance(extractor, SpeechExtractor):  # `refusal` lets only speech encoders by
        what = attrs["extractor"]
        raise ConfigError(f"--onnx: {what} features are not made by a speech encoder")
    extractor.load(torch.device("cpu"))
    made = {int(s.attrs["layer"]): s.attrs for s in extractor.specs()}
    for name, a in sets.items():
        recorded = {k: v for k, v in identity(a).items() if k not in VIEW}
        here = {k: v for k, v in identity(made[int(a["layer"])]).items() if k not in VIEW}
        diffs = differences(recorded, here)
        if diffs:
            raise FingerprintMismatch(
                f"--onnx: feature set {name} cannot be made again by {model}: {'; '.join(diffs)}"
            )
    return extractor


def export_encoder(sets: Mapping[str, Mapping[str, Any]], model: str, path: Path) -> dict[str, Any]:
    """Write the graph of the encoder at `model` making `sets` ({name: attrs}) to `path`."""
    extractor = loaded_encoder(sets, model)
    frames = extractor.frames
    if not isinstance(frames, Wav2Vec2Frames):
        raise ConfigError(
            f"--onnx: {refusal({'modality': 'audio', 'model': model, 'model_type': 'whisper'})}"
        )
    graph = SpeechSets(frames, extractor.model, sets).eval()
    batch, samples = torch.export.Dim("batch"), torch.export.Dim("samples", min=frames.min_samples)
    example = (torch.randn(2, EXAMPLE_SAMPLES),)
    save_onnx(
        graph,
        example,
        ({0: batch, 1: samples},),
        [INPUT],
        list(sets),
        path,
        what=f"the speech encoder {Path(model).name}",
    )
    return {
        "file": path.name,
        "input": f"{INPUT}: [batch, samples] float32, {frames.sample_rate} Hz mono, "
        "one length a batch",
        "outputs": list(sets),
        "sample_rate": frames.sample_rate,
        "min_samples": frames.min_samples,
        "normalize": bool(frames.settings()["normalize"]),
    }
