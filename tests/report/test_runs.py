"""Report tables and plots from run records written here by hand."""

from __future__ import annotations

import csv
import doctest
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import ser.report.runs
from ser.heads.metrics import Metrics, compute_metrics
from ser.report.plots import _confusion_figure, _curves_figure, write_plots
from ser.report.runs import CSV_HEADER, LEGEND, ReportError, load_run, report_table, run_settings
from ser.runs.config import RunConfig
from ser.runs.fold_entry import FoldEntry, Stage
from ser.runs.provenance import Threads
from ser.runs.record import RunRecord, write

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


def _fold(seed: int, fold: str, shift: int) -> FoldEntry:
    import numpy as np

    y_true = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    y_pred = np.roll(y_true, shift)
    epochs = [1, 2, 3]
    return FoldEntry.from_json({
        "seed": seed,
        "fold": fold,
        "metrics": compute_metrics(y_true, y_pred, CLASSES).to_json(),
        "best_epoch": 2,
        "curves": {"epoch": epochs, "train_loss": [1.3, 1.0, 0.8], "val_loss": [1.4, 1.2, 1.25],
                   "val_ua": [40.0, 55.5, 52.0], "val_wa": [41.0, 56.0, 53.0]},
    })  # fmt: skip


def _record(name: str, protocol: str = "loso", **config: Any) -> RunRecord:
    folds = [_fold(0, "fold1", 0), _fold(0, "fold2", 1), _fold(1, "fold1", 0)]
    return RunRecord.from_json({
        "name": name,
        "config": _config(protocol=protocol, **config),
        "protocol": protocol,
        "speaker_independent": protocol != "random",
        "classes": CLASSES,
        "summary": {"wa": 71.234, "ua": 70.5, "f1": 69.999, "wa_std": 1.5, "ua_std": 0.25,
                    "f1_std": 2.0, "seeds": 2},
        "folds": [fold.to_json() for fold in folds],
        "pooled": {"wa": 66.67, "ua": 66.67, "f1": 60.0,
                   "per_class_recall": {c: 66.67 for c in CLASSES},
                   "confusion": [[5, 1, 0, 0], [0, 4, 2, 0], [0, 0, 6, 0], [1, 0, 0, 5]], "n": 24},
        "seconds": 12.5, "fingerprints": {"hubert.L12": "abc"}, "version": "0.1.0",
    })  # fmt: skip


def _write(tmp_path: Path, record: RunRecord) -> Path:
    run_dir = tmp_path / record.name
    write(run_dir / "run.json", record)
    return run_dir


def test_load_run_accepts_the_directory_or_the_file(tmp_path: Path) -> None:
    run_dir = _write(tmp_path, _record("msmser"))
    assert load_run(run_dir).name == "msmser"
    summary = load_run(run_dir / "run.json").summary
    assert summary is not None and summary["ua"] == 70.5


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
    assert lines[0] == (
        "| run | features | fusion | protocol | classes | settings | mean UA | mean WA "
        "| mean macro F1 | mean weighted F1 | n | pooled UA | pooled WA | pooled macro F1 "
        "| pooled weighted F1 |"
    )
    assert lines[1] == "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    # The full model is MSMSER's defaults: no settings; the ablation names what it drops.
    assert lines[2] == (
        "| full | hubert+mpnet | mit | loso | 4 |  "
        "| 70.50 ± 0.25 | 71.23 ± 1.50 | 70.00 ± 2.00 | 87.50 ± 17.68 | 2 seeds | 66.67 | 66.67 "
        "| 60.00 | 83.17 |"
    )  # WF1 from the folds (seeds: 75, 100) and the pooled confusion: a record from before it
    assert lines[3].startswith("| no-rmm | hubert+mpnet | mit | loso | 4 | rmm=False |")
    assert lines[4:] == ["", LEGEND]  # what mean, n and pooled are, under the table


def test_csv_table_and_speaker_dependent_flag(tmp_path: Path) -> None:
    runs = [_record("zhou", protocol="random", features="logmel80+bert", fusion="late-prob")]
    text = report_table(runs, fmt="csv")
    parsed = list(csv.reader(io.StringIO(text)))
    assert tuple(parsed[0]) == CSV_HEADER == (
        "run", "features", "fusion", "protocol", "classes", "settings",
        "mean_ua", "mean_ua_std", "mean_wa", "mean_wa_std", "mean_f1", "mean_f1_std",
        "n", "std_over", "seeds", "pooled_ua", "pooled_wa", "pooled_f1",
        "mean_wf1", "mean_wf1_std", "pooled_wf1",
    )  # fmt: skip
    assert parsed[1] == [
        "zhou", "logmel80+bert", "late-prob", "random (speaker-dependent)", "4", "",
        "70.50", "0.25", "71.23", "1.50", "70.00", "2.00", "2", "seeds", "2",
        "66.67", "66.67", "60.00", "87.50", "17.68", "83.17",
    ]  # fmt: skip
    assert "| random (speaker-dependent) |" in report_table(runs, fmt="md")
    # a validation other than the default session is named with the protocol
    assert "| loso, val random10 |" in report_table([_record("r10", val="random10")])


