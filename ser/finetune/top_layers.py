"""The top k layers of a pretrained encoder, run on the hidden states a feature store holds.

When only an encoder's top k layers train, its bottom layers are frozen: their output for
every utterance is a constant, the set `ser extract --layers` wrote for layer N-k. So
fine-tuning needs no audio and no bottom layers: `load_top_layers` loads the model as the
extractor does (`ser.extract`'s speech and text kinds, so folders, hub ids and
sentence-transformers packages resolve alike), keeps only the layers above `from_layer`,
and `TopLayers` applies them to cached rows [batch, time, dim] with a mask (True = real
row).

Layer numbers are the extractor's: layer n is HF's `hidden_states[n]`, 0 the first
transformer layer's input. The output of the model's last layer is what the extractor
stores as the last layer: for Whisper after the encoder's final LayerNorm; for
stable-layer-norm wav2vec2-family models (WavLM, hubert-large, wav2vec2-large) before
the encoder's final LayerNorm, as `ser/extract/wav2vec2.py` records it; the other models
have no norm after their last layer. LayerDrop is not applied: every kept layer runs.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast

import torch
from torch import nn

from ser.errors import ConfigError
from ser.extract.base import load_pretrained
from ser.extract.registry import build_extractor, kind
from ser.extract.speech import SpeechExtractor
from ser.extract.text_encoder import TextEncoderExtractor

if TYPE_CHECKING:
    from transformers import PretrainedConfig

Family = Literal["speech", "text"]
Layered = SpeechExtractor | TextEncoderExtractor  # the kinds whose sets are hidden states

WHISPER_CAVEAT = (
    "Whisper's top layers see only the frames the store keeps, while the full encoder also "
    "attended to each 30 s window's silence padding and never across windows: outputs equal "
    "the stored last layer only for utterances of whole 30 s windows"
)


@dataclass(frozen=True)
class Architecture:
    """How one architecture's top layers are cut out and run.

    family: the extractor family that loads it (the speech or text kind); layers: the
    dotted path of the layer list in the model that extractor loads; final_norm: the norm
    the extractor's last layer includes, applied when the kept layers reach the top;
    mask: "bidirectional" (HF's `create_bidirectional_mask`, as the model's encoder makes
    it for its attention implementation) or "padding" (the [B, T] mask as it is: WavLM's
    attention turns it into a key padding mask itself); bias: the relative position bias
    the layers take ("wavlm": made by the first layer's attention, "mpnet": by the
    encoder); targets: LoRA's default modules; caveat: where the cut is not exact."""

    family: Family
    layers: str
    final_norm: str | None = None
    mask: Literal["bidirectional", "padding"] = "bidirectional"
    bias: Literal["none", "wavlm", "mpnet"] = "none"
    targets: tuple[str, ...] = ("q_proj", "v_proj")
    caveat: str | None = None


_WAV2VEC2 = Architecture("speech", "encoder.layers")
_BERT = Architecture("text", "encoder.layer", targets=("query", "value"))
# The model types ser extracts whose top layers can run alone. WavLM's attention reads its
# projections' weights itself (torch's multi_head_attention_forward), so LoRA there goes on
# the feed-forward layers.
ARCHITECTURES: dict[str, Architecture] = {
    "hubert": _WAV2VEC2,
    "wav2vec2": _WAV2VEC2,
    "data2vec-audio": _WAV2VEC2,
    "wavlm": Architecture(
        "speech",
        "encoder.layers",
        mask="padding",
        bias="wavlm",
        targets=("intermediate_dense", "output_dense"),
    ),
    "whisper": Architecture("speech", "layers", final_norm="layer_norm", caveat=WHISPER_CAVEAT),
    "bert": _BERT,
    "roberta": _BERT,
    "mpnet": Architecture("text", "encoder.layer", bias="mpnet", targets=("q", "v")),
}
# WavLM attention's own parameters, unused by its relative position bias.
_WAVLM_ATTENTION = ("q_proj", "k_proj", "v_proj", "out_proj", "gru_rel_pos_linear")


