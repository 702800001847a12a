"""The exported folder's layout, and the folder read back as checkpoints.

``model.safetensors`` holds every member's tensors under ``<member>.`` (``model.<param>``,
``zscore.<set>.mean|std``, ``targets.mean|std|low|high``: a checkpoint's own names);
``config.json`` what rebuilds them (family and options, classes, inputs, the feature
sets' provenance, the members and how they are averaged); ``encoders/<name>/`` the
encoders' files when exported with them; ``onnx/`` the ONNX graphs. A member read back is
a `Checkpoint`, so `ser predict --model` scores it as `--run` does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from ser.cache.fingerprint import LOCATIONS
from ser.cache.model_names import missing_folder
from ser.errors import ConfigError
from ser.models.batch import InputSpec
from ser.models.registry import config_from_record
from ser.models.targets import Targets
from ser.train.checkpoint import SCALE, Checkpoint, load_weights
from ser.train.data import ZScore

MODEL = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
ENCODERS = "encoders"
ONNX = "onnx"
HEAD_ONNX = "head.onnx"
#: What config.json's `format` says: a newer one is refused (its keys may mean more).
FORMAT = 1
#: config.json's `library`: what tells a ser folder from another model's config.json.
LIBRARY = "ser"
#: What an export run again after a full disk does (`ser.errors.DiskFullError`).
AGAIN = (
    "it writes the export anew (what it had written is removed; a folder already at the "
    "target is left as it was)"
)


@dataclass(frozen=True)
class Exported:
    """An exported folder read back: its config and its members as checkpoints."""

    folder: Path
    config: dict[str, Any]
    checkpoints: list[Checkpoint]

    @property
    def longest(self) -> float | None:
        """The longest utterance the run trained on (seconds), when the store said."""
        value = self.config.get("data", {}).get("longest_utterance")
        return None if value is None else float(value)

    def onnx(self, name: str) -> Path | None:
        """The ONNX graph `name` (onnx/<name>) when the folder has it."""
        path = self.folder / ONNX / name
        return path if path.is_file() else None


def readable(path: Path) -> None:
    """The file's mode as this process makes files (safetensors writes its own 0600): a
    folder made to be shared is readable as its other files are."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)


def member_tensors(ckpt: Checkpoint) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors under its own names (`load_exported` reads them back)."""
    tensors = {f"model.{k}": v for k, v in ckpt.state.items()}
    for name, z in ckpt.zscore.items():
        tensors[f"zscore.{name}.mean"], tensors[f"zscore.{name}.std"] = z.mean, z.std
    if ckpt.target_scale is not None:
        scale = zip(SCALE, ckpt.target_scale, strict=True)
        tensors.update((name, t) for name, t in scale if t is not None)
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}


def read_config(folder: Path) -> dict[str, Any]:
    """config.json of an exported folder; `ConfigError` naming the folder when it is not
    one (no such folder, another library's config, a newer format)."""
    path = folder / CONFIG
    if not folder.is_dir():
        raise ConfigError(f"--model {folder}: no such folder")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"--model {folder}: no {CONFIG} there (not a `ser export` folder)"
        ) from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path} cannot be read: {err}") from None
    if not isinstance(config, dict) or config.get("library") != LIBRARY:
        raise ConfigError(f"{path} is not the config of a `ser export` folder")
    if int(config.get("format", 0)) > FORMAT:
        raise ConfigError(f"{path} was written by a newer ser (format {config['format']})")
    return config


def load_exported(folder: Path, stand_ins: bool = False) -> Exported:
    """The folder's members as checkpoints, each feature set's encoder located: the
    folder's own copy, else where the export recorded it. A recorded folder that is not
    here is a `ConfigError` naming the encoder, unless `stand_ins` (--encoder folders given)."""
    folder = Path(folder).expanduser().resolve()
    config = read_config(folder)
    try:
        tensors, problem = load_weights(folder / MODEL, config)
    except (OSError, ValueError, SafetensorError) as err:
        problem = f"cannot be read: {err}"
    if problem:
        raise ConfigError(f"{folder / MODEL} {problem}: copy or export the folder again")
    features = located_features(folder, config, stand_ins)
    return Exported(
        folder, config, [_member(m, config, features, tensors) for m in config["members"]]
    )


def located_features(
    folder: Path, config: Mapping[str, Any], stand_ins: bool
) -> dict[str, dict[str, Any]]:
    """config.json's feature sets with each model location the folder's copy where it
    has one (`encoders`: recorded name -> its files in the folder, or null). A local
    model named by its folder's name alone (`ser.export.bundle`) and not copied is where
    the folder would hold it: not there, so `--encoder` stands in, never a hub id."""
    entries = config.get("encoders", {})
    out = {}
    for name, info in config["features"].items():
        attrs = dict(info["attrs"])
        for key in LOCATIONS:
            where = attrs.get(key)
            if where is None:
                continue
            entry = entries.get(str(where)) or {}
            local = entry.get("source") == "folder" and not Path(str(where)).is_absolute()
            if entry.get("files"):
                attrs[key] = str(folder / str(entry["files"]))
                if entry.get("finetuned"):  # its layers up to the cached ones are the set's
                    attrs[LOCATIONS[key]] = entry["weights_sha256"]
            elif (local or missing_folder(str(where))) and not stand_ins:
                raise ConfigError(missing_encoder(folder, name, str(where), attrs, key))
            elif local:
                attrs[key] = str(folder / ENCODERS / str(where))
        out[name] = {"fingerprint": info["fingerprint"], "attrs": attrs}
    return out


def missing_encoder(folder: Path, name: str, where: str, attrs: Mapping[str, Any], key: str) -> str:
    checksum = str(attrs.get(LOCATIONS[key], ""))[:12]
    local = "is a local model folder, named by its name alone"
    there = "is not there on this machine" if Path(where).is_absolute() else local
    return (
        f"--model {folder}: feature set {name} needs the encoder {where} (weights sha256 "
        f"{checksum}), which the folder does not hold (exported without --with-encoders) and "
        f"which {there}: give its folder with --encoder FOLDER, or export the run again with "
        "--with-encoders"
    )


def _member(
    member: Mapping[str, Any],
    config: Mapping[str, Any],
    features: dict[str, dict[str, Any]],
    tensors: Mapping[str, torch.Tensor],
) -> Checkpoint:
    prefix = f"{member['key']}."
    own = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    if not own:
        raise ConfigError(f"{MODEL} holds no tensors of member {member['key']}")
    zscore = {
        name: ZScore(own[f"zscore.{name}.mean"], own[f"zscore.{name}.std"])
        for name in {k.split(".", 1)[1].rsplit(".", 1)[0] for k in own if k.startswith("zscore.")}
    }
    scale = ZScore(*(own[n] for n in SCALE)) if SCALE[0] in own else None
    targets = config.get("targets") or {}
    return Checkpoint(
        key=str(member["key"]),
        model=config_from_record(config["model"]),
        classes=tuple(config["classes"]),
        specs=tuple(InputSpec(**s) for s in config["inputs"]),
        unit=str(config["unit"]),
        precision=str(config["precision"]),
        features=features,
        zscore=zscore,
        state={k[len("model.") :]: v for k, v in own.items() if k.startswith("model.")},
        meta={**member, "layers": config.get("layers") or {}},
        targets=Targets.from_record(targets),
        target_scale=scale,
    )
