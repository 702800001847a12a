"""A run's fine-tuned inputs: `--finetune SET:top=K[,lora=R,...]` values (`FineTune`,
read and checked in `ser.finetune.value`) loaded (`load_tuning`), the top layers joined to
a model (`attach`), how they train (`param_groups`, `warmup`) and what a checkpoint keeps
of them (`trained_state`, `restore`).

A fine-tuned input is a cached layer set (`hubert.L9`) that the model's own copy of the
encoder's next k layers turns into what the family reads, in a forward pre-hook, as the
layer mix of a layered input is made: every family takes it, and a family's code never
knows. The data side gathers the set's rows (`InputSpec.gather`) wherever they live
(streamed from the store under a `--memory-budget` they do not fit, as any sequence
input's), the top layers run on them with the padding mask, and a family that reads a
vector gets their masked mean.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ser.cache.model_names import looks_like_path, missing_folder
from ser.errors import ConfigError
from ser.finetune.top_layers import OtherWeights, TopLayers, load_top_layers, lora
from ser.finetune.value import FineTune, parse_all
from ser.models.base import SerModel
from ser.models.batch import InputSpec

#: The attribute (and state-dict prefix) of a model's top layers.
TOP_LAYERS = "top_layers"


def load_prototype(tune: FineTune, name: str, attrs: Mapping[str, Any]) -> TopLayers:
    """The top layers of the encoder that wrote the stored set `name` (its `attrs`),
    above its layer: loaded from the model its attrs name, refused where that model is
    gone or no longer the one that made the cached rows (its weights' checksum)."""
    layer = attrs.get("layer")
    if layer is None or attrs.get("level") not in ("frame", "token"):
        raise ConfigError(
            f"--finetune {tune.feature}: {name} is not one layer's frames or tokens of an "
            "encoder (a pooled or non-encoder set has no layers above it)"
        )
    check_top(tune, name, attrs)
    check_source(tune, name, attrs)
    try:
        top = load_top_layers(
            str(attrs["model"]),
            int(layer),
            tune.top,
            kind_name=str(attrs.get("extractor")),
            freeze_norms=tune.norms == "frozen",
            made_by=str(attrs.get("weights_sha256")),
        )
    except OtherWeights as other:
        model, stem = str(attrs["model"]), re.sub(r"\.L\d+(@.*)?$", "", name)
        raise ConfigError(
            f"--finetune {tune.spelled}: {_where(attrs)} no longer matches the set {name}: "
            f"its weights (sha256 {other.found[:12]}...) are not those that wrote the set "
            f"({str(attrs.get('weights_sha256'))[:12]}...), and the top layers must continue "
            "the layers that made the cached rows; put back the model that wrote it, or "
            f"extract the set again from this one ({_extract(attrs, model, stem)} --overwrite)"
        ) from None
    return top


def check_top(tune: FineTune, name: str, attrs: Mapping[str, Any]) -> None:
    """`tune.top` within the layers the encoder has above the set's, where its attrs say
    how many it has (`n_layers`); `ConfigError` naming the bounds otherwise."""
    layer, layers = attrs.get("layer"), attrs.get("n_layers")
    if layer is None or layers is None or tune.top <= int(layers) - int(layer):
        return
    above = int(layers) - int(layer)
    bounds = f"1..{above}" if above > 0 else "none: the set is its last layer"
    raise ConfigError(
        f"--finetune {tune.spelled}: top must be within the encoder's layers above the set "
        f"({name} is layer {layer} of {layers}, so top {bounds})"
    )


def check_source(tune: FineTune, name: str, attrs: Mapping[str, Any]) -> None:
    """`ConfigError` at once where the model folder that wrote the set `name` is gone
    (moved, renamed, deleted): its layers are what fine-tuning continues. The set keeps
    its folder's old place (its identity is the weights' checksum), so the way on is that
    place, or the layer extracted anew under another name."""
    model = str(attrs.get("model"))
    if not missing_folder(model):
        return
    new = "NEW_NAME" + (found.group(0) if (found := re.search(r"\.L\d+", name)) else "")
    raise ConfigError(
        f"--finetune {tune.spelled}: the model folder {model} that wrote {name} is not "
        "there (moved or deleted?), and the top layers load from it: put the folder back "
        f"(or a link to it: ln -s NEW_FOLDER {model}), or extract the layer from its new "
        f"place under a new name ({_extract(attrs, 'NEW_FOLDER', 'NEW_NAME')}) and fine-tune "
        f"{new}"
    )


def _where(attrs: Mapping[str, Any]) -> str:
    model = str(attrs.get("model"))
    return f"the model folder {model}" if looks_like_path(model) else f"the model {model}"


def _extract(attrs: Mapping[str, Any], model: str, stem: str) -> str:
    """The `ser extract` options that write the set `attrs` describe from `model`, as
    `stem`.L<layer>: what fine-tuning reads (float32)."""
    kind, layer = attrs.get("extractor", "KIND"), attrs.get("layer", "N")
    return (
        f"`ser extract ... --features {kind} --{kind}-model {model} --{kind}-layers {layer} "
        f"--name {kind}={stem} --precision fp32`"
    )


@dataclass(frozen=True)
class Tuning:
    """A run's fine-tuned inputs: each input's (stored set's) top layers as loaded, and
    how they train, by input name."""

    prototypes: Mapping[str, TopLayers]
    tunes: Mapping[str, FineTune]
    # Where the top layers do not continue the cached rows exactly, a line each.
    notes: tuple[str, ...] = ()

    def attach(self, model: SerModel, seed: int | None = None) -> SerModel:
        """`model` with its own copy of the top layers (`attach`)."""
        return attach(model, self.prototypes, self.tunes, seed)

    def record(self) -> list[dict[str, Any]]:
        """What a checkpoint says of them: the input, its `--finetune` value, the layers
        and the base weights' checksum (the weights themselves are not kept)."""
        return [
            {
                "input": name,
                "finetune": self.tunes[name].spelled,
                "from_layer": top.from_layer,
                "to_layer": top.to_layer,
                "weights_sha256": top.weights_sha256,
            }
            for name, top in self.prototypes.items()
        ]


def load_tuning(
    texts: Sequence[str], sets: Mapping[str, tuple[str, Mapping[str, Any]]]
) -> Tuning | None:
    """The run's `--finetune` values (`texts`) loaded: `sets` maps each `--features`
    request of one stored set (not layered) to its name and attrs. None: none tuned."""
    if not texts:
        return None
    for text in texts:
        if (request := text.partition(":")[0]) not in sets:
            raise ConfigError(
                f"--finetune {text}: {request} is a layered input (several stored layers); "
                "tune one layer's set, e.g. hubert.L9"
            )
    prototypes, tunes, notes = {}, {}, []
    for tune in parse_all(texts):
        name, attrs = sets[tune.feature]
        if attrs.get("precision", "fp32") != "fp32":
            raise ConfigError(
                f"--finetune {tune.spelled}: {name} was extracted in {attrs['precision']}, "
                "but its top layers continue the encoder in float32 from the weights "
                f"loaded; extract layer {attrs.get('layer')} again with `ser extract ... "
                "--precision fp32` (--overwrite replaces the set)"
            )
        prototypes[name], tunes[name] = load_prototype(tune, name, attrs), tune
        if prototypes[name].caveat:
            notes.append(f"{name}: {prototypes[name].caveat}")
    return Tuning(prototypes, tunes, tuple(notes))


def tuned_specs(specs: Sequence[InputSpec], names: Sequence[str]) -> list[InputSpec]:
    """`specs` with each fine-tuned input's rows gathered (`InputSpec.gather`)."""
    for name in names:
        spec = next((s for s in specs if s.name == name), None)
        if spec is None or spec.layers > 1:
            why = "a layered input mixes stored layers" if spec else "the model does not read it"
            raise ConfigError(f"--finetune {name}: {why}; tune one layer's set")
    return [replace(s, gather="sequence") if s.name in names else s for s in specs]


def attach(
    model: SerModel,
    prototypes: Mapping[str, TopLayers],
    tunes: Mapping[str, FineTune],
    seed: int | None = None,
) -> SerModel:
    """`model` with its own copy of each input's top layers (`prototypes`, by input
    name), LoRA's adapters drawn from `seed` where asked, run before its forward."""
    tops = []
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        for name, prototype in prototypes.items():
            top, tune = copy.deepcopy(prototype), tunes[name]
            top.set_trainable(freeze_norms=tune.norms == "frozen")
            if tune.lora is not None:
                top = lora(top, tune.lora, tune.lora_alpha, tune.targets or None)
                if tune.norms == "train":  # beside the adapters, as whole layers' do
                    for module in top.modules():
                        if isinstance(module, nn.LayerNorm):
                            module.requires_grad_(True)
            tops.append(top)
    named = tuple(prototypes)
    setattr(model, TOP_LAYERS, TunedInputs(tops, named, tuple(tunes[n] for n in named)))
    model.register_forward_pre_hook(_run_top_layers)
    return model


class TunedInputs(nn.ModuleList):
    """A model's fine-tuned top layers, one per input of `names`, tuned as `tunes` say."""

    def __init__(
        self, tops: Sequence[TopLayers], names: tuple[str, ...], tunes: tuple[FineTune, ...]
    ) -> None:
        super().__init__(tops)
        self.names, self.tunes = names, tunes

    def tops(self) -> list[tuple[str, TopLayers, FineTune]]:
        """(input name, its top layers, how they train), in order."""
        layers = [top for top in self if isinstance(top, TopLayers)]
        return list(zip(self.names, layers, self.tunes, strict=True))


def _run_top_layers(model: SerModel, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The forward pre-hook: each fine-tuned input's rows through its top layers, as the
    view the family reads."""
    batch, *rest = args
    x, mask = dict(batch.x), dict(batch.mask)
    views = {spec.name: spec.view for spec in model.inputs}
    tuned = top_layers(model)
    for name, top, _ in [] if tuned is None else tuned.tops():
        rows = _through(top, x[name], mask[name])  # [..., T, D], padding zero
        if views[name] == "vector":
            real = mask.pop(name).to(rows.dtype)  # [..., T]
            rows = rows.sum(-2) / real.sum(-1, keepdim=True).clamp_min(1)  # [..., D]
        x[name] = rows
    return (replace(batch, x=x, mask=mask), *rest)


def _through(top: TopLayers, rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Rows [B, T, D] (a dialog's [B, U, T, D]) and their mask through `top`: only the
    utterances with a real row run (a padding utterance's attention would mask every key)."""
    flat, real = rows.flatten(0, -3), mask.flatten(0, -2)  # [N, T, D], [N, T]
    kept = real.any(-1)  # [N]
    out = torch.zeros_like(flat)
    out[kept] = top(flat[kept], real[kept]).to(out.dtype)
    return out.view(rows.shape)


def top_layers(module: nn.Module) -> TunedInputs | None:
    """A model's fine-tuned top layers (None: it has none)."""
    found = getattr(module, TOP_LAYERS, None)
    return found if isinstance(found, TunedInputs) else None


def param_groups(module: nn.Module, lr: float) -> list[dict[str, Any]]:
    """The optimiser's groups: the model's own parameters at `lr`, then each fine-tuned
    input's trainable ones at its encoder rate (a model without any: one group)."""
    tops = top_layers(module)
    if tops is None:
        return [{"params": list(module.parameters()), "lr": lr}]
    inside = {id(p) for p in tops.parameters()}
    groups = [{"params": [p for p in module.parameters() if id(p) not in inside], "lr": lr}]
    for _, top, tune in tops.tops():
        trained = [p for p in top.parameters() if p.requires_grad]
        groups.append({"params": trained, "lr": tune.encoder_lr, "warmup": tune.warmup})
    return groups


def warmup(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Each group's rate rising linearly from zero over its `warmup` share of `steps`
    (the model's own group: none), constant after."""

    def rise(share: float) -> Any:
        span = max(1, round(share * steps))
        return lambda step: min(1.0, (step + 1) / span) if share > 0 else 1.0

    lambdas = [rise(float(group.get("warmup", 0.0))) for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)


def trained_state(module: nn.Module, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` without the top layers' frozen weights (LoRA's base, frozen norms): a
    checkpoint holds what trained, and the base weights by their checksum."""
    frozen = _frozen(module)
    return {k: v for k, v in state.items() if k not in frozen}


def restore(module: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """`state` (`trained_state`'s) loaded: the rest stays the base weights just loaded."""
    missing, unexpected = module.load_state_dict(dict(state), strict=False)
    frozen = _frozen(module)
    wrong = [k for k in missing if k not in frozen] + list(unexpected)
    if wrong:
        raise ConfigError(f"the checkpoint does not fit the model: {', '.join(wrong[:3])} ...")


def _frozen(module: nn.Module) -> set[str]:
    """The state-dict keys of the top layers' parameters that do not train."""
    tops = top_layers(module)
    named = [] if tops is None else tops.named_parameters()
    return {f"{TOP_LAYERS}.{name}" for name, p in named if not p.requires_grad}
