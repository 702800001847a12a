"""Which encoder, which layer: the `probe` preset, a light probe on every stored layer.

``ser sweep probe --store S --out O --set encoders=wavlm-base-plus,hubert-base-ls960``
trains ser's unimodal MLP (``--fusion none``) on each stored layer of each encoder
named (without ``--set encoders``: every encoder whose layers the store holds), LOSO x
3 seeds, and `ser report O` prints UA and WA per layer beside the published numbers of
frozen-encoder probes. Unlike the papers' presets its rows come from the store: an
encoder is a set stem (`<stem>.L<n>`, the conventions of docs/dev/train.md), each layer
one row. A layer is read from its pooled set (`<stem>.L<n>.mean`, one row an utterance)
where that is stored, else from its frame or token set, which the MLP mean-pools itself
(the same vector, from many more bytes), else from `.meanstd`.

With ``--store`` given once per corpus, each store's rows are its own layers
(`Row.store`: they train on that store alone), each on its corpus's default protocol
(`ser.sweep.stores.corpus_options`), the report a section per corpus. Each row carries
the published numbers of its encoder on its store's corpus (`ser.sweep.probe_published`:
EmoBox's intra-corpus table on any of its corpora, the SUPERB-style probes on IEMOCAP).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ser.cache import FeatureStore
from ser.errors import ConfigError
from ser.sweep.presets import Preset, Row
from ser.sweep.probe_published import PAPERS, WEIGHTED, Match, match
from ser.train.features import layer_spec

PROBE = "probe"  # the preset's name
# What its --set takes, as its messages show it.
PARAMS = MappingProxyType({"encoders": "encoders=STEM,STEM", "weighted-sum": "weighted-sum=no"})
POOLS = ("mean", None, "meanstd")  # the set a layer is read from, first stored first

# The probe (`--fix` overrides any of them), chosen by measurement on a synthetic store
# of IEMOCAP's size (benchmarks/README.md, "How small can the layer probe be?"): as
# good as ser's default MLP (256 wide, dropout 0.2, 50 epochs of 32) at ~1/50 of its
# time; hidden 64 held 1.2 of the 1.6 UA points 256 gained over 32 at the best layer;
# without dropout a stacked member is the member trained alone; batches of 512 give
# every LOSO fold of IEMOCAP's 4-class set 7 steps an epoch, so all 15 (seed, fold)
# probes of a layer train as one stacked model.
SETTINGS: Mapping[str, Any] = MappingProxyType(
    {
        "fusion": "none",
        "classes": "4",
        "protocol": "loso",
        "seeds": 3,
        "d_model": 64,
        "dropout": 0.0,
        "epochs": 10,
        "batch_size": 512,
        "lr": 3e-3,
    }
)

# The weighted-sum row's own: its softmax weights learn per optimiser step, and at batches
# of 512 (70 steps) they stayed near uniform on the synthetic store (peak 0.10 against
# 1/13), 20 UA points under the best layer; batches of 128 took the same time (reading 13
# layers a row, not the steps, is its cost) and gained 6.6 points.
WEIGHTED_SETTINGS: Mapping[str, Any] = MappingProxyType({"batch_size": 128})


NOTE = (
    "Published numbers stand beside the encoder whose layer sets were extracted from the "
    "checkpoint each names (the sets' recorded model: a Hugging Face id, or a folder named "
    "so); EmoBox's are on its own folds and class set of each corpus, so beside ours on "
    "another protocol or class set they compare encoders, not splits. Not sure: "
    "emotion2vec's table names models, not checkpoints (the SUPERB ones are assumed), and "
    "prints data2vec 2.0 at 68.6 WA, which has no transformers checkpoint we know of "
    "(data2vec-audio-base is data2vec 1.0), so no encoder gets it; whether EmoBox's "
    "leaderboard used its recipe's last layer is not confirmed here. Their protocols "
    "differ from ours in epochs and model selection. A weighted sum is trained over pooled "
    "sets only (`ser extract --pool mean`): over frames the trainer holds every layer's "
    "frames at once."
)


@dataclass(frozen=True)
class LayerSet:
    """The set one layer of an encoder is probed on."""

    layer: int
    name: str
    pool: str | None  # "mean" | "meanstd" (a stored pooled set) | None (frames or tokens)


# layer -> pool -> (set name, complete): every gold layer set of one encoder
Stored = Mapping[int, Mapping[str | None, tuple[str, bool]]]


@dataclass(frozen=True)
class Encoder:
    """An encoder's stored layer sets, and what the probe reads of them."""

    stem: str
    sets: Stored
    model: str | None = None  # the checkpoint its sets were extracted from, as recorded

    def layers(self) -> list[LayerSet]:
        """Each layer read from the set `POOLS` prefers (a complete one first: an
        incomplete one only where no other is, for `resolve_cells` to refuse by name)."""
        out = []
        for n in sorted(self.sets):
            stored = [(pool, *self.sets[n][pool]) for pool in POOLS if pool in self.sets[n]]
            pool, name, _ = next((s for s in stored if s[2]), stored[0])
            out.append(LayerSet(n, name, pool))
        return out

    def weighted_sum(self) -> tuple[str, str | None, list[int]] | None:
        """The `ser train --features` request of a learnt weighted sum of its layers (the
        pooled sets of one pool, the one complete for most layers, `mean` on a tie), that
        pool and the layers; None below two such layers. Never over frames: the trainer
        would hold every layer's frames at once (~25 GB for a base model over IEMOCAP)."""
        pooled = [pool for pool in POOLS if pool is not None]
        counts = {
            pool: [n for n in sorted(self.sets) if self.sets[n].get(pool, ("", False))[1]]
            for pool in pooled
        }
        pool = max(pooled, key=lambda p: (len(counts[p]), -pooled.index(p)))
        layers = counts[pool]
        if len(layers) < 2:
            return None
        which = "*" if len(layers) == len(self.sets) else layer_spec(layers)
        return f"{self.stem}.L{which}" + (f".{pool}" if pool else ""), pool, layers


