"""Which stored feature sets a `--features A+B` request means: a set's exact name, or its
kind or stem as its stored attrs say (never a cut of the name; rules: docs/dev/train.md);
`<stem>.L*` / `<stem>.L3-9` (`.mean`, `.meanstd` for pooled sets): every (or a range of)
stored layer set of one model as ONE input, which models read as a learnt weighted sum.

>>> parse_feature_list("hubert+mpnet")
('hubert', 'mpnet')
>>> LayerRequest.parse("wavlm-base-plus.L3-5.mean")
LayerRequest(stem='wavlm-base-plus', layers=(3, 4, 5), pool='mean', source=None)
>>> layer_spec((0, 1, 2, 3, 8, 10, 11))  # how a layered input's name lists its layers
'0-3_8_10-11'
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ser.cache import FeatureSetInfo, FeatureStore
from ser.cache.backend import DamagedMetadata
from ser.cache.fingerprint import canonical_json, differences, identity
from ser.cache.lock import refuse_while_written
from ser.cache.receipt_file import receipt_sets
from ser.errors import ConfigError, StoreError
from ser.extract.registry import KINDS
from ser.extract.remake import repair_command
from ser.models.config import FeatureInfo
from ser.runs.record import Layered

#: A layer request: `<stem>.L*`, `.L3-9` or the list a layered input's name holds
#: (`.L0-4_8`); then a pool (`.mean`) and the transcripts (`@asr-...`), as set names have.
LAYER_REQUEST = re.compile(
    r"^(?P<stem>.+?)\.L(?P<layers>\*|\d+-\d+(?:_\d+(?:-\d+)?)*|\d+(?:_\d+(?:-\d+)?)+)"
    r"(?:\.(?P<pool>[a-z]+))?(?:@(?P<source>.+))?$"
)
#: One layer's set by its layer, whatever name it is stored under (`<stem>.L12.mean` is
#: the set a text model's last layer keeps as `<stem>.mean`).
ONE_LAYER = re.compile(
    r"^(?P<stem>.+?)\.L(?P<layer>\d+)(?:\.(?P<pool>[a-z]+))?(?:@(?P<source>.+))?$"
)
#: What differs between the layer sets of one model (text sets below the last add n_layers).
LAYER_KEYS = frozenset({"layer", "n_layers"})


@dataclass(frozen=True)
class ResolvedFeature:
    """A requested feature set as found in the store."""

    request: str  # what the user wrote, e.g. "hubert"
    name: str  # the feature set, e.g. "hubert-base-ls960.L12"
    modality: str  # "audio" | "text"
    level: str  # "frame" | "token" | "utterance"
    extractor: str  # its kind, e.g. "hubert", "mpnet", "is13"
    dim: int
    fingerprint: str  # a layered input's: over its sets' fingerprints, in layer order
    # A layered input (`<stem>.L*`): its stored sets and their layers, in layer order;
    # then `name` is canonical, e.g. "hubert-base-ls960.L0-12" (never a stored set).
    sets: tuple[str, ...] = ()
    layers: tuple[int, ...] = ()

    @property
    def zscore(self) -> bool:
        """Whether the trainer z-normalizes this set with each fold's training statistics
        (openSMILE functionals)."""
        return self.level == "utterance" and self.extractor == "is13"

    @property
    def stored(self) -> tuple[str, ...]:
        """The stored sets behind this input: its layer sets, or the one it names."""
        return self.sets or (self.name,)

    def info(self) -> FeatureInfo:
        """What a model config plans its inputs from (`plan_inputs`)."""
        return FeatureInfo(self.name, self.modality, self.level, self.dim, len(self.sets) or 1)


@dataclass(frozen=True)
class LayerRequest:
    """A parsed `<stem>.L...` request: `layers` None means every stored layer."""

    stem: str
    layers: tuple[int, ...] | None
    pool: str | None
    source: str | None  # a transcript set (`@asr-...`), None: gold preferred

    @classmethod
    def parse(cls, request: str) -> LayerRequest | None:
        """The request's parts, or None when it asks for one set (`hubert.L12`)."""
        match = LAYER_REQUEST.match(request)
        if match is None:
            return None
        text = match["layers"]
        layers: list[int] = []
        for part in [] if text == "*" else text.split("_"):
            first, _, last = part.partition("-")
            if last and int(last) < int(first):
                raise ConfigError(f"--features {request!r}: layer range {part} runs backwards")
            layers += range(int(first), int(last or first) + 1)
        chosen = None if text == "*" else tuple(sorted(set(layers)))
        return cls(match["stem"], chosen, match["pool"], match["source"])

    def describe(self, stem: str) -> str:
        """How messages name what was asked for: "hubert-base-ls960.L*.mean"."""
        layers = "*" if self.layers is None else layer_spec(self.layers)
        pool = f".{self.pool}" if self.pool else ""
        return f"{stem}.L{layers}{pool}" + (f"@{self.source}" if self.source else "")


