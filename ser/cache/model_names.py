"""Feature set names of pretrained models: the model's own id, never a cache hash.

Torch-free (`ser extract` parses --name before deciding whether to import torch).

A hub id gives its last part (so existing stores keep their names); a local folder the
hub id its config.json records, else the repo of a Hugging Face cache snapshot, else its
own name. `--name` overrides all of these.

>>> set_stem("facebook/hubert-base-ls960")
'hubert-base-ls960'
>>> set_stem("/hf/hub/models--facebook--hubert-base-ls960/snapshots/dba3bb02fda4")
'hubert-base-ls960'
>>> set_stem("/models/tiny-bert/", override="my-bert")
'my-bert'
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ser.cache.backend import SET_NAME
from ser.errors import ConfigError

#: `ser extract --text-source asr` and `ser predict --asr` without a model: Whisper small.
DEFAULT_ASR_MODEL = "openai/whisper-small"

# A hub id: "name" or "owner/name", letters, digits and - _ . (no "--" or ".." inside).
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$")
# The cache folder of a hub repo: "models--" + the id with "/" written "--".
_CACHE_REPO = re.compile(r"^models--(?:.+--)?(?P<name>[^-].*)$")


def set_stem(model: str, override: str | None = None) -> str:
    """The name stem of the feature sets of `model` (a hub id or a local folder)."""
    if override is not None:
        return check_set_name(override)
    if not looks_like_path(model):
        return _last_part(model)
    folder = Path(model).expanduser()
    return recorded_id(folder) or snapshot_repo(folder) or _last_part(model)


def check_set_name(name: str) -> str:
    """`name` if the store accepts it as a feature set name, else `ConfigError`; no "@",
    which joins a text set to the transcripts it was extracted from."""
    if "@" in name or not SET_NAME.match(name):
        raise ConfigError(
            f"--name {name!r}: use letters, digits and . _ + = - (not starting with a symbol)"
        )
    return name


def recorded_id(folder: Path) -> str | None:
    """The last part of the hub id `folder/config.json` records, if it records one."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # no readable config: loading will say so with a clearer message
    if not isinstance(config, dict):
        return None
    for key in ("_name_or_path", "name_or_path"):
        value = config.get(key)
        if isinstance(value, str) and is_hub_id(value) and not looks_like_path(value):
            return _last_part(value)
    return None


def snapshot_repo(folder: Path) -> str | None:
    """The repo name of a Hugging Face cache snapshot folder, else None.

    >>> snapshot_repo(Path("/c/models--org--my-model/snapshots/0123abcd"))
    'my-model'
    >>> snapshot_repo(Path("/models/my-model")) is None
    True
    """
    parts = folder.resolve().parts if folder.exists() else folder.parts
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] == "snapshots":
            match = _CACHE_REPO.match(parts[i - 1])
            return match.group("name") if match else None
    return None


def looks_like_path(model: str) -> bool:
    """True when `model` names a local folder rather than a Hugging Face id."""
    if Path(model).expanduser().exists():
        return True
    # Hub ids are "name" or "owner/name"; anything else is meant as a path.
    return model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1


def missing_folder(model: str) -> bool:
    """True for a model folder that is not there (False for a hub id: its loader will tell)."""
    return looks_like_path(model) and not Path(model).expanduser().is_dir()


def is_hub_id(text: str) -> bool:
    """True for text shaped like a hub id ("name" or "owner/name").

    >>> is_hub_id("facebook/hubert-base-ls960"), is_hub_id("/home/me/model")
    (True, False)
    """
    return bool(_HUB_ID.match(text)) and ".." not in text and "--" not in text


def _last_part(model: str) -> str:
    return Path(model.rstrip("/\\")).name
