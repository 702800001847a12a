"""Loading a pretrained model says one line, and refuses a model missing weights.

`quiet_transformers` silences transformers' per-load tables, warnings and progress bars
(the runner prints `Extractor.loaded()` instead). What the table would have hidden
matters: a weight the checkpoint lacks is initialised at random, and the features would
be noise; `check_missing` makes that an error.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ser.errors import ModelError

# Weights a checkpoint may lack without changing any feature: HF's training-only mask
# embedding (SpecAugment) and the pooler, which no extractor reads.
UNUSED_WEIGHTS = re.compile(r"(^|\.)masked_spec_embed$|(^|\.)pooler\.")
_SHOWN_KEYS = 8


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' logs below errors, warnings and progress bars silenced inside."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def check_missing(missing: Iterable[str], model: str) -> None:
    """`ModelError` naming the `missing` keys (from_pretrained's) an extractor would use."""
    needed = sorted(key for key in missing if not UNUSED_WEIGHTS.search(key))
    if not needed:
        return
    shown = ", ".join(needed[:_SHOWN_KEYS])
    more = f" and {len(needed) - _SHOWN_KEYS} more" if len(needed) > _SHOWN_KEYS else ""
    raise ModelError(
        f"model {model}: its checkpoint lacks {len(needed)} weight(s) the encoder needs "
        f"({shown}{more}); they would be random. Is the weights file complete, and is it "
        "a checkpoint of this architecture?"
    )


def describe_load(name: str, detail: str, precision: str, device: str, source: str) -> str:
    """The one line a load prints.

    >>> describe_load("hubert-base-ls960", "layer 12", "fp32", "cpu", "/m/hubert")
    'loaded hubert-base-ls960 (layer 12, fp32 on cpu) from /m/hubert'
    """
    return f"loaded {name} ({detail}, {precision} on {device}) from {source}"


def damaged_weights(model: str, folder: Path | None, error: Exception) -> ModelError:
    """A weights file that safetensors cannot read (cut short by a copy or a download
    that stopped), named: the first of `folder`'s (None: a hub id's cached copy) whose
    header does not read, else `model`'s."""
    from safetensors import SafetensorError, safe_open

    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    for path in sorted(folder.rglob("*.safetensors")) if folder is not None else []:
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except (SafetensorError, OSError):
            return ModelError(
                f"{path} is damaged (cut short? {reason}): copy or download the model "
                "again, then run the same command"
            )
    where = f"the weights in {folder}" if folder is not None else f"the cached weights of {model}"
    return ModelError(
        f"{where} are damaged (cut short? {reason}): copy or download the model again, "
        "then run the same command"
    )


# The class torch's weights-only unpickler names when it refuses one.
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_PICKLED = ("*.bin", "*.pt", "*.pth", "*.ckpt")


def pickled_weights(model: str, folder: Path | None, error: Exception) -> ModelError:
    """A weights file holding a pickle of more than tensors, which torch loads only by
    running its code: refused, named (the first of `folder`'s that torch refuses; None:
    a hub id's cached copy), and never with torch's advice to load it anyway."""
    found = _REFUSED_GLOBAL.search(str(error))
    what = f" (an object of class {found.group(1)})" if found else ""
    where = _refused_file(folder) or (
        f"a weights file in {folder}" if folder is not None else f"the cached weights of {model}"
    )
    return ModelError(
        f"{where} is a pickle of more than tensors{what}, and ser loads no pickle that "
        "could run code: give a folder whose weights are safetensors (model.safetensors)"
    )


def _refused_file(folder: Path | None) -> Path | None:
    """The first pickled weights file in `folder` that torch's weights-only load refuses."""
    if folder is None:
        return None
    import pickle

    import torch

    for path in sorted(p for pattern in _PICKLED for p in folder.glob(pattern)):
        try:
            with warnings.catch_warnings():  # torch's on the pickle's protocol
                warnings.simplefilter("ignore")
                torch.load(path, map_location="meta", weights_only=True)
        except pickle.UnpicklingError:
            return path
        except (RuntimeError, OSError, ValueError, EOFError):  # another fault: not this one
            continue
    return None
