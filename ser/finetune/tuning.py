"""A run's fine-tuned inputs: `--finetune SET:top=K[,lora=R,...]` read (`FineTune`), the
top layers joined to a model (`attach`), how they train (`param_groups`, `warmup`) and what
a checkpoint keeps of them (`trained_state`, `restore`).

A fine-tuned input is a cached layer set (`hubert.L9`) that the model's own copy of the
encoder's next k layers turns into what the family reads, in a forward pre-hook, as the
layer mix of a layered input is made: every family takes it, and a family's code never
knows. The data side gathers the set's rows (`InputSpec.gather`), the top layers run on
them with the padding mask, and a family that reads a vector gets their masked mean.

>>> tune = FineTune.parse("hubert.L9:top=3,lora=8")
>>> tune.top, tune.lora, tune.encoder_lr, tune.name_part
(3, 8, 0.0001, '_ft-hubert.L9-top3-lora8')
>>> FineTune.parse("hubert.L9:lora=8,top=3").spelled
'hubert.L9:top=3,lora=8'
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ser.errors import ConfigError
from ser.finetune.top_layers import TopLayers, load_top_layers, lora
from ser.models.base import SerModel
from ser.models.batch import InputSpec

#: The encoder's learning rate where none is given: SpeechBrain's IEMOCAP recipe's for
#: wav2vec2's whole layers; LoRA's adapters start at zero and take a larger one.
WHOLE_LR, LORA_LR = 1e-5, 1e-4
#: The attribute (and state-dict prefix) of a model's top layers.
TOP_LAYERS = "top_layers"
NORMS = ("train", "frozen")


@dataclass(frozen=True)
class FineTune:
    """One `--finetune` value: the `--features` request it tunes and how.

    top: the encoder layers above the cached one that train; lora: their LoRA adapters'
    rank (None: the layers whole); alpha: LoRA's scale (None: twice the rank); targets:
    LoRA's modules (none: the architecture's attention query and value); lr: the
    encoder's learning rate (None: `WHOLE_LR` or `LORA_LR`; the head keeps `--lr`);
    warmup: the share of training steps over which the encoder's rate rises from zero;
    norms: the layers' LayerNorms "train" (with LoRA too, beside the adapters) or stay
    "frozen"."""

    feature: str
    top: int
    lora: int | None = None
    alpha: int | None = None
    targets: tuple[str, ...] = ()
    lr: float | None = None
    warmup: float = 0.1
    norms: str = "train"

    @classmethod
    def parse(cls, text: str) -> FineTune:
        """`SET:top=K[,lora=R,alpha=A,targets=q_proj/v_proj,lr=X,warmup=F,norms=frozen]`."""
        feature, _, options = text.strip().partition(":")
        if not feature or not options:
            raise ConfigError(
                f"{text!r}: give a feature set and its top layers, e.g. "
                "hubert.L9:top=3 or hubert.L9:top=3,lora=8"
            )
        values: dict[str, Any] = {}
        for part in options.split(","):
            key, _, value = part.partition("=")
            values[key.strip()] = _typed(text, key.strip(), value.strip())
        if "top" not in values:
            raise ConfigError(f"{text!r}: say how many layers train, e.g. top=2")
        made = cls(feature.strip(), **values)
        made.check(text)
        return made

    def check(self, text: str) -> None:
        """Values in range; `ConfigError` naming the value given otherwise."""
        bad = (
            (self.top < 1, "top must be at least 1"),
            (self.lora is not None and self.lora < 1, "lora (the rank) must be at least 1"),
            (self.alpha is not None and self.lora is None, "alpha goes with lora"),
            (bool(self.targets) and self.lora is None, "targets go with lora"),
            (self.lr is not None and not self.lr > 0, "lr must be above 0"),
            (not 0 <= self.warmup < 1, "warmup is a share of the steps, in [0, 1)"),
            (self.norms not in NORMS, f"norms is one of {', '.join(NORMS)}"),
        )
        for failed, why in bad:
            if failed:
                raise ConfigError(f"{text!r}: {why}")

    @property
    def spelled(self) -> str:
        """The canonical text: the set, then each value off its default, in field order."""
        parts = []
        for f in dataclasses.fields(self)[1:]:
            value = getattr(self, f.name)
            if value != f.default:
                shown = (
                    "/".join(value)
                    if isinstance(value, tuple)
                    else f"{value:g}"
                    if (isinstance(value, float))
                    else str(value)
                )
                parts.append(f"{f.name}={shown}")
        return f"{self.feature}:{','.join(parts)}"

    @property
    def name_part(self) -> str:
        """How a run's default name says it: "_ft-hubert.L9-top3-lora8"."""
        rest = self.spelled.partition(":")[2].replace("=", "").replace(",", "-")
        return f"_ft-{self.feature}-{rest.replace('/', '+')}"

    @property
    def encoder_lr(self) -> float:
        return self.lr if self.lr is not None else LORA_LR if self.lora else WHOLE_LR

    def describe(self, from_layer: int | None = None, default_targets: Sequence[str] = ()) -> str:
        """What trained, in words: the layers (numbered from 1, as the encoder's own; its
        cached layer `from_layer`, else the set's `.L<n>`), whole or with LoRA, the rate.

        >>> FineTune.parse("hubert.L9:top=2").describe()
        "hubert.L9's encoder layers 10-11 whole (lr 1e-05, warm-up 10 % of steps)"
        """
        below = from_layer if from_layer is not None else _cached_layer(self.feature)
        if below is None:
            where = f"top {self.top} encoder layer{'s' if self.top > 1 else ''}"
        elif self.top == 1:
            where = f"encoder layer {below + 1}"
        else:
            where = f"encoder layers {below + 1}-{below + self.top}"
        if self.lora is None:
            how = "whole" + (", LayerNorms frozen" if self.norms == "frozen" else "")
        else:
            on = ", ".join(self.targets or default_targets) or "its default modules"
            how = f"with LoRA rank {self.lora} (alpha {self.alpha or 2 * self.lora}) on {on}"
        rate = f"lr {self.encoder_lr:g}, warm-up {100 * self.warmup:g} % of steps"
        return f"{self.feature}'s {where} {how} ({rate})"


