"""The `probe` preset's report: a section per corpus (one per store), each with UA and WA
per layer per encoder, then per encoder the best layer (UA, WA, F1), the last, the
weighted sum of all layers and the published numbers of its checkpoint on that corpus.

A probe trained on the sentiment score alone (`--fix target=sentiment-score`: CMU-MOSI,
CMU-MOSEI) shows the head's MAE and Acc-2 where UA and WA stand, its best layer the one of
lowest mean MAE (`Scale`).

Rows are the manifest's cells whose ``meta`` names an encoder and a layer (None for the
weighted sum, whose record holds the learnt layer weights per fold: its peak is the
layer of the largest weight averaged over folds). Every number of ours is
`CellResult.ours` (mean ± std over seeds, as `ser report` writes it) with its n. Above
each section: our protocol and class set there, and which EmoBox table stands beside
ours (EmoBox's numbers are on its own folds: the section says when ours are not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ser.report.layer_weights import layer_weights
from ser.report.leaderboard import PROTOCOL
from ser.report.runs import markdown_table
from ser.runs.record import RunRecord
from ser.sweep.by_corpus import column_of
from ser.sweep.probe_published import EMOBOX, PAPERS, WEIGHTED
from ser.sweep.results import CellResult
from ser.train.features import layer_spec

BEST = ("ua", "wa", "f1")  # ours at the best layer
SCORE_HEAD = "sentiment-score"  # a regression the probe may lead with


@dataclass(frozen=True)
class Scale:
    """What a section shows per layer (`first`, `second`), at the best layer (`best`),
    and whether the best layer has the highest or the lowest mean `first`."""

    first: str = "ua"
    second: str = "wa"
    best: tuple[str, ...] = BEST
    labels: tuple[str, ...] = ("UA", "WA", "F1")
    higher: bool = True


SENTIMENT = Scale(
    first=f"{SCORE_HEAD}_mae",
    second=f"{SCORE_HEAD}_acc2_non0",
    best=tuple(f"{SCORE_HEAD}_{m}" for m in ("mae", "acc2_non0", "corr")),
    labels=("MAE", "Acc-2", "Corr"),
    higher=False,
)


def scale_of(cells: Sequence[CellResult]) -> Scale:
    """`SENTIMENT` for cells trained on the sentiment score alone, else UA and WA."""
    targets = {str(r.row.get("config", {}).get("target") or "") for r in cells}
    return SENTIMENT if targets == {SCORE_HEAD} else Scale()


def probe_md(table: dict[str, Any], results: Sequence[CellResult], heading: list[str]) -> str:
    """The table's markdown: `heading` (the title, a blank line, then the note) with a line
    per paper after the title and the probe's settings, then a section per corpus: our
    protocol and class set there, its EmoBox numbers, the per-layer table and the
    per-encoder summary."""
    papers = [f"Published, {p.name}: {p.source}; its protocol: {p.protocol}." for p in PAPERS]
    lines = [*heading[:2], *papers, *heading[2:], _settings(results)]
    for column, cells in corpora(results).items():
        lines += ["", f"### {column}", "", _ours_line(cells), _emobox_line(cells), ""]
        by_encoder, scale = encoders(cells), scale_of(cells)
        rows = []
        for stem, mine in by_encoder.items():
            best = best_layer(mine, scale)
            for r in mine:
                rows.append([stem, _layer_label(r, best), _pool(r), *_ours(r, scale)])
        named = [f"{label} (ours)" for label in scale.labels[:2]]
        lines += markdown_table(["encoder", "layer", "read from", *named, "n"], rows)
        lines += [
            "",
            f"#### {column} per encoder: best layer, last layer, weighted sum, published",
            "",
        ]
        lines += markdown_table(*_summary(by_encoder, scale))
    return "\n".join(lines) + "\n"


def corpora(results: Sequence[CellResult]) -> dict[str, list[CellResult]]:
    """The report's column (its store's corpus) -> its cells, in the manifest's order."""
    out: dict[str, list[CellResult]] = {}
    for r in results:
        out.setdefault(column_of(r), []).append(r)
    return out


def encoders(results: Sequence[CellResult]) -> dict[str, list[CellResult]]:
    """stem -> its cells in the manifest's order (layers ascending, the weighted sum last)."""
    out: dict[str, list[CellResult]] = {}
    for r in results:
        out.setdefault(str(r.row["meta"]["encoder"]), []).append(r)
    return out


def layer(r: CellResult) -> int | None:
    value = r.row["meta"].get("layer")
    return None if value is None else int(value)


def best_layer(cells: Sequence[CellResult], scale: Scale = Scale()) -> CellResult | None:
    """The single layer of highest mean UA (`scale`: its first score, highest or lowest;
    ties: the lower layer), None before any ran."""
    sign = 1.0 if scale.higher else -1.0
    scored = [
        (sign * ms[0], -(layer(r) or 0), r)
        for r in cells
        if layer(r) is not None
        if (ms := r.mean_std(scale.first)) is not None
    ]
    return max(scored, key=lambda s: s[:2])[2] if scored else None


def peak(run: RunRecord | None) -> int | None:
    """The layer whose learnt weight, averaged over the record's folds, is largest."""
    weights = layer_weights(run) if run else []
    return weights[0].peak if weights else None


