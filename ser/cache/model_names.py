"""Feature set names of pretrained models: the model's own id, never a cache hash.

Torch-free (`ser extract` parses --name before deciding whether to import torch).

A hub id gives its last part (so existing stores keep their names); a local folder the
repo of a Hugging Face cache snapshot, else its own name, unless that name is generic
(`model`, `checkpoint-500`, `final`, a hash: `GENERIC`), when the nearest parent folder
whose name is not generic names it (a sentence-transformers package keeps its model in
`<package>/model/`). Never config.json's `_name_or_path`: that is the checkpoint a model
was fine-tuned from, so a base model and its fine-tuned descendant would share one name.
`--name` overrides all of these.

>>> set_stem("facebook/hubert-base-ls960")
'hubert-base-ls960'
>>> set_stem("/hf/hub/models--facebook--hubert-base-ls960/snapshots/dba3bb02fda4")
'hubert-base-ls960'
>>> set_stem("/models/tiny-bert/", override="my-bert")
'my-bert'
>>> set_stem("/runs/wavlm-emo/checkpoint-500")
'wavlm-emo'
"""

from __future__ import annotations

import re
from pathlib import Path

from ser.cache.backend import SET_NAME
from ser.errors import ConfigError

#: `ser extract --text-source asr` and `ser predict --asr` without a model: Whisper small.
DEFAULT_ASR_MODEL = "openai/whisper-small"

# The cache folder of a hub repo: "models--" + the id with "/" written "--".
_CACHE_REPO = re.compile(r"^models--(?:.+--)?(?P<name>[^-].*)$")
#: Words that say where a model sits in a folder tree, not which model it is: a folder
#: name made only of these, numbers ("500", "v2") and hashes is generic.
GENERIC = frozenset((
    "model", "models", "checkpoint", "checkpoints", "ckpt", "ckpts", "final", "best", "last",
    "latest", "main", "hf", "huggingface", "pretrained", "weights", "output", "outputs",
    "export", "exported", "saved", "save", "encoder", "transformer", "snapshot", "snapshots",
    "step", "steps", "epoch", "epochs", "global", "iter", "run", "runs", "default", "current",
))  # fmt: skip
_NUMBER_OR_HASH = re.compile(r"^(?:v?\d+|(?=[0-9a-f]*\d)[0-9a-f]{7,})$")


def set_stem(model: str, override: str | None = None) -> str:
    """The name stem of the feature sets of `model` (a hub id or a local folder)."""
    if override is not None:
        return check_set_name(override)
    if not looks_like_path(model):
        return _last_part(model)
    folder = Path(model).expanduser()
    return snapshot_repo(folder) or folder_name(folder)


def check_set_name(name: str) -> str:
    """`name` if the store accepts it as a feature set name, else `ConfigError`; no "@",
    which joins a text set to the transcripts it was extracted from."""
    if "@" in name or not SET_NAME.match(name):
        raise ConfigError(
            f"--name {name!r}: use letters, digits and . _ + = - (not starting with a symbol)"
        )
    return name


def folder_name(folder: Path) -> str:
    """The name of the nearest of `folder` and its parents that is not generic (`GENERIC`),
    else the folder's own name.

    >>> folder_name(Path("/models/all-MiniLM-L6-v2/model"))
    'all-MiniLM-L6-v2'
    >>> folder_name(Path("/exp/my-bert/0_Transformer")), folder_name(Path("/model"))
    ('my-bert', 'model')
    """
    path = folder.resolve() if folder.exists() else Path(str(folder).rstrip("/\\"))
    for part in (path, *path.parents):
        if part.name and not is_generic(part.name):
            return part.name
    return path.name or str(folder)


def is_generic(name: str) -> bool:
    """True for a folder name that says where a model sits, not which model it is.

    >>> [is_generic(n) for n in ("model", "checkpoint-500", "best_model", "3f9c2a1e", "hubert")]
    [True, True, True, True, False]
    """
    words = [word for word in re.split(r"[-_.\s]+", name.lower()) if word]
    return bool(words) and all(w in GENERIC or _NUMBER_OR_HASH.match(w) for w in words)


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
    """True when `model` names a local folder rather than a Hugging Face id: it exists,
    or it is no hub id's shape, or its "owner" part is a folder here (`models/tuned`
    beside a `models` folder is meant as that folder's, and a missing one is said at
    once, not after the hub's retries).

    >>> looks_like_path("facebook/hubert-base-ls960"), looks_like_path("./hubert")
    (False, True)
    """
    path = Path(model).expanduser()
    if path.exists():
        return True
    # Hub ids are "name" or "owner/name"; anything else is meant as a path.
    if model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1:
        return True
    return "/" in model and path.parent.is_dir()


def missing_folder(model: str) -> bool:
    """True for a model folder that is not there (False for a hub id: its loader will tell)."""
    return looks_like_path(model) and not Path(model).expanduser().is_dir()


def check_model_folder(model: str, what: str = "model") -> None:
    """`ConfigError` at once for a model folder that is not there (`looks_like_path`):
    the hub is never asked for it, and its retries never blamed."""
    if missing_folder(model):
        raise ConfigError(
            f"model folder {model} does not exist (looking for the {what}): give the folder "
            "that holds it, or a Hugging Face model id (owner/name)"
        )


def _last_part(model: str) -> str:
    return Path(model.rstrip("/\\")).name