class TopLayers(nn.Module):
    """The k encoder layers that turn the cached hidden state `from_layer` into hidden state
    `to_layer` = from_layer + k (HF's `layers[from_layer:to_layer]`). Built from a model it
    takes apart: the kept layers are moved here, the rest is left to be freed. Parameters
    train by default (`freeze_norms`: its LayerNorms do not); a position bias shared with
    the frozen layers below never does."""

    def __init__(
        self,
        model: nn.Module,
        architecture: Architecture,
        from_layer: int,
        k: int | None = None,
        freeze_norms: bool = False,
    ) -> None:
        super().__init__()
        # The model's own config: it holds the attention implementation the model loaded with.
        config = cast("PretrainedConfig", model.config)
        layers = _layer_list(model, architecture.layers)
        n_layers = len(layers)
        k = n_layers - from_layer if k is None else k
        _check_range(from_layer, k, n_layers, str(config.model_type))
        self.config, self.architecture = config, architecture
        self.from_layer, self.to_layer, self.n_layers = from_layer, from_layer + k, n_layers
        self.dim = int(config.hidden_size)  # Whisper's d_model too (its attribute map)
        self.layers = nn.ModuleList(layers[from_layer : from_layer + k])
        norm = architecture.final_norm if self.to_layer == n_layers else None
        self.norm = None if norm is None else model.get_submodule(norm)
        self.bias_source = _bias_source(model, architecture, layers, from_layer)
        self.weights_sha256: str | None = None  # of the whole model, as the store's attrs say
        self.set_trainable(freeze_norms)
        self.eval()

    @property
    def caveat(self) -> str | None:
        """Where the output differs from the stored last layer (Whisper), else None."""
        return self.architecture.caveat

    def set_trainable(self, freeze_norms: bool = False) -> None:
        """Every kept parameter trains, but LayerNorms with `freeze_norms`, and a position
        bias the frozen layers below share (it made their cached output) unless none is."""
        self.requires_grad_(True)
        if freeze_norms:
            for module in self.modules():
                if isinstance(module, nn.LayerNorm):
                    module.requires_grad_(False)
        if self.bias_source is not None and self.from_layer > 0:
            self.bias_source.requires_grad_(False)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Cached layer `from_layer` [B, T, D] and its mask [B, T] (True = real row) ->
        layer `to_layer` [B, T, D], padded rows zero."""
        if hidden.dim() != 3 or hidden.shape[-1] != self.dim or mask.shape != hidden.shape[:2]:
            raise ConfigError(
                f"top layers take rows [batch, time, {self.dim}] and a mask [batch, time]; "
                f"got {tuple(hidden.shape)} and {tuple(mask.shape)}: is the set of this model?"
            )
        real = mask.to(torch.bool)  # [B, T]
        attention = self._attention_mask(hidden, real)
        bias = self._position_bias(hidden)
        for layer in self.layers:
            extra = {} if self.architecture.bias == "none" else {"position_bias": bias}
            out = layer(hidden, attention_mask=attention, **extra)
            if isinstance(out, tuple):  # WavLM: (rows, bias); MPNet: (rows,)
                hidden = out[0]
                bias = out[1] if self.architecture.bias == "wavlm" else bias
            else:
                hidden = out  # [B, T, D]
        if self.norm is not None:
            hidden = self.norm(hidden)
        return hidden.masked_fill(~real[..., None], 0.0)

    def _attention_mask(self, hidden: torch.Tensor, real: torch.Tensor) -> torch.Tensor | None:
        """What the encoder hands its layers for `real` [B, T]: the mask itself (WavLM),
        or HF's bidirectional mask for the attention implementation (None: no padding)."""
        if self.architecture.mask == "padding":
            return real
        from transformers.masking_utils import create_bidirectional_mask

        made = create_bidirectional_mask(
            config=self.config, inputs_embeds=hidden, attention_mask=real
        )
        if made is not None and not isinstance(made, torch.Tensor):
            raise ConfigError(
                f"the model's attention takes a {type(made).__name__}, which the top layers "
                "cannot pass on: load it with the sdpa or eager attention implementation"
            )
        return made

    def _position_bias(self, hidden: torch.Tensor) -> torch.Tensor | None:
        """The relative position bias the kept layers take: WavLM's [B*H, T, T] (None when
        its first layer is kept: that layer makes it), MPNet's [B, H, T, T]."""
        source = self.bias_source
        if source is None:
            return None
        batch, frames, _ = hidden.shape
        if self.architecture.bias == "mpnet":
            return source.compute_position_bias(hidden)  # type: ignore[operator]
        values = source.compute_bias(frames, frames)  # type: ignore[operator]  # [H, T, T]
        # As WavLM's first attention layer repeats it for the batch.
        return values.unsqueeze(0).repeat(batch, 1, 1, 1).view(-1, frames, frames)


