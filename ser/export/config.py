"""config.json of an exported folder: what rebuilds the members (`folder.py` reads it
back) and what a reader needs to know of the model without ser: its family and options,
its heads, every input feature set (encoder, checksum, layer, pooling, precision, where
the z-scores are), the members and their averaging, the ser version and the run record's
format.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ser import __version__
from ser.export.folder import FORMAT, LIBRARY
from ser.export.members import AVERAGING
from ser.models.batch import InputSpec
from ser.models.registry import config_record
from ser.runs.record import FORMAT as RECORD_FORMAT
from ser.runs.record import RunRecord
from ser.train.checkpoint import Checkpoint


def export_config(
    ckpts: Sequence[Checkpoint],
    record: RunRecord,
    encoders: Mapping[str, dict[str, Any]],
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """The config of an export of `ckpts` (the members, in order) of the run `record`;
    `encoders`: recorded location -> its entry (`bundle.py`); `data`: what the store
    said of the corpus (`longest_utterance`, `corpus`...)."""
    first = ckpts[0]
    model = config_record(first.model)
    return {
        "library": LIBRARY,
        "format": FORMAT,
        "ser_version": __version__,
        "torch_version": torch.__version__,
        "run": {
            "name": record.name,
            "record_format": RECORD_FORMAT,
            "protocol": record.protocol,
            "seeds": sorted({int(c.meta["seed"]) for c in ckpts if "seed" in c.meta}),
        },
        "family": model["family"],
        "model": model,
        "classes": list(first.classes),
        "attributes": list(first.targets.attributes),
        "targets": first.targets.to_record(),
        "heads": heads(first),
        "unit": first.unit,
        "precision": first.precision,
        "inputs": [_spec(s) for s in first.specs],
        "layers": first.layers,
        "zscore": {name: zscore_note(name) for name in sorted(first.zscore)},
        "features": {name: feature_entry(info) for name, info in first.features.items()},
        "encoders": dict(encoders),
        "members": [member_entry(c) for c in ckpts],
        "averaging": AVERAGING if len(ckpts) > 1 else "one member: its own outputs",
        "data": dict(data),
    }


def _classes(name: str, names: list[str]) -> dict[str, Any]:
    return {"name": name, "kind": "classes", "classes": names}


def _attributes(name: str, names: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "attributes",
        "attributes": names,
        "scale": "the z-scored output times the training side's std plus its mean "
        "(<member>.targets.std / .mean), clipped to its range (.low / .high)",
    }


def _further(name: str, names: list[str]) -> dict[str, Any]:
    return {"name": name, "kind": "head", "outputs": names}


#: How the config describes the outputs of each head it knows (others: `_further`).
ENTRIES = {"emotion": _classes, "attributes": _attributes}


def heads(ckpt: Checkpoint) -> list[dict[str, Any]]:
    """The model's outputs, head by head: the class logits (softmax), each attribute's
    value, each further head's outputs (`ser.heads.base.Head.names`)."""
    out: list[dict[str, Any]] = []
    for head, names in zip(ckpt.targets.heads, ckpt.targets.names(ckpt.classes), strict=True):
        entry = ENTRIES.get(head.name, _further)(head.name, list(names))
        if head.category and "temperature" in ckpt.meta:  # only where calibrated
            entry["calibration"] = CALIBRATION
        out.append(entry)
    return out


#: What a calibrated run's config says of its class probabilities.
CALIBRATION = (
    "temperature scaling: each member's class logits divided by its members[i].temperature "
    "(fitted on its fold's validation side) before the softmax"
)


def zscore_note(name: str) -> str:
    return (
        f"each member's <member>.zscore.{name}.mean and .std in model.safetensors ([D] "
        "float32, fitted on its fold's training side): (x - mean) / std"
    )


def feature_entry(info: Mapping[str, Any]) -> dict[str, Any]:
    """One stored set the model reads: its provenance and the facts a reader asks for."""
    attrs = dict(info["attrs"])
    return {
        "fingerprint": info["fingerprint"],
        "extractor": attrs.get("extractor"),
        "modality": attrs.get("modality"),
        "encoder": attrs.get("model"),
        "weights_sha256": attrs.get("weights_sha256"),
        "layer": attrs.get("layer"),
        "pooling": attrs.get("pool") or ("frames" if attrs.get("level") == "frame" else None),
        "level": attrs.get("level"),
        "precision": attrs.get("precision"),
        "dtype": attrs.get("dtype"),
        "dim": attrs.get("dim"),
        "sample_rate": attrs.get("sample_rate"),
        "attrs": attrs,
    }


def member_entry(ckpt: Checkpoint) -> dict[str, Any]:
    """A member as config.json lists it; a fine-tuned one's top layers as its checkpoint
    records them (`finetune`: what rebuilds them); a calibrated one's `temperature` (its
    class logits divided by it before the softmax)."""
    kept = ("seed", "fold", "best_epoch", "validation", "finetune", "temperature")
    return {"key": ckpt.key, **{k: ckpt.meta[k] for k in kept if k in ckpt.meta}}


def _spec(spec: InputSpec) -> dict[str, Any]:
    """An input as the bundle's config names it (`gather` only for a fine-tuned input)."""
    record = dataclasses.asdict(spec)
    if spec.gather is None:
        del record["gather"]
    return record
