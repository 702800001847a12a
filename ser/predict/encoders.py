"""Where a run's encoders are now: the place their provenance records, or `--encoder`.

A folder given with `--encoder` stands in for the recorded model of every feature set
whose checksums (`weights_sha256`, `tokenizer_sha256`) its files reproduce: a moved model
folder, or a local copy of a hub model offline. The checksums decide, never the name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ser.cache.model_names import missing_folder
from ser.errors import ConfigError, FingerprintMismatch, SerError
from ser.extract.base import Extractor
from ser.extract.text_encoder import transformer_folder

#: What a model is, as its feature sets record it (the location is only where it was).
IDENTITY = ("weights_sha256", "tokenizer_sha256")


@dataclass
class Encoders:
    """The `--encoder` folders of a prediction, matched to feature sets as they are asked
    for; `build(kind, options)` gives the (cached, unloaded) extractor of those options."""

    folders: tuple[str, ...]
    build: Callable[[str, dict[str, Any]], Extractor]
    used: set[str] = field(default_factory=set)  # the folders that stand in for a set

    def __post_init__(self) -> None:
        """`folders` checked to be model folders (a config.json), kept as absolute paths."""
        for folder in self.folders:
            if _model_type(Path(folder)) is None:
                raise ConfigError(
                    f"--encoder {folder}: not a model folder (no readable config.json there)"
                )
        self.folders = tuple(str(Path(f).expanduser().resolve()) for f in self.folders)

    def model_for(self, name: str, attrs: Mapping[str, Any], options: dict[str, Any]) -> str:
        """An `--encoder` folder whose checksums match set `name`'s, else the recorded
        model, which must then be there."""
        refused = []
        for folder in self.folders:
            found, wanted = _model_type(Path(folder)), attrs.get("model_type")
            if found != wanted:
                refused.append(f"--encoder {folder}: a {found} model, the set's is {wanted}")
                continue
            diffs = self._differences(attrs, {**options, "model": folder})
            if not diffs:
                self.used.add(folder)
                return folder
            refused.append(f"--encoder {folder}: {'; '.join(diffs)}")
        recorded = str(attrs["model"])
        if missing_folder(recorded):
            if refused:
                raise FingerprintMismatch(
                    f"feature set {name}: its model folder {recorded} does not exist, and no "
                    f"--encoder folder holds the weights it was extracted with "
                    f"({'; '.join(refused)})"
                )
            raise ConfigError(
                f"feature set {name}: its model folder {recorded} does not exist (moved, or "
                f"named relative to the directory `ser extract` ran in): give the folder "
                f"with --encoder FOLDER (its weights must be the recorded ones)"
            )
        return recorded

    def check_used(self) -> None:
        """Refuse an `--encoder` folder that stands in for none of the run's sets."""
        for folder in self.folders:
            if folder not in self.used:
                raise ConfigError(
                    f"--encoder {folder}: its model ({_model_type(Path(folder))}) is not the "
                    "one any of the run's feature sets was extracted with (other weights, "
                    "or a model the run does not use)"
                )

    def _differences(self, attrs: Mapping[str, Any], options: dict[str, Any]) -> list[str]:
        try:
            # The checksums compared are the model's: the same in each set it writes.
            here = self.build(str(attrs["extractor"]), options).specs()[0].attrs
        except SerError as err:  # e.g. the folder's model has fewer layers
            return [str(err)]
        keys = [k for k in IDENTITY if k in attrs and attrs[k] != here.get(k)]
        return [
            f"other {k.removesuffix('_sha256')} (sha256 {_short(here.get(k))}, the run's "
            f"{_short(attrs[k])})"
            for k in keys
        ]


def _short(checksum: object) -> str:
    """A checksum as people compare them: its first 12 digits."""
    return str(checksum)[:12] if checksum else "none"


def _model_type(folder: Path) -> str | None:
    """The model type of a model folder, or of a sentence-transformers package's model."""
    inner = Path(transformer_folder(str(folder.expanduser())))
    try:
        config = json.loads((inner / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(config.get("model_type")) if isinstance(config, dict) else None