def _typed(text: str, key: str, value: str) -> object:
    """One `key=value` of a --finetune value as its field's type."""
    kinds: dict[str, type] = {"top": int, "lora": int, "alpha": int, "lr": float}
    kinds |= {"warmup": float, "norms": str, "targets": tuple}
    if key not in kinds:
        raise ConfigError(f"{text!r}: unknown key {key!r} (use {', '.join(kinds)})")
    if kinds[key] is tuple:
        return tuple(v for v in value.split("/") if v)
    try:
        return kinds[key](value)
    except ValueError:
        raise ConfigError(f"{text!r}: {key}={value!r} is not a number") from None


def _cached_layer(feature: str) -> int | None:
    """The layer a `--features` request's set holds, as its name says (`hubert.L9`,
    `mpnet.L3@asr-w`); None: not said."""
    found = re.search(r"\.L(\d+)(?:@|$)", feature)
    return None if found is None else int(found.group(1))


def parse_all(texts: Sequence[str]) -> tuple[FineTune, ...]:
    """Every --finetune value; one set tuned twice is refused."""
    tunes = tuple(FineTune.parse(t) for t in texts)
    named = [t.feature for t in tunes]
    if len(set(named)) < len(named):
        raise ConfigError(f"{max(named, key=named.count)} is named twice")
    return tunes


def load_prototype(tune: FineTune, name: str, attrs: Mapping[str, Any]) -> TopLayers:
    """The top layers of the encoder that wrote the stored set `name` (its `attrs`),
    above its layer: loaded from the model its attrs name, refused where those weights
    are not the ones that made the cached rows (their checksum)."""
    layer = attrs.get("layer")
    if layer is None or attrs.get("level") not in ("frame", "token"):
        raise ConfigError(
            f"--finetune {tune.feature}: {name} is not one layer's frames or tokens of an "
            "encoder (a pooled or non-encoder set has no layers above it)"
        )
    top = load_top_layers(
        str(attrs["model"]),
        int(layer),
        tune.top,
        kind_name=str(attrs.get("extractor")),
        freeze_norms=tune.norms == "frozen",
    )
    if top.weights_sha256 != attrs.get("weights_sha256"):
        raise ConfigError(
            f"--finetune {tune.feature}: {attrs['model']} now holds other weights "
            f"(sha256 {str(top.weights_sha256)[:12]}...) than those that wrote {name} "
            f"({str(attrs.get('weights_sha256'))[:12]}...): the top layers must continue the "
            "layers that made the cached rows; extract the set again from these weights"
        )
    return top


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
                alpha = tune.alpha or 2 * tune.lora
                top = lora(top, tune.lora, alpha, tune.targets or None)
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
