"""The encoders an exported model needs: named (hub id or folder, with the weights
checksum its features were made with), or copied into the folder (`--with-encoders`).

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
from ser.errors import ConfigError
from ser.export.folder import AGAIN, ENCODERS


def encoder_entries(features: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Recorded location -> {role, model_type, weights_sha256, sets, files: None}: every
    model the feature sets' provenance names (the encoders, a Whisper that made ASR text)."""
    entries: dict[str, dict[str, Any]] = {}
    for name, info in features.items():
        attrs = info["attrs"]
        for key, checksum in LOCATIONS.items():
            where = attrs.get(key)
            if where is None:
                continue
            entry = entries.setdefault(
                str(where),
                {
                    "role": "asr" if key == "asr_model" else "features",
                    "source": "folder" if Path(str(where)).is_absolute() else "hub",
                    "model_type": attrs.get("model_type") if key == "model" else "whisper",
                    "weights_sha256": attrs.get(checksum),
                    "sets": [],
                    "files": None,
                },
            )
            entry["sets"].append(name)
    return entries


def copy_encoders(entries: dict[str, dict[str, Any]], out: Path) -> None:
    """Copy each entry's files to out/encoders/<name>/ and record that place in its
    `files` (relative to `out`)."""
    taken: set[str] = set()
    for where, entry in entries.items():
        source = _files_of(where)
        name = _unique(Path(where.rstrip("/")).name or "encoder", taken)
        dest = out / ENCODERS / name
        with writing(dest, f"the encoder {where}", AGAIN):
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
