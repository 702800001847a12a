"""Report tables and plots from run records written here by hand."""

from __future__ import annotations

import csv
import doctest
import io
import json
from pathlib import Path
from typing import Any

import pytest

import ser.train.report
from ser.train.metrics import compute_metrics
from ser.train.report import CSV_HEADER, ReportError, load_run, report_table, write_plots

CLASSES = ["neu", "hap", "sad", "ang"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _config(**overrides: Any) -> dict[str, Any]:
    config = {
        "features": "hubert+mpnet", "fusion": "mit", "fusion_at": None, "loss": "single",
        "queries": 30, "rmm": True, "protocol": "loso", "classes": "4", "eval_mask": None,
        "seeds": 2, "store": "/data/features.zarr", "out": "runs",
    }  # fmt: skip
    config.update(overrides)
    return config


def _fold(seed: int, fold: str, shift: int) -> dict[str, Any]:
    import numpy as np

    y_true = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    y_pred = np.roll(y_true, shift)
    epochs = [1, 2, 3]
    return {
        "seed": seed,
        "fold": fold,
        "metrics": compute_metrics(y_true, y_pred, CLASSES).to_dict(),
        "best_epoch": 2,
        "curves": {"epoch": epochs, "train_loss": [1.3, 1.0, 0.8], "val_loss": [1.4, 1.2, 1.25],
                   "val_ua": [40.0, 55.5, 52.0], "val_wa": [41.0, 56.0, 53.0]},
    }  # fmt: skip


def _record(name: str, protocol: str = "loso", **config: Any) -> dict[str, Any]:
    folds = [_fold(0, "fold1", 0), _fold(0, "fold2", 1), _fold(1, "fold1", 0)]
    return {
        "name": name,
        "config": _config(protocol=protocol, **config),
        "protocol": protocol,
        "speaker_independent": protocol != "random",
        "classes": CLASSES,
        "summary": {"wa": 71.234, "ua": 70.5, "f1": 69.999, "wa_std": 1.5, "ua_std": 0.25,
                    "f1_std": 2.0, "seeds": 2},
        "folds": folds,
        "pooled": {"wa": 66.67, "ua": 66.67, "f1": 60.0,
                   "per_class_recall": {c: 66.67 for c in CLASSES},
                   "confusion": [[5, 1, 0, 0], [0, 4, 2, 0], [0, 0, 6, 0], [1, 0, 0, 5]], "n": 24},
        "seconds": 12.5, "fingerprints": {"hubert.L12": "abc"}, "version": "0.1.0",
    }  # fmt: skip


def _write(tmp_path: Path, record: dict[str, Any]) -> Path:
    run_dir = tmp_path / record["name"]
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps(record))
    return run_dir


def test_load_run_accepts_the_directory_or_the_file(tmp_path: Path) -> None:
    run_dir = _write(tmp_path, _record("msmser"))
    assert load_run(run_dir)["name"] == "msmser"
    assert load_run(run_dir / "run.json")["summary"]["ua"] == 70.5


def test_load_run_names_the_path_of_a_missing_or_bad_record(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"nowhere: no such run directory or run\.json"):
        load_run(tmp_path / "nowhere")
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(ReportError, match=r"bad/run\.json: no run record"):
        load_run(bad)
    (bad / "run.json").write_text("{not json")
    with pytest.raises(ReportError, match=r"bad/run\.json: not a readable JSON run record"):
        load_run(bad)
    (bad / "run.json").write_text(json.dumps({"name": "x", "config": {}}))
    with pytest.raises(ReportError, match=r"run\.json: run record lacks protocol, classes$"):
        load_run(bad)