class OtherWeights(ConfigError):
    """The model holds other weights than those that wrote the cached set (`found`: their
    checksum): its layers would not continue the cached rows."""

    def __init__(self, model: str, found: str) -> None:
        super().__init__(f"{model} holds other weights (sha256 {found[:12]}...)")
        self.found = found


def load_top_layers(
    model: str,
    from_layer: int,
    k: int | None = None,
    *,
    kind_name: str | None = None,
    freeze_norms: bool = False,
    made_by: str | None = None,
) -> TopLayers:
    """The top layers of `model` (hub id or folder) above the cached layer `from_layer`:
    k of them (None: up to the last), in float32 on the CPU, eval mode. `kind_name`: the
    extractor kind that wrote the cached set (its attrs' "extractor"); a kind whose sets
    are not an encoder's hidden states (is13, logmel) is refused. `made_by`: the checksum
    of the weights that wrote the set; other weights are `OtherWeights`, before any layer
    count of theirs is held against the set's."""
    extractor = _extractor(model, kind_name)
    architecture = _architecture(str(extractor.config.model_type), model, extractor)
    extractor.load(torch.device("cpu"))
    found = extractor.weights_checksum()
    if made_by is not None and found != made_by:
        raise OtherWeights(model, found)
    top = TopLayers(extractor.model, architecture, from_layer, k, freeze_norms)
    top.weights_sha256 = found
    return top


def merged_encoder(
    model: str, tops: Sequence[TopLayers], kind_name: str | None = None
) -> nn.Module:
    """The whole encoder `model` (float32 on the CPU, as its checkpoint holds it) with
    each of `tops`' layers (trained copies of its own) put in place of its own, LoRA's
    adapters folded into the weights they adapt: what `save_pretrained` writes as the
    fine-tuned encoder."""
    extractor = _extractor(model, kind_name)
    architecture = _architecture(str(extractor.config.model_type), model, extractor)
    if architecture.final_norm is not None:  # Whisper: the extractor keeps its encoder alone
        raise ConfigError(
            f"{model}: ser loads Whisper's encoder without its decoder, so it cannot write "
            "the fine-tuned model back whole: export without --with-encoders"
        )
    whole = extractor.pretrained()
    for top in tops:
        _put_back(whole, architecture, top)
    return whole


def folded_state(top: TopLayers) -> dict[str, torch.Tensor]:
    """`top`'s state as whole layers: LoRA's adapters folded into the weights they adapt
    (W + B A scale, peft's merge) and gone, so the keys are those of the layers alone."""
    from peft.tuners.lora import LoraLayer

    merged = copy.deepcopy(top)
    for module in merged.modules():
        if isinstance(module, LoraLayer):
            module.merge()
    return {
        k.replace(".base_layer.", "."): v.detach()
        for k, v in merged.state_dict().items()
        if ".lora_" not in k
    }


def weights_of(model: str, kind_name: str | None = None) -> str:
    """The weights checksum of `model` as the extractor computes it (`ser predict`
    compares this one)."""
    return _extractor(model, kind_name).weights_checksum()


def _put_back(whole: nn.Module, architecture: Architecture, top: TopLayers) -> None:
    """`top`'s tensors copied over the ones of `whole` it was cut from: a throwaway copy of
    `whole` is cut as `top` was (`TopLayers` takes its model apart), and each tensor of
    the cut is found in the copy by identity, which names it in `whole`."""
    probe = copy.deepcopy(whole)
    named = {id(t): n for n, t in probe.state_dict(keep_vars=True).items()}
    cut = TopLayers(probe, architecture, top.from_layer, top.to_layer - top.from_layer)
    state, target = folded_state(top), whole.state_dict()
    with torch.no_grad():
        for name, tensor in cut.state_dict(keep_vars=True).items():
            target[named[id(tensor)]].copy_(state[name])


def top_parameters(model: str, k: int) -> int:
    """About how many parameters k transformer layers of `model` hold, from its config
    alone (attention 4 d^2, feed-forward 2 d f; biases and norms left out): what a
    sweep's estimate adds for a fine-tuned input, without loading the weights."""
    from transformers import AutoConfig

    config = load_pretrained(AutoConfig.from_pretrained, model, "model config")
    d = int(getattr(config, "hidden_size", 0) or getattr(config, "d_model", 0))
    ffn = int(getattr(config, "intermediate_size", 0) or getattr(config, "encoder_ffn_dim", 4 * d))
    return k * (4 * d * d + 2 * d * ffn)


