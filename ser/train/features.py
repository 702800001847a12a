"""Which stored feature sets a `--features A+B` request means.

An item names a feature set exactly (``hubert-base-ls960.L12``), or by what its stored
attrs say, when that matches one set only: its extractor kind (``hubert``, ``is13``) or
the stem its kind names it after (``hubert-base-ls960``: a model's id or --name). A kind
that matches a gold-text set and ASR-text sets (``mpnet-base@asr-whisper-small``) means
the gold one. Sets that are missing, ambiguous or unfinished are refused with the
store's contents in the message.

>>> parse_feature_list("hubert+mpnet")
('hubert', 'mpnet')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ser.errors import ConfigError, StoreError
from ser.extract.registry import KINDS

#: openSMILE functionals (is13 and compare2016 sets): z-normalized with each fold's
#: training statistics.
OPENSMILE_EXTRACTORS = ("is13",)


class _Store(Protocol):
    path: Any

    def feature_sets(self) -> list[str]: ...
    def info(self, name: str) -> Any: ...


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
        """Whether the trainer z-normalizes this set per fold (openSMILE functionals)."""
        return self.level == "utterance" and self.extractor in OPENSMILE_EXTRACTORS


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


def _candidates(request: str, names: Sequence[str], infos: dict[str, Any]) -> list[str]:
    if request in names:
        return [request]
    found = [name for name in names if _asks_for(request, name, infos[name].attrs)]
    # A kind (`mpnet`) means the gold-text set when the store also holds ASR-text ones
    # (`tiny-mpnet@asr-whisper-small`): those are asked for by name.
    gold = [name for name in found if not is_asr_text(infos[name].attrs)]
    return gold or found


def _asks_for(request: str, name: str, attrs: dict[str, Any]) -> bool:
    """Whether `request` is the kind of the set `name` with `attrs`, or the stem (a
    model's id or --name) its kind names the set after (`hubert-base-ls960` for
    `hubert-base-ls960.L12`)."""
    extractor = str(attrs.get("extractor", ""))
    if request == extractor:
        return True
    return extractor in KINDS and KINDS[extractor].set_name(request, attrs) == name


def is_asr_text(attrs: dict[str, Any]) -> bool:
    """Whether a feature set's attrs say it was extracted from ASR transcripts."""
    return attrs.get("text_source") == "asr"


def resolve_features(store: _Store, requests: Sequence[str]) -> list[ResolvedFeature]:
    """The stored feature set behind each request, in request order.

    Raises `StoreError` for a set that is missing or not completely extracted and
    `ConfigError` for a request that matches several sets or two requests of one set.
    """
    names = sorted(store.feature_sets())
    infos = {name: store.info(name) for name in names}
    held = ", ".join(names) if names else "no feature sets"
    resolved: list[ResolvedFeature] = []
    for request in requests:
        found = _candidates(request, names, infos)
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
        resolved.append(_resolved(request, info))
    taken = [f.name for f in resolved]
    if len(set(taken)) != len(taken):
        raise ConfigError(f"--features {'+'.join(requests)} names one feature set twice")
    return resolved


def _resolved(request: str, info: Any) -> ResolvedFeature:
    attrs = dict(info.attrs)
    return ResolvedFeature(
        request=request,
        name=info.name,
        modality=str(info.modality),
        level=str(info.level),
        extractor=str(attrs.get("extractor", "")),
        dim=int(info.dim),
        fingerprint=str(info.fingerprint),
    )
