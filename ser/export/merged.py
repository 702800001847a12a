"""A fine-tuned run exported with its encoders: each tuned encoder written back whole with
the member's trained top layers in place of its own (LoRA folded into the weights), with
`save_pretrained`, where the plain copy would be (`encoders/<name>/`).

A folder holds one copy of each encoder, and every (seed, fold) member trained top layers
of its own: a fine-tuned run exports with `--with-encoders` one member (`--members best`,
`final` or a key) and is refused otherwise. That member then reads the merged encoder's
own top layers: its config.json entry says `merged`, its weights hold the layers whole,
so `ser predict --model` computes what the merged encoder computes. The encoder's entry
records its new checksum (`weights_sha256`) and what it was fine-tuned from (`finetuned`);
the feature sets keep the checksum of the weights that made them (the layers below the
trained ones are the same). ONNX is refused for a fine-tuned run: its graphs hold the
model alone, which reads the cached layer below the trained ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from torch import nn

from ser.cache.atomic import writing
from ser.errors import ConfigError
from ser.export.folder import AGAIN, readable
from ser.extract.text_encoder import transformer_folder
from ser.finetune.top_layers import TopLayers, folded_state, merged_encoder, weights_of
from ser.finetune.tuning import TOP_LAYERS, top_layers
from ser.train.checkpoint import Checkpoint

if TYPE_CHECKING:
    from transformers import PreTrainedModel

#: The files of a model's weights, removed before the merged ones are saved.
WEIGHT_FILES = ("*.safetensors", "*.safetensors.index.json", "*.bin", "*.bin.index.json")


def check_finetuned(ckpts: Sequence[Checkpoint], with_encoders: bool, onnx: bool) -> None:
    """Refuse what a fine-tuned run cannot export (module docstring), before any work."""
    tuned = [str(r["input"]) for r in ckpts[0].meta.get("finetune") or []]
    if not tuned:
        return
    if onnx:
        raise ConfigError(
            f"--onnx: the run fine-tuned {', '.join(tuned)}'s top encoder layers, which the "
            "ONNX graphs would leave out (they read the cached layer below them): export "
            "without --onnx"
        )
    if with_encoders and len(ckpts) > 1:
        raise ConfigError(
            f"--with-encoders: each of the {len(ckpts)} members trained its own top layers of "
            f"{', '.join(tuned)}, and a folder holds one merged encoder: export one member "
            "(--members best, final or a checkpoint key), or export without --with-encoders"
        )


def merge_encoders(
    ckpt: Checkpoint, entries: dict[str, dict[str, Any]], names: Mapping[str, str], out: Path
) -> Checkpoint:
    """Write each encoder `ckpt` fine-tuned over its copy in `out` (`entries`' files, by
    public name: `names` maps recorded locations to them), record its checksum and
    provenance in its entry, and give back the member as it reads the merged encoder."""
    records = list(ckpt.meta.get("finetune") or [])
    tuned = top_layers(ckpt.build()) if records else None
    if tuned is None:
        return ckpt
    tops = {name: top for name, top, _ in tuned.tops()}
    by_encoder: dict[str, list[str]] = {}
    for name in tops:
        by_encoder.setdefault(str(ckpt.features[name]["attrs"]["model"]), []).append(name)
    for where, inputs in by_encoder.items():
        _check_below(ckpt, where, [tops[n] for n in inputs], inputs)
        kind = str(ckpt.features[inputs[0]]["attrs"]["extractor"])
        entry = entries[names[where]]
        folder = out / str(entry["files"])
        _save(merged_encoder(where, [tops[n] for n in inputs], kind), folder, names[where])
        entry["finetuned"] = {
            "member": ckpt.key,
            "base_weights_sha256": entry["weights_sha256"],
            "inputs": [r for r in records if r["input"] in inputs],
        }
        entry["weights_sha256"] = weights_of(str(folder), kind)
    state = {k: v for k, v in ckpt.state.items() if not k.startswith(f"{TOP_LAYERS}.")}
    for j, top in enumerate(tops.values()):
        state |= {f"{TOP_LAYERS}.{j}.{k}": v for k, v in folded_state(top).items()}
    meta = {**ckpt.meta, "finetune": [{**r, "merged": True} for r in records]}
    return dataclasses.replace(ckpt, state=state, meta=meta)


def _check_below(ckpt: Checkpoint, where: str, tops: list[TopLayers], inputs: list[str]) -> None:
    """Refuse a merge that would change another set the model reads: one of the same
    encoder above the lowest trained layer (the merged encoder makes it anew)."""
    lowest = min(top.from_layer for top in tops)
    for name, info in ckpt.features.items():
        attrs = info["attrs"]
        layer = attrs.get("layer")
        same = str(attrs.get("model")) == where and name not in inputs
        if same and (layer is None or int(layer) > lowest):
            raise ConfigError(
                f"--with-encoders: the run also reads {name}, layer {layer} of the encoder "
                f"whose layers above {lowest} it fine-tuned: a merged encoder would change "
                "that set; export without --with-encoders"
            )


def _save(whole: nn.Module, folder: Path, name: str) -> None:
    """The merged encoder over its plain copy in `folder` (a sentence-transformers
    package's Transformer folder), its old weight files removed first."""
    inner = Path(transformer_folder(str(folder)))
    with writing(folder, f"the fine-tuned encoder {name}", AGAIN):
        for pattern in WEIGHT_FILES:
            for old in inner.glob(pattern):
                old.unlink()
        # The model the extractor loaded with from_pretrained: a transformers model.
        cast("PreTrainedModel", whole).save_pretrained(str(inner))
        for saved in inner.glob("*.safetensors"):
            readable(saved)
