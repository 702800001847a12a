"""Which stored feature sets a `--features A+B` request means: a set's exact name, or its
kind or stem as its stored attrs say (never a cut of the name; rules: docs/CONTRACTS.md).

>>> parse_feature_list("hubert+mpnet")
('hubert', 'mpnet')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ser.cache import FeatureStore
from ser.errors import ConfigError, StoreError
from ser.extract.registry import KINDS


@dataclass(frozen=True)
class ResolvedFeature:
    """A requested feature set as found in the store."""

    request: str  # what the user wrote, e.g. "hubert"
    name: str  # the feature set, e.g. "hubert-base-ls960.L12"
    modality: str  # "audio" | "text"
    level: str  # "frame" | "token" | "utterance"
    extractor: str  # its kind, e.g. "hubert", "mpnet", "is13"
    dim: int
    fingerprint: str

    @property
    def zscore(self) -> bool:
        """Whether the trainer z-normalizes this set with each fold's training statistics
        (openSMILE functionals)."""
        return self.level == "utterance" and self.extractor == "is13"


def parse_feature_list(text: str) -> tuple[str, ...]:
    """``"a+b"`` (or ``"a,b"``) -> ``("a", "b")``; empty items and repeats are refused."""
    items = tuple(p.strip() for p in text.replace(",", "+").split("+"))
    if not items or any(not p for p in items):
        raise ConfigError(
            f"--features {text!r}: give feature sets joined by '+', e.g. hubert+mpnet"
        )
    if len(set(items)) != len(items):
        raise ConfigError(f"--features {text!r} names a feature set twice")
    return items


def _candidates(request: str, infos: dict[str, Any]) -> list[str]:
    if request in infos:
        return [request]
    found = [name for name, info in infos.items() if _asks_for(request, name, info.attrs)]
    # A kind (`mpnet`) means the gold-text set when the store also holds ASR-text ones
    # (`tiny-mpnet@asr-whisper-small`): those are asked for by name.
    gold = [name for name in found if not is_asr_text(infos[name].attrs)]
    return gold or found


def _asks_for(request: str, name: str, attrs: dict[str, Any]) -> bool:
    """`request` is the set's kind, or the stem its kind names it after (`hubert-base-ls960`
    for `hubert-base-ls960.L12`)."""
    extractor = str(attrs.get("extractor", ""))
    if request == extractor:
        return True
    return extractor in KINDS and KINDS[extractor].options.set_name(request, attrs) == name


def is_asr_text(attrs: dict[str, Any]) -> bool:
    return attrs.get("text_source") == "asr"


def resolve_features(store: FeatureStore, requests: Sequence[str]) -> list[ResolvedFeature]:
    """The stored feature set behind each request, in request order (`StoreError`: missing
    or unfinished; `ConfigError`: ambiguous, or one set asked for twice)."""
    infos = {name: store.info(name) for name in sorted(store.feature_sets())}
    held = ", ".join(infos) if infos else "no feature sets"
    resolved: list[ResolvedFeature] = []
    for request in requests:
        found = _candidates(request, infos)
        if not found:
            raise StoreError(
                f"feature set {request!r} is not in the store {store.path} (it holds: {held}); "
                "extract it first with `ser extract`"
            )
        if len(found) > 1:
            raise ConfigError(
                f"--features {request!r} matches {len(found)} feature sets in {store.path}: "
                f"{', '.join(found)}; name one of them exactly"
            )
        info = infos[found[0]]
        if not info.complete:
            raise StoreError(
                f"feature set {info.name!r} in {store.path} is incomplete (extraction did not "
                "finish); run the same `ser extract` command again to complete it"
            )
        resolved.append(
            ResolvedFeature(
                request,
                info.name,
                str(info.modality),
                str(info.level),
                str(info.attrs.get("extractor", "")),
                int(info.dim),
                str(info.fingerprint),
            )
        )
    taken = [f.name for f in resolved]
    if len(set(taken)) != len(taken):
        raise ConfigError(f"--features {'+'.join(requests)} names one feature set twice")
    return resolved
