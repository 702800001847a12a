"""The encoders an exported model needs: named (hub id or folder, with the weights
checksum its features were made with), or copied into the folder (`--with-encoders`).

A folder others read names nothing of this machine: a local model by its folder's name
(`public_names`: `ser.cache.model_names.set_stem`, a hub cache snapshot by its repo),
never its path, which holds a user's home, a user name, a mount; `ser predict --model`
takes the model's files from the folder's copy or from `--encoder`, matched on checksums.

A copy is the model folder `ser extract` read (a hub model's files from this machine's
Hugging Face cache, never downloaded), whole, so its weights checksum is the recorded one;
`ser predict --model` checks it again before using it.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ser.cache.atomic import writing
from ser.cache.fingerprint import LOCATIONS
from ser.cache.model_names import set_stem
from ser.errors import ConfigError
from ser.export.folder import AGAIN, ENCODERS


def public_names(features: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Recorded location -> the name an export gives it: a hub id as it is, a local
    folder its name (module docstring), made unique."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for info in features.values():
        for key in LOCATIONS:
            where = info["attrs"].get(key)
            if where is None or str(where) in names:
                continue
            local = _is_folder(str(where))
            names[str(where)] = _unique(set_stem(str(where)), taken) if local else str(where)
            taken.add(names[str(where)])
    return names


def named_features(
    features: Mapping[str, Mapping[str, Any]], names: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """The feature sets' provenance with each model location its public name (`names`)."""
    out = {}
    for name, info in features.items():
        attrs = dict(info["attrs"])
        for key in LOCATIONS:
            if attrs.get(key) is not None:
                attrs[key] = names[str(attrs[key])]
        out[name] = {**info, "attrs": attrs}
    return out


def _is_folder(where: str) -> bool:
    return Path(where).expanduser().is_absolute()


def encoder_entries(
    features: Mapping[str, Mapping[str, Any]], names: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """Public name (`names`) -> {role, source, model_type, weights_sha256, sets, files:
    None}: every model the feature sets' provenance names (the encoders, a Whisper that
    made ASR text)."""
    entries: dict[str, dict[str, Any]] = {}
    for name, info in features.items():
        attrs = info["attrs"]
        for key, checksum in LOCATIONS.items():
            where = attrs.get(key)
            if where is None:
                continue
            entry = entries.setdefault(
                names[str(where)],
                {
                    "role": "asr" if key == "asr_model" else "features",
                    "source": "folder" if _is_folder(str(where)) else "hub",
                    "model_type": attrs.get("model_type") if key == "model" else "whisper",
                    "weights_sha256": attrs.get(checksum),
                    "sets": [],
                    "files": None,
                },
            )
            entry["sets"].append(name)
    return entries


def copy_encoders(entries: dict[str, dict[str, Any]], out: Path, names: Mapping[str, str]) -> None:
    """Copy each entry's files (from its recorded location: `names` maps them to the
    entries' names) to out/encoders/<name>/ and record that place in its `files`
    (relative to `out`)."""
    taken: set[str] = set()
    for where, public in names.items():
        entry = entries[public]
        source = _files_of(where)
        name = _unique(Path(public.rstrip("/")).name or "encoder", taken)
        dest = out / ENCODERS / name
        with writing(dest, f"the encoder {public}", AGAIN):
            shutil.copytree(source, dest, symlinks=False)  # a hub cache's links as files
        entry["files"] = f"{ENCODERS}/{name}"


def _files_of(where: str) -> Path:
    """The folder holding a model's files: the recorded folder, or a hub id's snapshot in
    the local cache."""
    folder = Path(where).expanduser()
    if folder.is_dir():
        return folder
    if folder.is_absolute():
        raise ConfigError(
            f"--with-encoders: the encoder folder {where} is not there (moved since the "
            "features were extracted): export without --with-encoders, or put it back"
        )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(where, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError) as err:
        raise ConfigError(
            f"--with-encoders: the hub model {where} is not in this machine's Hugging Face "
            f"cache ({type(err).__name__}); ser never downloads it: export without "
            "--with-encoders (the folder names it) or fetch it first"
        ) from None


def _unique(name: str, taken: set[str]) -> str:
    found, n = name, 1
    while found in taken:
        n += 1
        found = f"{name}-{n}"
    taken.add(found)
    return found
