"""Provenance attributes of a feature set and the fingerprint over them (docs/dev/store.md).

The fingerprint is the sha256 of the canonical JSON of everything that could change the
numbers. Where a model was found (`LOCATIONS`) is left out when its weights checksum is
recorded: the same weights at another path make the same features. Sets fingerprinted
before that are still accepted (`matches`). What only describes the run (`RECORDED`: the
audio decoders and their versions) is provenance too, kept out of the fingerprint.

Example:
    >>> attrs = provenance({"extractor": "logmel", "modality": "audio", "level": "frame",
    ...                     "dim": 80, "dtype": "float16", "ser_version": "0.1.0"})
    >>> len(fingerprint(attrs))
    64
    >>> differences(attrs, {**attrs, "dim": 64})
    ['dim: 80 -> 64']
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ser import __version__
from ser.errors import StoreError

# Written by the store while it works; never part of the provenance (``data_sha256``: the
# content checksum recorded when the set is completed, `verify.RECORDED`; ``block_rows``:
# the rows of its streamed plan's blocks, `FeatureStore.block_rows`).
BOOKKEEPING = frozenset({"complete", "fingerprint", "data_sha256", "block_rows"})
REQUIRED = ("extractor", "modality", "level", "dim", "dtype")
LEVELS = ("frame", "token", "utterance")
MODALITIES = ("audio", "text")
DTYPES = ("float16", "float32")
#: Provenance that is no part of a set's identity: the audio decoders (`decoder`, e.g.
#: "soundfile 0.14.0 / libsndfile 1.2.2; av 18.1.0 / ffmpeg 8.1.2"). Sets begun before it
#: was recorded resume and are found as they were; a library upgrade does not orphan a
#: store. A set records the decoders of the run that began it. A view set's `VIEW_SOURCE`
#: (its clean set's fingerprint) too: its attrs repeat the clean set's, so it adds nothing
#: to its identity, and views written before it was recorded resume as they were.
VIEW_SOURCE = "view_of_fingerprint"
RECORDED = frozenset({"decoder", VIEW_SOURCE})
#: Keys that say where a model was found, each with the key of its weights checksum.
LOCATIONS = {"model": "weights_sha256", "asr_model": "asr_weights_sha256"}


def provenance(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Validated ``attrs`` as JSON reads them back, with ``ser_version`` unless given: the
    code that computed the features is part of them."""
    prov = plain_json({"ser_version": __version__, **attrs}, "feature set")
    _check(prov)
    return prov


def plain_json(attrs: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``attrs`` less bookkeeping, as JSON reads it back; StoreError naming `what` else."""
    kept = {k: v for k, v in attrs.items() if k not in BOOKKEEPING}
    try:
        out: dict[str, Any] = json.loads(canonical_json(kept))
    except (TypeError, ValueError) as err:
        raise StoreError(f"{what} attributes must be plain JSON values: {err}") from None
    return out


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(attrs: Mapping[str, Any]) -> str:
    """The sha256 (hex) of `identity`: a model's location does not count.

    >>> base = {"extractor": "hubert", "dim": 8, "weights_sha256": "ab"}
    >>> fingerprint({**base, "model": "models/x"}) == fingerprint({**base, "model": "/m/x"})
    True
    """
    return _sha256(identity(attrs))


def identity(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The attrs that make the numbers: no bookkeeping, no located model's location, none
    of `RECORDED`."""
    located = {key for key, checksum in LOCATIONS.items() if checksum in attrs}
    left_out = BOOKKEEPING | RECORDED | located
    return {k: v for k, v in attrs.items() if k not in left_out}


def matches(attrs: Mapping[str, Any]) -> bool:
    """True when the stored ``attrs["fingerprint"]`` is the fingerprint of ``attrs``, or
    the one written before locations left it (the sha256 over every provenance key)."""
    stored = attrs.get("fingerprint")
    legacy = {k: v for k, v in attrs.items() if k not in BOOKKEEPING}
    return stored in (fingerprint(attrs), _sha256(legacy))


def model_location(model: str) -> str:
    """A local folder by its resolved path (found from any directory), a hub id as given."""
    folder = Path(model).expanduser()
    return str(folder.resolve()) if folder.is_dir() else model


def _sha256(prov: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(prov).encode("utf-8")).hexdigest()


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``key: old -> new`` for each provenance key whose value differs (or is absent),
    `RECORDED` ones aside."""
    return [
        f"{key}: {_show(old, key)} -> {_show(new, key)}"
        for key in sorted((set(old) | set(new)) - BOOKKEEPING - RECORDED)
        if key not in old or key not in new or old[key] != new[key]
    ]


def _show(attrs: Mapping[str, Any], key: str) -> str:
    return canonical_json(attrs[key]) if key in attrs else "(absent)"


def _check(prov: Mapping[str, Any]) -> None:
    missing = [key for key in REQUIRED if key not in prov]
    if missing:
        raise StoreError(f"feature set attributes lack {', '.join(missing)}")
    for key, allowed in (("level", LEVELS), ("modality", MODALITIES), ("dtype", DTYPES)):
        if prov[key] not in allowed:
            raise StoreError(
                f"feature set attribute {key}={prov[key]!r}: expected one of {allowed}"
            )
    dim = prov["dim"]
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise StoreError(f"feature set attribute dim={dim!r}: expected a positive integer")
