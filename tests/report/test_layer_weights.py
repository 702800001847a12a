"""The learnt layer weights of runs on layered inputs: summaries, the report's column and
CSV cell, and the plot (records written here by hand)."""

from __future__ import annotations

import csv
import doctest
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

import ser.report.layer_weights
from ser.report.layer_weights import layer_weights, peak_label, weights_lines
from ser.report.plots import _layers_figure, write_plots
from ser.report.runs import report_table
from ser.runs.record import Layered, RunRecord
from tests.report.test_runs import _record

LAYERED = "enc.L3-6"


def _layered(name: str = "probe", seeds: int = 2) -> RunRecord:
    """A record of two folds per seed on `enc.L3-6`, layer 5 the heaviest."""
    record = _record(name, features="enc.L*", fusion="none")
    sets = tuple(f"enc.L{n}" for n in range(3, 7))
    shift = [(s, k, 0.02 * k - 0.01 * s) for s in range(seeds) for k in (1, 2)]
    folds = [
        replace(record.folds[0], seed=s, fold=f"fold{k}",
                layer_weights={LAYERED: (0.1, 0.2, 0.5 + d, 0.2 - d)})
        for s, k, d in shift
    ]  # fmt: skip
    layers = {LAYERED: Layered(sets=sets, layers=(3, 4, 5, 6))}
    return replace(record, layers=layers, folds=tuple(folds))


def test_weights_are_summarised_per_layer_over_folds_and_seeds() -> None:
    (w,) = layer_weights(_layered())
    assert (w.input, w.layers, w.n, w.peak) == (LAYERED, (3, 4, 5, 6), 4, 5)
    assert w.mean == pytest.approx((0.1, 0.2, 0.525, 0.175))
    assert w.std[0] == pytest.approx(0.0) and w.std[2] > 0
    assert layer_weights(_record("plain")) == []
    assert peak_label(_layered()).startswith("enc.L3-6: L5 0.525 ± 0.013 (uniform 0.250)")


def test_one_fold_entry_shows_no_spread() -> None:
    record = _layered(seeds=1)
    record = replace(record, folds=record.folds[:1])
    assert peak_label(record) == "enc.L3-6: L5 0.520 (uniform 0.250)"
    assert "±" not in "".join(weights_lines(record))


def test_ser_train_lines_name_every_layer_and_what_the_spread_is_over() -> None:
    heading, values = weights_lines(_layered())
    assert heading == (
        "layer weights of enc.L3-6 (softmax, mean ± std over 4 fold entries (2 seeds); "
        "uniform 0.250), largest L5:"
    )
    assert values.startswith("  L3 0.100 ± 0.000, L4 0.200 ± 0.000, L5 0.525 ± ")


def test_the_report_adds_its_column_only_for_layered_runs() -> None:
    plain = report_table([_record("plain")]).splitlines()[0]
    assert "layer weights" not in plain
    md = report_table([_record("plain"), _layered()]).splitlines()
    header = [c.strip() for c in md[0].strip("|").split("|")]
    assert header[header.index("settings") + 1] == "layer weights (largest)"
    assert "| - |" in md[2] and "| enc.L3-6: L5 0.525 ± 0.013 (uniform 0.250) |" in md[3]
    rows = list(csv.DictReader(io.StringIO(report_table([_record("plain"), _layered()], "csv"))))
    assert rows[0]["layer_weights"] == ""
    cell = json.loads(rows[1]["layer_weights"])
    assert cell[LAYERED]["layers"] == [3, 4, 5, 6] and cell[LAYERED]["n"] == 4
    assert cell[LAYERED]["mean"] == pytest.approx([0.1, 0.2, 0.525, 0.175])


@pytest.mark.slow
def test_the_plot_draws_each_layer_with_its_spread(tmp_path: Path) -> None:
    written = write_plots([_layered(), _record("plain")], tmp_path)
    assert sorted(p.name for p in written if "layers" in p.name) == ["probe_layers.png"]
    assert (tmp_path / "probe_layers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = _layers_figure(_layered(), layer_weights(_layered()))
    (ax,) = fig.axes
    assert ax.get_title() == "enc.L3-6 (mean ± std over 4 fold entries)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["3", "4", "5", "6"]
    assert [round(b.get_height(), 3) for b in ax.patches] == [0.1, 0.2, 0.525, 0.175]


def test_docstring_examples_run() -> None:
    result = doctest.testmod(ser.report.layer_weights)
    assert result.attempted > 0 and result.failed == 0