def layer_spec(layers: Sequence[int]) -> str:
    """Layers as a set name can hold them (no `,` or `+`): runs `a-b` joined by `_`."""
    runs: list[list[int]] = []
    for layer in sorted(layers):
        if runs and layer == runs[-1][1] + 1:
            runs[-1][1] = layer
        else:
            runs.append([layer, layer])
    return "_".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


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
    # A view (`ser extract --augment`: attrs `view_of`) is read beside its clean set
    # (`--views`), never in its place: only its exact name asks for it alone.
    found = [
        name
        for name, info in infos.items()
        if _asks_for(request, name, info.attrs) and not is_view(info.attrs)
    ] or _one_layer(request, infos)
    # A kind or stem (`mpnet`) means the set such a request always meant, when the store
    # also holds others of the model, which are asked for by name: the gold-text set, not
    # the ASR-text ones (`tiny-mpnet@asr-whisper-small`); frames or tokens, not their pooled
    # views (`.mean`); a text model's last layer (`mpnet-base`), not its others (`.L3`).
    for usual in (_gold, _unpooled, _last_text_layer):
        found = [name for name in found if usual(infos[name].attrs)] or found
    return found


def _one_layer(request: str, infos: Mapping[str, Any]) -> list[str]:
    """The sets `<stem>.L<n>[.pool][@source]` addresses by its layer: the one pattern
    names every layer, the last one of a text model (stored as `<stem>[.pool]`) too."""
    match = ONE_LAYER.match(request)
    if match is None:
        return []
    layer = int(match["layer"])
    asked = LayerRequest(match["stem"], (layer,), match["pool"], match["source"])
    return [
        name
        for name, info in infos.items()
        if info.attrs.get("layer") == layer and _is_layer_of(asked, name, info.attrs)
    ]


def _gold(attrs: Mapping[str, Any]) -> bool:
    return not is_asr_text(attrs)


def _unpooled(attrs: Mapping[str, Any]) -> bool:
    return "pool" not in attrs


def _last_text_layer(attrs: Mapping[str, Any]) -> bool:
    # Text sets below the last layer record `n_layers`; the last layer's attrs are as
    # they always were.
    return attrs.get("modality") != "text" or "n_layers" not in attrs


def _asks_for(request: str, name: str, attrs: dict[str, Any]) -> bool:
    """`request` is the set's kind, or the stem its kind names it after (`hubert-base-ls960`
    for `hubert-base-ls960.L12`)."""
    extractor = str(attrs.get("extractor", ""))
    if request == extractor:
        return True
    return extractor in KINDS and KINDS[extractor].options.set_name(request, attrs) == name


def is_view(attrs: Mapping[str, Any]) -> bool:
    """A set `ser extract --augment` wrote beside a clean one (`ser.train.views`)."""
    return "view_of" in attrs


def is_asr_text(attrs: Mapping[str, Any]) -> bool:
    return attrs.get("text_source") == "asr"