def layer_of(name: str, attrs: Mapping[str, Any]) -> tuple[str, int, str | None] | None:
    """(stem, layer, pool) of a gold-text or audio layer set, None for any other set.

    >>> layer_of("wavlm-base.L3.mean", {"layer": 3, "pool": "mean"})
    ('wavlm-base', 3, 'mean')
    >>> layer_of("mpnet-base", {"layer": 12, "modality": "text"})  # a text model's last
    ('mpnet-base', 12, None)
    >>> layer_of("is13", {}) is None
    True
    """
    layer, pool = attrs.get("layer"), attrs.get("pool")
    if not isinstance(layer, int) or isinstance(layer, bool) or attrs.get("text_source") == "asr":
        return None
    if pool and not name.endswith(f".{pool}"):
        return None
    base = name[: -len(pool) - 1] if pool else name
    if base.endswith(f".L{layer}"):
        return base[: -len(f".L{layer}")], layer, pool
    if attrs.get("modality") == "text" and "n_layers" not in attrs:
        return base, layer, pool  # a text model's last layer keeps the model's name
    return None


def stored_encoders(store: FeatureStore) -> dict[str, Encoder]:
    """Every encoder of the store's gold layer sets (`layer_of`), by stem."""
    found: dict[str, dict[int, dict[str | None, tuple[str, bool]]]] = {}
    models: dict[str, str] = {}
    for name in sorted(store.feature_sets()):
        info = store.info(name)
        parts = layer_of(name, info.attrs)
        if parts is not None:
            stem, layer, pool = parts
            found.setdefault(stem, {}).setdefault(layer, {})[pool] = (name, bool(info.complete))
            if isinstance(info.attrs.get("model"), str):
                models.setdefault(stem, info.attrs["model"])
    return {
        stem: Encoder(stem, MappingProxyType(sets), models.get(stem))
        for stem, sets in found.items()
    }


