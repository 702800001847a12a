"""The `cross-corpus` preset: ``ser sweep cross-corpus --store A --store B [--store C]``
trains on each store and tests on each other (`ser train --test-store`: every ordered
pair, A -> B and B -> A), and each store under its own corpus's protocol (the diagonal),
each an ordinary content-addressed cell (a cross cell's key holds its test store's
identity), resumed and estimated as any; `ser report OUT` gives the train x test tables
(`ser.report.cross`), `--plots` their heat-map.

Like the probe, its rows come from what it sweeps: a row per (training, test) pair of
stores, bound to its training store (`Row.store`: `ser.sweep.cells` resolves it there
only); `ser.sweep.cross_report` reads its cells back as tables. Its defaults are
EmoBox's cross-corpus track's: a unimodal probe (`--fusion none`) on one feature set,
`{audio}` (`--set audio=wavlm-large.L12.mean`; is13 by default), on the four emotions
every corpus kind has (class set 4, a corpus's own where it lacks it). --fix and --grid
apply to every cell: a --fix protocol=... meant for the diagonal is refused by the cross
cells (a cross-corpus run has no protocol of its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

from ser.cache import FeatureStore
from ser.errors import ConfigError
from ser.sweep.presets import CROSS, Preset, Row
from ser.sweep.stores import check_stores, columns, identify

DEFAULTS = MappingProxyType({"audio": "is13"})
FIXED = MappingProxyType({"features": "{audio}", "fusion": "none", "classes": "4"})
NOTE = (
    "A cross cell trains on all of its row's corpus (10 % held out for validation) and "
    "tests on its column's utterances of the emotions both corpora have (matched by name: "
    "ser/corpus/emotions.py); a diagonal cell is its corpus under its own protocol."
)


def cross_table(stores: Sequence[str]) -> Preset:
    """The preset's table for these stores (two or more, each another corpus)."""
    if len(stores) < 2:
        raise ConfigError(
            f"{CROSS}: trains on one store and tests on another; give two or more --store"
        )
    idents = [identify(FeatureStore.open(path)) for path in stores]
    check_stores(idents)  # a store twice, or two holding the same utterances
    names = columns(idents)
    rows = []
    for a, train in zip(idents, names, strict=True):
        for b, test in zip(idents, names, strict=True):
            options = {} if a is b else {"test_store": b.path}
            meta = {
                "store": a.path,  # the one store the row trains on (`Row.store` too)
                "test_store": b.path,
                "columns": [train, test],
                "corpora": [a.corpus, b.corpus],
            }
            label = f"{train} (own protocol)" if a is b else f"{train} -> {test}"
            rows.append(
                Row(label, MappingProxyType(options), meta=MappingProxyType(meta), store=a.path)
            )
    return Preset(
        name=CROSS,
        title="Cross-corpus: trained on each corpus (rows), tested on each (columns)",
        rows=tuple(rows),
        reference=rows[0].label,
        paper="EmoBox (Ma et al., Interspeech 2024), Table 5",
        protocol="trained on the whole source corpus, tested on balanced 4-emotion sets",
        params=DEFAULTS,
        fixed=FIXED,
        metrics=("ua", "wa", "f1"),
        figure="cross",
        note=NOTE,
    )