def test_an_unfinished_run_is_reported_from_its_folds_and_marked() -> None:
    # as the trainer leaves it
    record = replace(_record("partial"), complete=False, summary=None, pooled=None)
    (row,) = list(csv.DictReader(io.StringIO(report_table([record], fmt="csv"))))
    assert row["run"] == "partial (incomplete)"
    # seed 0: folds at UA 100 and 50 -> 75; seed 1: 100. Mean 87.5, sample std 12.5 * sqrt 2.
    assert row["mean_ua"] == "87.50" and row["mean_ua_std"] == "17.68" and row["seeds"] == "2"
    # pooled from the folds: 24 predictions, 20 right (the shifted fold gets 4 of 8 wrong)
    assert row["pooled_wa"] == f"{100 * 20 / 24:.2f}" and row["n"] == "2"


def _one_seed(name: str, folds: int) -> RunRecord:
    entries = tuple(_fold(0, f"fold{k}", k) for k in range(folds))
    return replace(_record(name), summary=None, pooled=None, folds=entries)


def test_one_seed_of_one_fold_shows_its_number_and_n_1_never_a_zero_std() -> None:
    md = report_table([_one_seed("once", 1)], fmt="md")
    row = md.splitlines()[2]
    assert "± 0.00" not in md
    assert "| 100.00 (n = 1) | 100.00 (n = 1) | 100.00 (n = 1) | 1 fold of 1 seed |" in row
    (line,) = csv.DictReader(io.StringIO(report_table([_one_seed("once", 1)], fmt="csv")))
    assert line["mean_ua"] == "100.00" and line["mean_ua_std"] == "" and line["n"] == "1"
    # one seed over 3 folds: its std is over those folds, and says so
    assert "| 3 folds of 1 seed |" in report_table([_one_seed("three", 3)], fmt="md")


def test_settings_are_the_family_options_that_differ_from_its_defaults() -> None:
    # A record carries every option of its family (queries=30, rmm=True, ...), resolved;
    # records written before each family had its config carry every family's.
    study = _record("add_logits", features="is13+bert", fusion="add", fusion_at="logits",
                    loss="perspective", d_model=100, heads=4, epochs=150, lr=1e-3)  # fmt: skip
    assert run_settings(study) == {"fusion_at": "logits", "loss": "perspective"}
    mit = _record("mit_l10", queries=10, d_model=768, epochs=40, lr=2e-5, cnn_channels=None)
    assert run_settings(mit) == {"queries": 10, "epochs": 40}
    text_only = _record("text", features="mpnet", rmm=False, family="msmser")
    assert run_settings(text_only) == {"rmm": False}  # given, though one set has no RMM
    context = _record("ctx", features="bert", fusion="none", context=True, d_model=100)
    assert run_settings(context) == {"context": True}  # the fusion study's, not the MLP
    late = _record("zhou", features="logmel80+bert", fusion="late-prob", staged=False,
                   cnn_channels=[32, 64, 128, 256, 256], patience=5)  # fmt: skip
    assert run_settings(late) == {"staged": False, "patience": 5}
    rows = report_table([study, mit], fmt="md").splitlines()
    assert "| fusion_at=logits, loss=perspective |" in rows[2] and "queries" not in rows[2]
    assert "| queries=10, epochs=40 |" in rows[3]
    unknown = _record("old", fusion="gated")  # a family this version does not know
    assert run_settings(unknown) is None and "| ? |" in report_table([unknown])


def test_a_record_without_any_fold_is_refused(tmp_path: Path) -> None:
    record = replace(_record("fresh"), complete=False, summary=None, pooled=None, folds=())
    with pytest.raises(ReportError, match="run 'fresh' has no finished fold yet"):
        load_run(_write(tmp_path, record))


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(ReportError, match="unknown report format 'xlsx'"):
        report_table([_record("a")], fmt="xlsx")


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_MAGIC), path


@pytest.mark.slow
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


@pytest.mark.slow
def test_no_queries_plot_without_a_sweep_and_unique_file_names(tmp_path: Path) -> None:
    runs = [_record("same name"), _record("same name", rmm=False)]  # also differ in rmm
    runs[0] = replace(runs[0], pooled=None)  # pooled from the folds instead
    runs[1] = replace(runs[1], folds=())  # no curves recorded: the curves plot says so instead
    written = write_plots(runs, tmp_path)
    assert sorted(p.name for p in written) == [
        "same_name-2_confusion.png", "same_name-2_curves.png",
        "same_name_confusion.png", "same_name_curves.png",
    ]  # fmt: skip
    for path in written:
        _assert_png(path)


