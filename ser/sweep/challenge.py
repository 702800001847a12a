"""The `msp-podcast-challenge` preset: the MSP-Podcast emotion challenge's two tasks
(Odyssey 2024; the same at Interspeech 2025) on an MSP-Podcast store, ``ser sweep
msp-podcast-challenge --store msp.zarr``.

Task 1 is the 8 primary emotions (class set `8`) with balanced class weights, as the
organisers' baseline weighs its cross-entropy, scored by macro F1; task 2 is arousal,
valence and dominance (`--target attributes`, 1 - CCC), scored by their mean CCC. Both are
trained on the Train partition (a `random10` slice validating) and tested on Development
(`official:dev`): the challenge's Test3 labels are not released, so ours stand beside the
published Test3 numbers (`ser/report/published/msp_podcast_challenge.csv`) without being
the same test. `ser.sweep.challenge_report` renders the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

from ser.cache import FeatureStore
from ser.errors import ConfigError
from ser.report.leaderboard import read_rows
from ser.sweep.presets import CHALLENGE, Preset, Row
from ser.sweep.stores import identify

KIND = "msp-podcast"
PUBLISHED = "msp_podcast_challenge.csv"
DEFAULTS = MappingProxyType({"audio": "is13"})
FIXED = MappingProxyType({"features": "{audio}", "fusion": "none"})
# The Development partition tested; validation carved from Train (`official:dev`).
SIDES = {"protocol": "official:dev", "val": "random10"}
TASKS = {
    "Task 1: 8 emotions": ("1", "f1", {**SIDES, "classes": "8", "class_weights": "balanced"}),
    "Task 2: attributes": ("2", "ccc_mean", {**SIDES, "target": "attributes"}),
}
NOTE = (
    "Ours are on MSP-Podcast's Development partition; the published numbers are on the "
    "challenge's Test3 set, whose labels are not released: beside each other, not the same test."
)


def published(task: str) -> list[dict[str, str]]:
    """The published rows of a task ("1" or "2"): edition, entry, metric, value, source."""
    return [row for row in read_rows(PUBLISHED) if row["task"] == task]


def challenge_table(stores: Sequence[str]) -> Preset:
    """The preset's two rows, on MSP-Podcast stores only (`ConfigError` for another)."""
    if not stores:
        raise ConfigError(f"{CHALLENGE}: give the MSP-Podcast store with --store")
    for path in stores:
        corpus = identify(FeatureStore.open(path)).corpus
        if corpus != KIND:
            raise ConfigError(
                f"{CHALLENGE}: {path} holds a {corpus or 'unnamed'} corpus; the challenge's "
                f"tasks are MSP-Podcast's (a store extracted from a {KIND} root)"
            )
    rows = tuple(
        Row(
            label,
            MappingProxyType(options),
            MappingProxyType({row["entry"]: float(row["value"]) for row in published(task)}),
            meta=MappingProxyType({"task": task, "metric": metric}),
        )
        for label, (task, metric, options) in TASKS.items()
    )
    return Preset(
        name=CHALLENGE,
        title="MSP-Podcast challenge (Odyssey 2024): task 1 categories, task 2 attributes",
        rows=rows,
        reference=rows[0].label,
        paper="Goncalves et al., Odyssey 2024 (and the Interspeech 2025 edition)",
        protocol="Test3 (labels not released); ours: Development, trained on Train",
        params=DEFAULTS,
        fixed=FIXED,
        metrics=("f1", "ccc_mean"),
        figure="challenge",
        note=NOTE,
    )