def resolve_features(store: FeatureStore, requests: Sequence[str]) -> list[ResolvedFeature]:
    """The stored feature set behind each request, in request order (`StoreError`: missing
    or unfinished; `ConfigError`: ambiguous, or one set asked for twice)."""
    infos, damaged = {}, {}
    for name in sorted(store.feature_sets()):
        try:
            infos[name] = store.info(name)
        except StoreError as error:  # a damaged set is named only when asked for
            damaged[name] = error
    held = ", ".join(infos) if infos else "no feature sets"
    resolved: list[ResolvedFeature] = []
    for request in requests:
        layered = None if request in infos else LayerRequest.parse(request)
        if layered is not None:
            resolved.append(_resolve_layers(store, request, layered, infos))
            continue
        found = _candidates(request, infos)
        if not found:
            refuse_while_written(store.path)  # a set begun, or not yet, is its work
        if not found and request in damaged:
            raise damaged[request]
        if not found:
            _refuse_damaged(store, request, damaged)
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
        _check_complete(store, info)
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
    taken = [name for f in resolved for name in f.stored]
    if len(set(taken)) != len(taken):
        raise ConfigError(f"--features {'+'.join(requests)} names one feature set twice")
    return resolved


def _refuse_damaged(store: FeatureStore, request: str, damaged: Mapping[str, Any]) -> None:
    """StoreError naming the damaged set ``request`` means, as its attributes (or the copy
    its receipt keeps) say; nothing when none is."""
    copies = receipt_sets(store.path)
    for name, error in damaged.items():
        attrs = store.recorded_attrs(name) or copies.get(name)
        if attrs is not None and _asks_for(request, name, attrs):
            if isinstance(error, DamagedMetadata):
                why = f"{error.file} {error.reason}"
            else:
                why = str(error).removeprefix(f"{store.path}: ")
            command = repair_command(store, name)
            fix = f"repair it with `{command}`" if command.startswith("ser ") else command
            raise StoreError(
                f"feature set {name!r} (asked for as {request!r}) is in {store.path} but "
                f"damaged: {why}; {fix} (`ser store verify {store.path}` lists every "
                "damaged piece)"
            )


def _check_complete(store: FeatureStore, info: FeatureSetInfo) -> None:
    if not info.complete:
        refuse_while_written(store.path)  # the extraction that completes it is running
        raise StoreError(
            f"feature set {info.name!r} in {store.path} is incomplete (extraction did not "
            "finish); run the same `ser extract` command again to complete it"
        )


def _resolve_layers(
    store: FeatureStore, request: str, asked: LayerRequest, infos: Mapping[str, Any]
) -> ResolvedFeature:
    """The layer sets of one model that `asked` means, as one input (module docstring)."""
    by_layer = _one_model(store, request, asked, infos)
    held = sorted(by_layer)
    wanted = held if asked.layers is None else list(asked.layers)
    missing = [layer for layer in wanted if layer not in by_layer]
    if missing:
        raise StoreError(
            f"--features {request!r}: layer(s) {layer_spec(missing)} of {asked.stem} are not "
            f"in the store {store.path}, which holds layers {layer_spec(held)} of it "
            f"({', '.join(by_layer[n] for n in held)}); extract them with `ser extract`"
        )
    if len(wanted) < 2:
        raise ConfigError(
            f"--features {request!r} gives one layer set ({by_layer[wanted[0]]}) of "
            f"{store.path}: a weighted sum takes two or more; name that set itself instead"
        )
    sets = tuple(by_layer[layer] for layer in wanted)
    for name in sets:
        _check_complete(store, infos[name])
    first = infos[sets[0]]
    source = first.attrs.get("transcripts") if is_asr_text(first.attrs) else None
    canonical = LayerRequest(asked.stem, tuple(wanted), asked.pool, source)
    prints = canonical_json([str(infos[name].fingerprint) for name in sets])
    return ResolvedFeature(
        request,
        canonical.describe(asked.stem),
        str(first.modality),
        str(first.level),
        str(first.attrs.get("extractor", "")),
        int(first.dim),
        hashlib.sha256(prints.encode("utf-8")).hexdigest(),
        sets,
        tuple(wanted),
    )