def _titles(fig: Any) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def test_curves_show_every_stage_of_a_staged_run_and_name_their_seed() -> None:
    record = _record("zhou", features="logmel80+bert", fusion="late-prob")
    folds = tuple(  # as the trainer records Zhou et al.'s branches
        replace(fold, stages={name: Stage(1, 1.0, fold.curves) for name in ("audio", "text")})
        for fold in record.folds
    )
    record = replace(record, folds=folds)
    fig = _curves_figure(record)
    titles = _titles(fig)
    assert len(titles) == 6  # loss and val UA for each of 3 stages
    assert titles[0].startswith("stage 1 of 3: audio alone\nloss")
    assert titles[3].startswith("stage 2 of 3: text alone\nvalidation UA")
    assert titles[4].startswith("stage 3 of 3: the whole model\nloss")
    assert all(len(ax.get_lines()) > 0 for ax in fig.axes)  # every stage drawn
    assert fig.get_suptitle() == "zhou: seed 0 (the first of 2 seeds), one line per fold"
    unstaged = _curves_figure(_record("mit"))
    assert len(unstaged.axes) == 2 and not _titles(unstaged)[0].startswith("stage")


def test_the_confusion_matrix_says_what_it_pools() -> None:
    title = _titles(_confusion_figure(_record("two_seeds")))[0]
    assert "pooled over 2 folds x 2 seeds (an utterance once per seed), n=24" in title
    one = _one_seed("one", 3)
    assert "pooled over 3 folds of seed 0, n=24" in _titles(_confusion_figure(one))[0]


def test_a_bad_pooled_confusion_is_reported(tmp_path: Path) -> None:
    record = _record("broken")
    pooled = replace(record.pooled or Metrics.from_json({}), confusion=((1, 2), (3, 4)))
    record = replace(record, pooled=pooled)
    with pytest.raises(ReportError, match=r"run 'broken': pooled confusion is \(2, 2\)"):
        write_plots([record], tmp_path)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(ser.report.runs).failed == 0


def test_a_record_from_before_follow_was_removed_still_reads() -> None:
    """`--threads follow` is gone; records written with it may carry `follows_load`."""
    from ser.report.runs import run_label

    old = {"name": "mit", "config": {}, "protocol": "loso", "classes": [],
           "threads": {"count": 1, "follows_load": True}}  # fmt: skip
    assert run_label(RunRecord.from_json(old)) == "mit"
    assert RunRecord.from_json(old).threads == Threads(count=1, extra={"follows_load": True})
    assert run_label(RunRecord.from_json({**old, "complete": False})) == "mit (incomplete)"


def test_a_record_whose_folds_hold_no_confusion_reports_without_weighted_f1() -> None:
    record = _record("scores-only")
    assert record.pooled is not None
    folds = (FoldEntry(0, "fold1", Metrics.from_json({"ua": 1.0, "wa": 2.0, "f1": 3.0})),)
    unheld = record.pooled.unheld | {"confusion"}  # a pooled entry without its confusion
    record = replace(record, folds=folds, pooled=replace(record.pooled, unheld=unheld))
    (row,) = list(csv.DictReader(io.StringIO(report_table([record], fmt="csv"))))
    assert row["mean_ua"] == "70.50" and row["mean_wf1"] == row["pooled_wf1"] == ""
    assert report_table([record]).splitlines()[2].endswith("| 60.00 | - |")


LORA_LINE = (
    "Fine-tuned (ft): tiny-hubert.L1's encoder layer 2 with LoRA rank 4 (alpha 8) on its "
    "default modules (lr 0.0001, warm-up 10 % of steps)."
)


def test_a_fine_tuned_run_says_which_layers_trained_and_how(finetuned_run: Path) -> None:
    run = load_run(finetuned_run)
    md = report_table([run])
    assert md.rstrip("\n").endswith(LORA_LINE) and md.count("Fine-tuned") == 1
    rows = list(csv.DictReader(io.StringIO(report_table([run], fmt="csv"))))
    assert rows[0]["finetune"] == LORA_LINE.partition(": ")[2].rstrip(".")
    frozen = replace(run, config=RunConfig({**run.config, "finetune": None}))
    assert "Fine-tuned" not in report_table([frozen])
    assert "finetune" not in report_table([frozen], fmt="csv").splitlines()[0]
    whole = replace(run, config=RunConfig({**run.config, "finetune": ["tiny-hubert.L1:top=1"]}))
    assert "tiny-hubert.L1's encoder layer 2 whole (lr 1e-05," in report_table([whole, frozen])