def probe_table(stores: str | Sequence[str], params: Mapping[str, str]) -> Preset:
    """The `probe` preset for these stores: on each, a row per stored layer of each encoder
    in ``params["encoders"]`` (comma-separated stems; all stored ones without it), then
    its weighted sum of all layers (`Encoder.weighted_sum`; ``weighted-sum=no``: none)."""
    paths = [stores] if isinstance(stores, str) else list(stores)
    rows = [row for path in paths for row in _store_rows(path, params)]
    return Preset(
        name=PROBE,
        title="Which encoder, which layer: a probe on every stored layer",
        rows=tuple(rows),
        reference=rows[0].label,
        paper="; ".join(f"{p.name}: {p.source}" for p in PAPERS),
        protocol="; ".join(f"{p.name}: {p.protocol}" for p in PAPERS),
        fixed=SETTINGS,
        figure="layers",
        note=NOTE,
    )


def _store_rows(path: str, params: Mapping[str, str]) -> list[Row]:
    """One store's rows, each bound to it (its sets' names mean nothing on another)."""
    store = FeatureStore.open(path)
    held = stored_encoders(store)
    own = str(store.path.resolve())
    rows = []
    for stem in _encoders(params.get("encoders"), held, path):
        found = match(store, stem, held[stem].model)
        for x in held[stem].layers():
            options = {"features": x.name}
            rows.append(_row(stem, f"L{x.layer}", options, found, own, layer=x.layer, pool=x.pool))
        summed = held[stem].weighted_sum() if _wanted(params) else None
        if summed is not None:
            request, pool, layers = summed
            options = {"features": request, **WEIGHTED_SETTINGS}
            meta = {"layer": None, "pool": pool, "layers": layers}
            rows.append(_row(stem, WEIGHTED, options, found, own, **meta))
    return rows


def _wanted(params: Mapping[str, str]) -> bool:
    """Whether `--set weighted-sum` leaves the weighted-sum rows in (yes, the default)."""
    value = params.get("weighted-sum", "yes").strip().lower()
    if value not in ("yes", "no"):
        raise ConfigError(f"--set weighted-sum={value}: yes or no")
    return value == "yes"


def _row(
    stem: str,
    label: str,
    options: Mapping[str, Any],
    found: Match,
    store: str | None,
    **meta: object,
) -> Row:
    """A probe row of encoder `stem`, with the published numbers of its `found` match."""
    return Row(
        f"{stem} {label}",
        MappingProxyType(dict(options)),
        MappingProxyType(found.published()),
        meta=MappingProxyType({"encoder": stem, **meta, **found.meta()}),
        store=store,
    )


def _encoders(asked: str | None, held: Mapping[str, Encoder], store: str) -> list[str]:
    """The stems asked for, each checked against what the store holds."""
    if not held:
        raise ConfigError(
            f"{store} holds no layer sets to probe (sets named <model>.L<n>, with their "
            "layer recorded); extract some with `ser extract --layers all --pool mean`"
        )
    stems = list(held) if not asked else [s.strip() for s in asked.split(",")]
    unknown = [s for s in stems if s not in held]
    if unknown or len(set(stems)) != len(stems) or not all(stems):
        holds = "; ".join(f"{s} (layers {_layers(e.layers())})" for s, e in held.items())
        what = f"no layer sets of {', '.join(unknown)}" if unknown else "a stem twice or empty"
        raise ConfigError(
            f"--set encoders={asked}: {store} has {what}; it holds layers of: {holds}"
        )
    return stems


def _layers(layers: list[LayerSet]) -> str:
    """e.g. "0-12, pooled" or "9, 12, frames"."""
    numbers = [x.layer for x in layers]
    contiguous = len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1))
    shown = f"{numbers[0]}-{numbers[-1]}" if contiguous else ", ".join(map(str, numbers))
    kinds = {"pooled" if x.pool else "frames" for x in layers}
    return f"{shown}, {' and '.join(sorted(kinds))}"