def _ours_line(cells: Sequence[CellResult]) -> str:
    """Our protocol and class set on the section's store (as its cells resolved them)."""
    config = cells[0].row.get("config", {})
    run = next((r.run for r in cells if r.run), None)
    independent = run is not None and run.independent
    held = "" if run is None else f" (speaker-{'in' if independent else ''}dependent)"
    validation = f"; validation: {run.validation or '-'}" if run is not None else ""
    classes = f"; {len(run.classes)} classes ({', '.join(run.classes)})" if run else ""
    classes = classes if not run or run.classes else f"; target {config.get('target')}"
    classes = classes or f"; class set {config.get('classes', '-')}"
    return f"Ours: {config.get('protocol', '-')}{held}{validation}{classes}."


def _emobox_line(cells: Sequence[CellResult]) -> str:
    """Which EmoBox table stands beside ours, and whether ours are on its folds."""
    meta = cells[0].row["meta"]
    corpus = meta.get("emobox_corpus")
    if corpus is None:
        return "EmoBox: none (EmoBox benchmarks no such corpus)."
    protocol = str(cells[0].row.get("config", {}).get("protocol", ""))
    same = protocol.split(":")[0] == PROTOCOL
    where = "ours on its folds too" if same else f"ours on {protocol}: another split"
    return (
        f"EmoBox: its {corpus} numbers ({EMOBOX.source}), on EmoBox's own folds and class "
        f"set of it; {where}."
    )


def _peak_text(run: RunRecord | None) -> str:
    """e.g. " (weights peak at 8: 0.152 ± 0.010, uniform 0.077)"; "" before any fold."""
    weights = layer_weights(run) if run else []
    if not weights:
        return ""
    w = weights[0]
    i = w.layers.index(w.peak)
    return f" (weights peak at {w.peak}: {w.value(i)}, uniform {1 / len(w.layers):.3f})"


def _settings(results: Sequence[CellResult]) -> str:
    """The probe's settings as the first cell ran them (the weighted sum's batch too)."""
    config: dict[str, Any] = next((r.row["config"] for r in results), {})
    if not config:
        return ""
    summed = {r.row["config"].get("batch_size") for r in results if layer(r) is None}
    other = summed - {config.get("batch_size")}
    batches = f" ({WEIGHTED}: {other.pop()})" if other else ""
    return (
        f"The probe: ser's unimodal MLP (hidden {config.get('d_model')}, dropout "
        f"{config.get('dropout')}), {config.get('epochs')} epochs, batch "
        f"{config.get('batch_size')}{batches}, lr {config.get('lr')}, "
        f"{len(config.get('seeds', []))} seed(s) per (layer, fold); the best layer is the "
        "one of highest mean UA (of lowest mean MAE on the sentiment score)."
    )


def _layer_label(r: CellResult, best: CellResult | None) -> str:
    n = layer(r)
    if n is None:
        return WEIGHTED + _peak_text(r.run)
    return f"{n} (best)" if best is not None and r is best else str(n)


def _pool(r: CellResult) -> str:
    """Which sets a row read: e.g. ".mean set", "frames, mean-pooled", "layers 0-12,
    .mean sets"."""
    pool, layers = r.row["meta"].get("pool"), r.row["meta"].get("layers")
    if layers is None:
        return f".{pool} set" if pool else "frames, mean-pooled"
    return f"layers {layer_spec(layers).replace('_', ', ')}, " + (
        f".{pool} sets" if pool else "frames, mean-pooled"
    )


def _ours(r: CellResult, scale: Scale) -> list[str]:
    ms = r.mean_std(scale.first)
    return [r.ours(scale.first), r.ours(scale.second), "-" if ms is None else str(ms[2])]


def _emobox_model(meta: dict[str, Any]) -> str:
    """EmoBox's name of the encoder, or why none: "none (EmoBox has no <id>)"."""
    model = meta.get("emobox_model")
    return str(model) if model else f"none (EmoBox has no {meta.get('matched_by', '?')})"


def _summary(
    by_encoder: dict[str, list[CellResult]], scale: Scale
) -> tuple[list[str], list[list[str]]]:
    first, second = scale.labels[:2]
    head = ["encoder", "best layer", *scale.labels, "last layer", first]
    head += [f"{WEIGHTED}: weights peak at", first, second, "EmoBox model"]
    for p in PAPERS:
        head += [f"{p.name} {m.upper()} (paper; beside our {p.beside})" for m in p.keys]
    rows = []
    for stem, cells in by_encoder.items():
        best = best_layer(cells, scale)
        single = [r for r in cells if layer(r) is not None]
        last = single[-1] if single else None
        summed = next((r for r in cells if layer(r) is None), None)
        row = [stem]
        shown = [] if best is None else [str(layer(best)), *(best.ours(m) for m in scale.best)]
        row += shown or ["-"] * 4
        row += ["-", "-"] if last is None else [str(layer(last)), last.ours(scale.first)]
        if summed is None:
            row += ["not in this sweep", "-", "-"]
        else:
            top = peak(summed.run)
            row += [
                "-" if top is None else str(top),
                summed.ours(scale.first),
                summed.ours(scale.second),
            ]
        row.append(_emobox_model(cells[0].row["meta"]))
        published = cells[0].row["published"]  # as the sweep's manifest recorded them
        for p in PAPERS:
            row += [f"{published[k]:.2f}" if k in published else "-" for k in p.keys.values()]
        rows.append(row)
    return head, rows