def lora(
    top: TopLayers, rank: int = 8, alpha: int = 16, targets: Sequence[str] | None = None
) -> TopLayers:
    """`top` with LoRA adapters (peft) on its layers' `targets` (None: the architecture's
    attention query and value, WavLM's feed-forward); only the adapters train. Adapters
    start at zero (B = 0), so the output is at first the frozen layers'."""
    from peft import LoraConfig, inject_adapter_in_model

    chosen = list(targets or top.architecture.targets)
    if top.architecture.bias == "wavlm" and set(chosen) & set(_WAVLM_ATTENTION):
        raise ConfigError(
            f"LoRA on WavLM's {', '.join(sorted(set(chosen) & set(_WAVLM_ATTENTION)))} would "
            "change nothing (its attention reads those weights directly): target "
            "intermediate_dense and output_dense"
        )
    top.requires_grad_(False)  # adapters made after this train; nothing else does
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=chosen, lora_dropout=0.0)
    try:
        inject_adapter_in_model(config, top.layers)
    except ValueError as error:
        raise ConfigError(
            f"LoRA targets {', '.join(chosen)}: {str(error).splitlines()[0]}"
        ) from None
    return top


def _extractor(model: str, kind_name: str | None) -> Layered:
    """The extractor that loads `model` as the cached sets were made: `kind_name`'s, else
    the text kind's (any encoder's config reads through it; speech models load again)."""
    name = kind_name or "text"
    if not issubclass(kind(name).extractor, SpeechExtractor | TextEncoderExtractor):
        raise ConfigError(
            f"{name} features are not an encoder's hidden states: they have no layers above "
            "them to fine-tune (speech, hubert, text, mpnet and bert sets have)"
        )
    # The registry builds the kind's class, checked just above.
    extractor = cast(Layered, build_extractor(name, model=model, precision="fp32"))
    model_type = str(extractor.config.model_type)
    if kind_name is None and _architecture(model_type, model, None).family == "speech":
        extractor = cast(Layered, build_extractor("speech", model=model, precision="fp32"))
    return extractor


def _architecture(model_type: str, model: str, extractor: Layered | None) -> Architecture:
    """The table's entry for `model_type`; `ConfigError` for another, or for a model the
    `extractor` given does not extract."""
    found = ARCHITECTURES.get(model_type)
    if found is None:
        raise ConfigError(
            f"{model} is a {model_type} model, whose top layers ser cannot run alone: use "
            f"one of {', '.join(ARCHITECTURES)}"
        )
    family = "speech" if isinstance(extractor, SpeechExtractor) else "text"
    if extractor is not None and family != found.family:
        raise ConfigError(f"{model} is a {found.family} model, not one the {family} kind reads")
    return found


def _check_range(from_layer: int, k: int, n_layers: int, model_type: str) -> None:
    has = f"this {model_type} model has {_layers(n_layers)}"
    if not 0 <= from_layer < n_layers:
        raise ConfigError(
            f"cached layer {from_layer} out of range: {has}, so the top layers start above "
            f"a layer 0..{n_layers - 1}"
        )
    if not 1 <= k <= n_layers - from_layer:
        raise ConfigError(
            f"{k} top layers above layer {from_layer}: {has}, {n_layers - from_layer} above "
            f"it (use k 1..{n_layers - from_layer})"
        )


def _layers(n: int) -> str:
    return f"{n} layer{'' if n == 1 else 's'}"


def _layer_list(model: nn.Module, path: str) -> nn.ModuleList:
    """The layer list at dotted `path` ("encoder.layers")."""
    found = model.get_submodule(path)
    if not isinstance(found, nn.ModuleList):
        raise ConfigError(f"{type(model).__name__}.{path} is not a list of layers")
    return found


def _bias_source(
    model: nn.Module, architecture: Architecture, layers: nn.ModuleList, from_layer: int
) -> nn.Module | None:
    """The module that makes the kept layers' position bias, stripped of the rest: MPNet's
    encoder without its layers; WavLM's first attention without its projections (None
    when the first layer is kept: it makes the bias itself)."""
    if architecture.bias == "mpnet":
        encoder = model.get_submodule("encoder")
        encoder.layer = nn.ModuleList()  # the kept layers live in TopLayers
        return encoder
    if architecture.bias == "wavlm" and from_layer > 0:
        attention = layers[0].get_submodule("attention")
        for name in (*_WAVLM_ATTENTION, "gru_rel_pos_const"):
            delattr(attention, name)
        return attention
    return None