def _one_model(
    store: FeatureStore, request: str, asked: LayerRequest, infos: Mapping[str, Any]
) -> dict[int, str]:
    """Layer -> set name of the one model's sets `asked` matches (gold text preferred)."""
    found = [name for name, info in infos.items() if _is_layer_of(asked, name, info.attrs)]
    if asked.source is None:
        found = [name for name in found if not is_asr_text(infos[name].attrs)] or found
    models: dict[str, list[str]] = {}
    for name in found:
        rest = {k: v for k, v in identity(infos[name].attrs).items() if k not in LAYER_KEYS}
        models.setdefault(canonical_json(rest), []).append(name)
    if not models:
        held = ", ".join(infos) or "no feature sets"
        # A kind names no model: its sets are asked for by the model's name.
        hint = " (ask by the model's name: the part of a set's name before .L)"
        hint = hint if asked.stem in KINDS else ""
        raise StoreError(
            f"--features {request!r}: no layer sets of {asked.describe(asked.stem)} in the "
            f"store {store.path} (it holds: {held}){hint}; extract them with `ser extract`"
        )
    if len(models) > 1:
        groups = "; ".join(", ".join(names) for names in models.values())
        a, b = (infos[names[0]].attrs for names in list(models.values())[:2])
        keys = differences(*({k: v for k, v in x.items() if k not in LAYER_KEYS} for x in (a, b)))
        raise ConfigError(
            f"--features {request!r} matches the layer sets of {len(models)} different models "
            f"or settings in {store.path} ({groups}; {', '.join(keys)}): extract them again "
            "alike (`ser extract --overwrite`), or one under another --name"
        )
    by_layer: dict[int, str] = {}
    for name in next(iter(models.values())):
        layer = int(infos[name].attrs["layer"])
        if layer in by_layer:
            raise ConfigError(
                f"--features {request!r}: layer {layer} is stored twice in {store.path} "
                f"({by_layer[layer]}, {name}); name the sets you mean one by one"
            )
        by_layer[layer] = name
    return by_layer


def _is_layer_of(asked: LayerRequest, name: str, attrs: Mapping[str, Any]) -> bool:
    """Set `name` is a layer set of the model `asked.stem` names, pooled as asked."""
    layer = attrs.get("layer")
    if not isinstance(layer, int) or isinstance(layer, bool) or attrs.get("pool") != asked.pool:
        return False
    if is_view(attrs):
        return False
    if asked.source is not None and attrs.get("transcripts") != asked.source:
        return False
    return name in _layer_set_names(asked.stem, attrs)


def _layer_set_names(stem: str, attrs: Mapping[str, Any]) -> set[str]:
    """What a layer set with `attrs` is named under the model name `stem`: by the naming
    conventions (`<stem>.L<n>`; a text model's last layer `<stem>`, its attrs without
    n_layers; then `.<pool>`, then `@<transcripts>`), and by its kind's own `set_name`."""
    text_top = attrs.get("modality") == "text" and "n_layers" not in attrs
    layer = "" if text_top else f".L{attrs['layer']}"
    pool = f".{attrs['pool']}" if attrs.get("pool") else ""
    source = f"@{attrs['transcripts']}" if is_asr_text(attrs) else ""
    names = {f"{stem}{layer}{pool}{source}"}
    kind = KINDS.get(str(attrs.get("extractor", "")))
    own = kind.options.set_name(stem, attrs) if kind is not None else None
    return names | ({own} if own else set())


def layers_record(features: list[ResolvedFeature]) -> dict[str, Layered]:
    """Each layered input's stored sets and their layers, in layer order ({}: none)."""
    return {f.name: Layered(sets=f.sets, layers=f.layers) for f in features if f.sets}