def test_markdown_table(tmp_path: Path) -> None:
    runs = [load_run(_write(tmp_path, _record("full"))),
            load_run(_write(tmp_path, _record("no-rmm", rmm=False)))]  # fmt: skip
    lines = report_table(runs, fmt="md").splitlines()
    assert (
        lines[0]
        == "| run | features | fusion | protocol | classes | settings | UA | WA | F1 | seeds |"
    )
    assert lines[1] == "|---|---|---|---|---|---|---|---|---|---|"
    # Only rmm differs between the two runs, so it alone labels the rows.
    assert lines[2] == (
        "| full | hubert+mpnet | mit | loso | 4 | rmm=True "
        "| 70.50 ± 0.25 | 71.23 ± 1.50 | 70.00 ± 2.00 | 2 |"
    )
    assert lines[3].startswith("| no-rmm | hubert+mpnet | mit | loso | 4 | rmm=False |")
    assert len(lines) == 4


def test_csv_table_and_speaker_dependent_flag(tmp_path: Path) -> None:
    runs = [_record("zhou", protocol="random", features="logmel80+bert", fusion="late")]
    text = report_table(runs, fmt="csv")
    parsed = list(csv.reader(io.StringIO(text)))
    assert tuple(parsed[0]) == CSV_HEADER == (
        "run", "features", "fusion", "protocol", "classes", "settings",
        "ua", "ua_std", "wa", "wa_std", "f1", "f1_std", "seeds",
    )  # fmt: skip
    assert parsed[1] == [
        "zhou", "logmel80+bert", "late", "random (speaker-dependent)", "4", "",
        "70.50", "0.25", "71.23", "1.50", "70.00", "2.00", "2",
    ]  # fmt: skip
    assert "| random (speaker-dependent) |" in report_table(runs, fmt="md")


def test_an_unfinished_run_is_reported_from_its_folds_and_marked() -> None:
    record = _record("partial")
    record.update(complete=False, summary=None, pooled=None)  # as the trainer leaves it
    (row,) = list(csv.DictReader(io.StringIO(report_table([record], fmt="csv"))))
    assert row["run"] == "partial (incomplete)"
    # seed 0: folds at UA 100 and 50 -> 75; seed 1: 100. Mean 87.5, sample std 12.5 * sqrt 2.
    assert row["ua"] == "87.50" and row["ua_std"] == "17.68" and row["seeds"] == "2"


def test_a_record_without_any_fold_is_refused(tmp_path: Path) -> None:
    record = _record("fresh")
    record.update(complete=False, summary=None, pooled=None, folds=[])
    with pytest.raises(ReportError, match="run 'fresh' has no finished fold yet"):
        load_run(_write(tmp_path, record))


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(ReportError, match="unknown report format 'xlsx'"):
        report_table([_record("a")], fmt="xlsx")


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_MAGIC), path


def test_plots_per_run_and_queries_sweep(tmp_path: Path) -> None:
    runs = [_record(f"L{q}", queries=q) for q in (10, 30, 50)]
    runs.append(_record("text-only", features="mpnet", queries=30))  # a group of one
    out = tmp_path / "plots"
    written = write_plots(runs, out)
    names = sorted(p.name for p in written)
    expected = [
        f"{r}_{kind}.png"
        for r in ("L10", "L30", "L50", "text-only")
        for kind in ("confusion", "curves")
    ]
    assert names == sorted([*expected, "queries_ua.png"])
    for path in written:
        assert path.parent == out
        _assert_png(path)
    assert not list(out.glob(".*.tmp"))


def test_no_queries_plot_without_a_sweep_and_unique_file_names(tmp_path: Path) -> None:
    runs = [_record("same name"), _record("same name", rmm=False)]  # also differ in rmm
    runs[0]["pooled"] = None  # pooled from the folds instead
    runs[1]["folds"] = []  # no curves recorded: the curves plot says so instead
    written = write_plots(runs, tmp_path)
    assert sorted(p.name for p in written) == [
        "same_name-2_confusion.png", "same_name-2_curves.png",
        "same_name_confusion.png", "same_name_curves.png",
    ]  # fmt: skip
    for path in written:
        _assert_png(path)


def test_a_bad_pooled_confusion_is_reported(tmp_path: Path) -> None:
    record = _record("broken")
    record["pooled"]["confusion"] = [[1, 2], [3, 4]]
    with pytest.raises(ReportError, match=r"run 'broken': pooled confusion is \(2, 2\)"):
        write_plots([record], tmp_path)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(ser.train.report).failed == 0
