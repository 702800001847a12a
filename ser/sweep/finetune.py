"""The `finetune` preset: how many of an encoder's top layers to fine-tune, whole or with
LoRA, ``ser sweep finetune --store S --out O --set encoder=hubert-base-ls960``.

Like the probe's, its rows come from the store: for each k of `TOPS` up to the encoder's
layer count N (its sets' recorded ``n_layers``), a run on the cached layer N - k (the set
`<stem>.L<N-k>`, frames or tokens) whose model trains the encoder's k layers above it
(`ser train --finetune <stem>.L<N-k>:top=k`, `ser.finetune`), once with the layers whole
and once with LoRA adapters of rank `RANK` (``--set lora=R``); k = 0 is the frozen probe
on the last layer, once. A k above N, or whose cached layer the store lacks, is said in
one line (the latter with the `ser extract` command that adds the layer), never left out
silently. The model is ser's unimodal MLP unless ``--fix fusion=...`` names another
family. `finetune_md` renders its table: UA, WA and macro F1, the trainable parameters
(counted in a checkpoint of the cell: a fine-tuned run's checkpoint holds what trained,
`ser.finetune.tuning.trained_state`) and the training seconds its record holds;
`ser.sweep.plots` draws UA against k and against those seconds.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ser.cache import FeatureStore
from ser.errors import ConfigError, SerError
from ser.extract.remake import remake, store_corpus
from ser.report.runs import markdown_table
from ser.runs.fold_entry import FoldEntry
from ser.sweep.cells import cell_dir
from ser.sweep.presets import FINETUNE, Preset, Row
from ser.sweep.probe import Encoder, stored_encoders
from ser.sweep.results import CellResult
from ser.train.checkpoint import checkpoint_keys, fold_key, model_size

TOPS = (0, 1, 2, 4)  # the top layers trained: 0, the frozen probe on the last layer
RANK = 8  # LoRA's rank where --set lora=R gives none
FIXED = MappingProxyType({"fusion": "none", "classes": "4"})
FROZEN, WHOLE, LORA = "frozen", "whole", "LoRA"
NOTE = (
    "k: the encoder's top layers trained on its cached layer N - k (0: the frozen last "
    "layer); whole: those layers' weights, LoRA: adapters on them. Trainable parameters: "
    "the values a checkpoint of the cell holds (the model's and, fine-tuned, what of the "
    "top layers trained); seconds: the run's training time as its record holds it."
)
COLUMNS = ("cell", "k", "tuning", "UA", "WA", "macro F1", "trainable parameters", "seconds")
# What `ser report --format csv` adds to a (seed, fold)'s line: its checkpoint's and its time.
CSV_COLUMNS = ("k", "tuning", "trainable_parameters", "seconds")


def finetune_table(stores: Sequence[str], params: Mapping[str, str]) -> tuple[Preset, list[str]]:
    """The preset's rows on its one store, and a line for each k of `TOPS` left out
    (also in the table's note, for the report)."""
    if len(stores) != 1:
        raise ConfigError(
            f"{FINETUNE}: fine-tunes one encoder on one store; give --store once "
            f"(got {len(stores)})"
        )
    path = stores[0]
    store = FeatureStore.open(path)
    held = stored_encoders(store)
    stem = _encoder(params.get("encoder"), held, path)
    n = layer_count(store, held[stem], path)
    frames = {layer: pools[None][0] for layer, pools in held[stem].sets.items() if None in pools}
    rank = _rank(params.get("lora"))
    rows, said = [], []
    for k in TOPS:
        if k > n:
            said.append(f"{FINETUNE}: k = {k} left out: {stem} has {n} layers")
        elif n - k not in frames:
            said.append(_missing(store, held[stem], k, n))
        else:
            rows += _rows(stem, frames[n - k], k, rank, str(store.path.resolve()))
    if not rows:
        raise ConfigError(f"{FINETUNE}: no k of {TOPS} can train on {path}: " + "; ".join(said))
    table = Preset(
        name=FINETUNE,
        title=f"How many top layers of {stem} to fine-tune, whole or with LoRA",
        rows=tuple(rows),
        reference=rows[0].label,
        fixed=FIXED,
        metrics=("ua", "wa", "f1"),
        figure=FINETUNE,
        note=" ".join([NOTE, *(f"{line}." for line in said)]),
    )
    return table, said


def _rows(stem: str, name: str, k: int, rank: int, store: str) -> list[Row]:
    """k's cells on the cached set `name`: the frozen probe (k = 0), else whole and LoRA."""
    if k == 0:
        meta = _frozen({"encoder": stem, "k": 0, "tuning": FROZEN, "set": name})
        return [Row(f"k = 0 {FROZEN}", _frozen({"features": name}), meta=meta, store=store)]
    rows = []
    for tuning, tail in ((WHOLE, ""), (LORA, f",lora={rank}")):
        options = {"features": name, "finetune": (f"{name}:top={k}{tail}",)}
        meta = {"encoder": stem, "k": k, "tuning": tuning, "set": name}
        label = f"k = {k} {tuning}" + (f" r={rank}" if tuning == LORA else "")
        rows.append(Row(label, _frozen(options), meta=_frozen(meta), store=store))
    return rows


def _frozen(d: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(d))


def _encoder(asked: str | None, held: Mapping[str, Encoder], store: str) -> str:
    """The stem asked for, or the one encoder whose layer frames the store holds."""
    framed = [stem for stem, e in held.items() if any(None in pools for pools in e.sets.values())]
    if asked and asked.strip() in framed:
        return asked.strip()
    if not asked and len(framed) == 1:
        return framed[0]
    holds = ", ".join(framed) or "no encoder's"
    what = f"--set encoder={asked}: {store} has no layer frames of it" if asked else (
        f"{FINETUNE}: say which encoder with --set encoder=STEM"
    )  # fmt: skip
    raise ConfigError(
        f"{what}; it holds the layer frames of {holds} (fine-tuning reads a layer's frames "
        "or tokens: `ser extract --layers ...` without --pooled-only)"
    )


def layer_count(store: FeatureStore, encoder: Encoder, path: str) -> int:
    """N: the encoder's transformer layers, as its sets record them (``n_layers``; a text
    model's set named as the model is its last layer)."""
    for layer, pools in sorted(encoder.sets.items()):
        for pool, (name, _) in pools.items():
            recorded = store.info(name).attrs.get("n_layers")
            if isinstance(recorded, int) and not isinstance(recorded, bool):
                return recorded
            if (name[: -len(pool) - 1] if pool else name) == encoder.stem:
                return layer
    raise ConfigError(
        f"{path}: the sets of {encoder.stem} do not record how many layers it has "
        "(n_layers): extract them again with `ser extract --layers`"
    )


def _rank(value: str | None) -> int:
    if value is None:
        return RANK
    try:
        rank = int(value)
    except ValueError:
        rank = 0
    if rank < 1:
        raise ConfigError(
            f"--set lora={value}: LoRA's rank, a whole number from 1 (default {RANK})"
        )
    return rank


def _missing(store: FeatureStore, encoder: Encoder, k: int, n: int) -> str:
    """The line for a k whose cached layer N - k the store lacks: the extraction that adds
    it (the encoder's stored frames' provenance at that layer)."""
    layer, want = n - k, f"{encoder.stem}.L{n - k}"
    return (
        f"{FINETUNE}: k = {k} needs {want} (the frames of layer {layer} of {encoder.stem}'s "
        f"{n}), which {store.path} lacks; add it with: {extract_command(store, encoder, layer)}"
    )


def extract_command(store: FeatureStore, encoder: Encoder, layer: int) -> str:
    """`ser extract` of one more layer of `encoder`, as its stored frames were made."""
    stored = [pools[None][0] for pools in encoder.sets.values() if None in pools]
    attrs = {**store.info(stored[0]).attrs, "layer": layer}
    made = remake(f"{encoder.stem}.L{layer}", attrs, store.feature_sets())
    flags = None if made is None else made.flags()
    if flags is None:  # made by the API with options no flag gives: the kind and the layer
        flags = ["--features", str(attrs.get("extractor")), "--layers", str(layer)]
    corpus = store_corpus(store)
    head = ["ser", "extract", *corpus.arguments(), "--store", str(store.path)]
    return shlex.join([*head, "--classes", corpus.classes, *flags])


def trainable(out: Path, result: CellResult, key: str | None = None) -> int | None:
    """The values checkpoint `key` of the cell holds (None: its first; every member's
    holds as many), None where it has none (yet)."""
    folder = cell_dir(out, result.row["key"])
    keys = checkpoint_keys(folder)
    key = key if key is not None else keys[0] if keys else None
    try:
        return model_size(folder, key) if key in keys else None
    except SerError:  # unreadable: the table says "-", `ser predict` names the problem
        return None


def csv_columns(out: Path, result: CellResult, entry: FoldEntry) -> list[str]:
    """`CSV_COLUMNS` of one (seed, fold) of a cell ("": a cell of another table)."""
    meta = result.row["meta"]
    if result.row["table"] != FINETUNE or "k" not in meta:
        return [""] * len(CSV_COLUMNS)
    size = trainable(out, result, fold_key(entry.seed, entry.fold))
    shown = "" if size is None else str(size)
    return [str(meta["k"]), meta["tuning"], shown, f"{entry.seconds:.2f}"]


def finetune_md(table: Mapping[str, Any], results: Sequence[CellResult], out: Path) -> str:
    """The preset's Markdown: its note, then a row per cell in the grid's order."""
    lines = [f"## {table['title']}", "", table["note"], ""]
    run = next((r.run for r in results if r.run), None)
    if run is not None:
        lines += [
            f"Ours: protocol {run.protocol}; validation: {run.validation or '-'}; "
            f"model {run.config.get('fusion')}; mean ± std over seeds (one seed: over "
            "its folds).",
            "",
        ]
    rows = []
    for r in results:
        meta, size = r.row["meta"], trainable(out, r)
        seconds = "-" if r.run is None else f"{r.run.seconds:.1f}"
        scores = [r.ours(m) for m in ("ua", "wa", "f1")]
        shown = "-" if size is None else f"{size:,}"
        rows.append([r.row["label"], str(meta["k"]), meta["tuning"], *scores, shown, seconds])
    return "\n".join([*lines, *markdown_table(COLUMNS, rows)]) + "\n"


def points(results: Sequence[CellResult], tuning: str) -> list[tuple[int, float, float, float]]:
    """(k, UA mean, UA std, seconds) of the cells of `tuning` that have a UA, by k; the
    frozen cell (k = 0) starts every line."""
    found = []
    for r in results:
        ms = r.mean_std("ua")
        if ms is not None and r.run is not None and r.row["meta"]["tuning"] in (tuning, FROZEN):
            found.append((int(r.row["meta"]["k"]), ms[0], ms[1], r.run.seconds))
    return sorted(found)
