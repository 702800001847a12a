"""Which encoder, which layer: the `probe` preset, a light probe on every stored layer.

``ser sweep probe --store S --out O --set encoders=wavlm-base-plus,hubert-base-ls960``
trains ser's unimodal MLP (``--fusion none``) on each stored layer of each encoder
named (without ``--set encoders``: every encoder whose layers the store holds), LOSO x
3 seeds, and `ser report O` prints UA and WA per layer beside the published numbers of
frozen-encoder probes on IEMOCAP. Unlike the papers' presets its rows come from the
store: an encoder is a set stem (`<stem>.L<n>`, the conventions of docs/CONTRACTS.md),
each layer one row. A layer is read from its pooled set (`<stem>.L<n>.mean`, one row an
utterance) where that is stored, else from its frame or token set, which the MLP
mean-pools itself (the same vector, from many more bytes), else from `.meanstd`.

The published numbers are matched to stems by the checkpoints the papers name (`PAPERS`);
which of our rows each compares with in method is said in its `Reference`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ser.cache import FeatureStore
from ser.errors import ConfigError
from ser.sweep.presets import Preset, Row

PROBE = "probe"  # the preset's name
PARAMS = ("encoders",)  # what its --set takes: encoders=STEM,STEM
POOLS = ("mean", None, "meanstd")  # the set a layer is read from, first stored first

# The probe (`--fix` overrides any of them). Chosen by measurement on a synthetic store
# of IEMOCAP's size (benchmarks/bench_probe.py, benchmarks/README.md "Issue 33"):
# a narrow MLP without dropout is close to SUPERB's linear probe, and dropout 0 makes a
# stacked member the member trained alone; batches of 512 give every LOSO fold of
# IEMOCAP's 4-class set the same 7 steps an epoch, so all 15 (seed, fold) probes of a
# layer train as one stacked model.
SETTINGS: Mapping[str, Any] = MappingProxyType(
    {
        "fusion": "none",
        "classes": "4",
        "protocol": "loso",
        "seeds": 3,
        "d_model": 32,
        "dropout": 0.0,
        "epochs": 10,
        "batch_size": 512,
        "lr": 3e-3,
    }
)


@dataclass(frozen=True)
class Reference:
    """Published probes of frozen encoders on IEMOCAP, by our set stems (percent)."""

    name: str  # its column heading
    source: str
    protocol: str
    metric: str  # "ua" | "wa"
    beside: str  # the row of ours it matches in method
    scores: Mapping[str, float]


SUPERB = Reference(
    "SUPERB-style WA",
    "emotion2vec (Ma et al., 2023), Table 2",
    "frozen encoder, SUPERB's emotion recipe (a learnt weighted sum of all layers, mean "
    "pooling, linear); IEMOCAP's 5531 utterances in 4 classes (excited as happy), 5-fold "
    "leave-one-session-out; WA",
    "wa",
    "weighted sum",
    MappingProxyType(
        {
            "wav2vec2-base": 63.4,  # facebook/wav2vec2-base
            "hubert-base-ls960": 64.9,  # facebook/hubert-base-ls960
            "wavlm-base": 65.9,  # microsoft/wavlm-base (not wavlm-base-plus)
            "hubert-large-ll60k": 67.6,  # facebook/hubert-large-ll60k
            "wavlm-large": 70.0,  # microsoft/wavlm-large
        }
    ),
)
EMOBOX = Reference(
    "EmoBox UA",
    "EmoBox (Ma et al., Interspeech 2024), intra-corpus benchmark",
    "frozen encoder, EmoBox's IEMOCAP partition (5531 utterances, 4 classes, 5 folds by "
    "session); UA; its recipe (examples/sb) reads the last layer by default, mean-pooled, "
    "into a 2-layer MLP",
    "ua",
    "last layer",
    MappingProxyType(
        {
            "hubert-base-ls960": 63.9,  # fairseq hubert_base_ls960
            "hubert-large-ll60k": 67.4,  # fairseq hubert_large_ll60k
            "wavlm-large": 69.5,  # microsoft/wavlm-large
            "whisper-large-v3": 73.5,  # openai/whisper-large-v3's encoder
        }
    ),
)
PAPERS = (SUPERB, EMOBOX)
NOTE = (
    "Published numbers stand beside the encoder whose set stem is the checkpoint's hub id "
    "(a set named with --name matches nothing). Not sure: emotion2vec's table names models, "
    "not checkpoints (the SUPERB ones are assumed), and prints data2vec 2.0 at 68.6 WA, "
    "which has no transformers checkpoint we know of (data2vec-audio-base is data2vec 1.0), "
    "so no stem gets it; whether EmoBox's leaderboard used its recipe's last layer is not "
    "confirmed here. Their protocols differ from ours in epochs and model selection."
)


@dataclass(frozen=True)
class LayerSet:
    """The set one layer of an encoder is probed on."""

    layer: int
    name: str
    pool: str | None  # "mean" | "meanstd" (a stored pooled set) | None (frames or tokens)


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


def stored_layers(store: FeatureStore) -> dict[str, list[LayerSet]]:
    """stem -> its layers in order, each read from the set `POOLS` prefers (a complete
    one first: an incomplete one is taken only where no other is, and refused later)."""
    found: dict[str, dict[int, dict[str | None, tuple[str, bool]]]] = {}
    for name in sorted(store.feature_sets()):
        info = store.info(name)
        parts = layer_of(name, info.attrs)
        if parts is not None:
            stem, layer, pool = parts
            found.setdefault(stem, {}).setdefault(layer, {})[pool] = (name, bool(info.complete))
    out = {}
    for stem, layers in found.items():
        out[stem] = [LayerSet(n, *_preferred(layers[n])) for n in sorted(layers)]
    return out


def _preferred(sets: Mapping[str | None, tuple[str, bool]]) -> tuple[str, str | None]:
    stored = [(pool, *sets[pool]) for pool in POOLS if pool in sets]
    pool, name, _ = next((s for s in stored if s[2]), stored[0])
    return name, pool


def probe_table(store_path: str, params: Mapping[str, str]) -> Preset:
    """The `probe` preset for this store: a row per stored layer of each encoder in
    ``params["encoders"]`` (comma-separated stems; all stored ones without it)."""
    store = FeatureStore.open(store_path)
    held = stored_layers(store)
    encoders = _encoders(params.get("encoders"), held, store_path)
    rows = []
    for stem in encoders:
        published = {p.metric: p.scores[stem] for p in PAPERS if stem in p.scores}
        for layer in held[stem]:
            meta = {"encoder": stem, "layer": layer.layer, "pool": layer.pool}
            rows.append(
                Row(
                    f"{stem} L{layer.layer}",
                    MappingProxyType({"features": layer.name}),
                    MappingProxyType(published),
                    meta=MappingProxyType(meta),
                )
            )
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


def _encoders(asked: str | None, held: Mapping[str, list[LayerSet]], store: str) -> list[str]:
    """The stems asked for, each checked against what the store holds."""
    if not held:
        raise ConfigError(
            f"{store} holds no layer sets to probe (sets named <model>.L<n>, with their "
            "layer recorded); extract some with `ser extract --layers all --pool mean`"
        )
    stems = list(held) if not asked else [s.strip() for s in asked.split(",")]
    unknown = [s for s in stems if s not in held]
    if unknown or len(set(stems)) != len(stems) or not all(stems):
        holds = "; ".join(f"{s} (layers {_layers(v)})" for s, v in held.items())
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
