"""Run records (ser.runs.record): one typed object, read and written in one place; an
older record reads, reports and resumes as it did.

`records/format1.json` is a record as ser wrote it before the record had a type (no
`format`; fold sides as `test_sessions` / `val_sessions`; `processes`; `threads` with a
key since gone; no weighted F1, no `n` or `std_over` in its summary).
"""

from __future__ import annotations

import dataclasses
import doctest
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import ser.runs.fold_entry
from ser.errors import ConfigError, FingerprintMismatch, ReportError
from ser.heads.metrics import Metrics
from ser.report.runs import load_run, pooled_over, protocol_label, report_table
from ser.runs.config import RunConfig
from ser.runs.curves import Curves
from ser.runs.data import AsrSet
from ser.runs.fold_entry import FoldEntry, Stage
from ser.runs.migrate import current
from ser.runs.provenance import ExecutionRecord, Final, Processes, Threads
from ser.runs.record import FORMAT, Layered, RunRecord, json_summary, read, write
from ser.sweep.claims import seed_scores
from ser.train.record import check_resumable, read_record

FORMAT1 = Path(__file__).parent / "records" / "format1.json"
RENAMED = {"test_sessions": "test_groups", "val_sessions": "val_groups"}
# What the ser before the typed record printed for records/format1.json.
FORMAT1_CSV = (
    "run,features,fusion,protocol,classes,settings,mean_ua,mean_ua_std,mean_wa,mean_wa_std,"
    "mean_f1,mean_f1_std,n,std_over,seeds,pooled_ua,pooled_wa,pooled_f1,mean_wf1,"
    "mean_wf1_std,pooled_wf1\n"
    'mit_loso,hubert-base-ls960.L12+mpnet,mit,loso,4,"queries=10, epochs=40, batch_size=16",'
    "76.79,7.45,77.27,6.43,76.21,6.61,2,seeds,2,76.79,77.27,76.38,77.30,5.93,77.46\n"
)
FORMAT1_MD_ROW = (
    "| mit_loso | hubert-base-ls960.L12+mpnet | mit | loso | 4 | queries=10, epochs=40, "
    "batch_size=16 | 76.79 ± 7.45 | 77.27 ± 6.43 | 76.21 ± 6.61 | 77.30 ± 5.93 | 2 seeds "
    "| 76.79 | 77.27 | 76.38 | 77.46 |"
)
FORMAT1_SEED_UAS = (82.05357142857143, 71.51785714285714)
FORMAT1_JSON_SUMMARY = {
    "wa": 77.27272727272727, "ua": 76.78571428571428, "f1": 76.20972777222778,
    "wa_std": 6.428243465332252, "ua_std": 7.449875016072559,
    "folds": [
        {"seed": 0, "fold": "session1", "wa": 72.72727272727273, "ua": 73.92857142857143,
         "f1": 71.42857142857143, "best_epoch": 2},
        {"seed": 0, "fold": "session2", "wa": 90.9090909090909, "ua": 90.17857142857143,
         "f1": 90.33882783882784, "best_epoch": 2},
        {"seed": 1, "fold": "session1", "wa": 77.27272727272727, "ua": 76.01190476190477,
         "f1": 76.35073260073261, "best_epoch": 3},
        {"seed": 1, "fold": "session2", "wa": 68.18181818181819, "ua": 67.02380952380952,
         "f1": 66.7207792207792, "best_epoch": 3},
    ],
    "protocol": "loso", "seconds": 7.25,
}  # fmt: skip


def _old() -> dict[str, Any]:
    return json.loads(FORMAT1.read_text(encoding="utf-8"))


def _every_field() -> RunRecord:
    """A record with a value in every field (and a key this version does not know)."""
    run = read(FORMAT1)
    curves = Curves.from_json({"epoch": [1, 2], "train_loss": [1.0, 0.5]})
    stage = Stage(2, 0.5, curves, {"note": "x"})
    first = replace(
        run.folds[0],
        stages={"audio": stage},
        layer_weights={"enc.L0-1": (0.25, 0.75)},
        left_out=("test2",),
        shared_speakers=("Unknown",),
        class_weights={c: 1.0 for c in run.classes},
        extra={"newer": [1]},
    )
    return replace(
        run,
        folds=[first, *run.folds[1:]],
        layers={"enc.L0-1": Layered(sets=("enc.L0", "enc.L1"), layers=(0, 1))},
        asr={"mpnet@asr": AsrSet(transcripts="asr", asr_model="whisper", wer=0.25)},
        execution=ExecutionRecord(processes=1, threads=2, stacked=4, source="default"),
        final=Final(epochs=3, seed=0, utterances=88),
        extra={"from_a_newer_ser": {"x": 1}},
    )


def test_a_written_record_reads_back_equal(tmp_path: Path) -> None:
    record = _every_field()
    path = write(tmp_path / "run" / "run.json", record)
    assert read(path) == record
    on_disk = json.loads(path.read_text(encoding="utf-8"))
    assert on_disk["format"] == FORMAT == 2 and list(on_disk)[1:4] == ["name", "config", "protocol"]
    assert RunRecord.from_json(on_disk, path).to_json() == on_disk
    assert not list(path.parent.glob(".run.json.*"))  # no temp file left


def test_a_new_record_writes_what_the_trainer_always_wrote() -> None:
    """Optional keys only where they hold something; summary and pooled null until a
    fold has trained."""
    fresh = RunRecord("r", {"lr": 0.1}, "loso", ["neu", "ang"], complete=False)
    assert fresh.to_json() == {
        "format": 2, "name": "r", "config": {"lr": 0.1}, "protocol": "loso",
        "classes": ["neu", "ang"], "complete": False, "summary": None, "folds": [],
        "pooled": None, "seconds": 0.0, "timings": {}, "fingerprints": {},
    }  # fmt: skip
    entry = FoldEntry(0, "session5", Metrics.from_json({"ua": 50.0}), 3, 1.5, test_groups=(5,),
                      val_groups=())  # fmt: skip
    assert entry.to_json() == {
        "seed": 0, "fold": "session5", "metrics": {"ua": 50.0}, "best_epoch": 3,
        "seconds": 1.5, "stacked": 1, "curves": {}, "test_groups": [5], "val_groups": [],
    }  # fmt: skip


def test_a_fold_entry_keeps_its_attribute_scores_after_its_metrics() -> None:
    scores = {"arousal": {"ccc": 0.5, "pearson": 0.6, "mae": 0.7, "n": 10}}
    entry = FoldEntry.from_json({"seed": 0, "fold": "f1", "metrics": {}, "attributes": scores})
    assert entry.attributes is not None and entry.attributes.to_json() == scores
    assert entry.metrics is None and entry.to_json()["metrics"] == {}
    assert list(entry.to_json())[:4] == ["seed", "fold", "metrics", "attributes"]
    assert FoldEntry.from_json(entry.to_json()) == entry
    assert "attributes" not in FoldEntry(0, "f1", Metrics.from_json({"ua": 1.0})).to_json()
    with pytest.raises(ReportError, match="'attributes' must be a JSON object"):
        FoldEntry.from_json({"seed": 0, "fold": "f1", "attributes": [1]})


def test_a_format_1_record_reads_as_it_is() -> None:
    old = _old()
    assert "format" not in old and all("test_sessions" in f for f in old["folds"])
    run = read(FORMAT1)
    assert [f.test_groups for f in run.folds] == [(1,), (2,), (1,), (2,)]
    assert [f.val_groups for f in run.folds] == [(2,), (3,), (2,), (3,)]
    assert {f.group for f in run.folds} == {"session"}
    assert run.processes == Processes(count=2, source="--processes 2") and run.execution is None
    assert run.threads == Threads(
        count=1, source="1 of 2 (--threads 1)", extra={"follows_load": False}
    )
    assert run.summary is not None and "wf1" not in run.summary and "n" not in run.summary
    assert run.extra == {} and all(f.extra == {} for f in run.folds)
    # Written back: the current format, each side's sessions as its groups, the rest as read.
    again = run.to_json()
    assert again["format"] == FORMAT
    assert {k: v for k, v in again.items() if k not in ("format", "folds")} == {
        k: v for k, v in old.items() if k != "folds"
    }
    for before, after in zip(old["folds"], again["folds"], strict=True):
        assert after == {**{RENAMED.get(k, k): v for k, v in before.items()}, "group": "session"}


def test_a_format_1_record_reports_as_before() -> None:
    """What the ser before the typed record printed for this file, to the character."""
    run = load_run(FORMAT1)
    assert report_table([run], fmt="csv") == FORMAT1_CSV
    assert report_table([run], fmt="md").splitlines()[2] == FORMAT1_MD_ROW
    assert pooled_over(run) == "pooled over 2 folds x 2 seeds (an utterance once per seed)"
    assert protocol_label(run) == "loso"
    assert seed_scores(run).values == pytest.approx(FORMAT1_SEED_UAS)
    assert json_summary(run) == FORMAT1_JSON_SUMMARY


def test_an_entry_with_sessions_and_groups_keeps_both() -> None:
    """Between the two, corpus protocols wrote both: the groups are the fold's, the
    sessions stay as written."""
    both = {"seed": 0, "fold": "speaker1", "metrics": {}, "test_sessions": [0],
            "val_sessions": [], "test_groups": ["Ses01F"], "val_groups": ["Ses02M"]}  # fmt: skip
    (migrated,) = current({"folds": [both]}, "run.json")["folds"]
    entry = FoldEntry.from_json(migrated)
    assert (entry.test_groups, entry.val_groups, entry.group) == (("Ses01F",), ("Ses02M",), None)
    assert entry.extra == {"test_sessions": [0], "val_sessions": []}
    assert FoldEntry.from_json(entry.to_json()) == entry


def test_unknown_keys_survive_a_round_trip(tmp_path: Path) -> None:
    old = _old()
    old["from_a_newer_ser"] = {"x": 1}
    old["folds"][0]["newer_entry_key"] = [1, 2]
    path = write(tmp_path / "run.json", RunRecord.from_json(old, FORMAT1))
    again = json.loads(path.read_text(encoding="utf-8"))
    assert again["from_a_newer_ser"] == {"x": 1} and again["folds"][0]["newer_entry_key"] == [1, 2]
    assert read(path).extra == {"from_a_newer_ser": {"x": 1}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", r"run\.json: not a readable JSON run record"),
        ("[1, 2]", r"run\.json: a run record must be a JSON object"),
        ('{"name": "x", "config": {}}', r"run\.json: run record lacks protocol, classes$"),
        ('{"name": "x", "config": [], "protocol": "p", "classes": []}',
         r"run\.json: 'config' must be a JSON object"),
        ('{"name": "x", "config": {}, "protocol": "p", "classes": [], "folds": {}}',
         r"run\.json: 'folds' must be a JSON list"),
        ('{"name": "x", "config": {}, "protocol": "p", "classes": [], "folds": [{"seed": 0}]}',
         r"run\.json, fold entry 1: the fold entry lacks fold"),
        ('{"format": 3, "name": "x", "config": {}, "protocol": "p", "classes": []}',
         r"run\.json: run record format 3, newer than this ser reads \(2\)"),
    ],
)  # fmt: skip
def test_what_is_not_a_run_record_is_refused_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad" / "run.json"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ReportError, match=message):
        read(path)
    with pytest.raises(ReportError, match=message):
        load_run(path.parent)
    resume = message.rstrip("$") + ".*; use --overwrite or another --name$"
    with pytest.raises(ConfigError, match=resume):
        read_record(path)


def test_resume_refuses_another_config_or_fingerprint_with_the_same_messages() -> None:
    old = read(FORMAT1)
    cfg, fingerprints = dict(old.config), dict(old.fingerprints)
    check_resumable(FORMAT1, old, {**cfg, "store": "/elsewhere", "device": "cuda"}, fingerprints)
    with pytest.raises(ConfigError, match=r"another config \(lr: 2e-05 -> 0\.001\); choose"):
        check_resumable(FORMAT1, old, {**cfg, "lr": 1e-3}, fingerprints)
    changed = {**fingerprints, "mpnet": "f" * 64}
    with pytest.raises(FingerprintMismatch) as refused:
        check_resumable(FORMAT1, old, cfg, changed)
    assert str(refused.value) == (
        f"{FORMAT1} was trained on other features than the store now holds (mpnet: "
        "a0a0a0a0a0a0... -> ffffffffffff...); choose another --name, or --overwrite to "
        "discard it"
    )


def test_docstring_examples_run() -> None:
    result = doctest.testmod(ser.runs.fold_entry)
    assert result.attempted > 0 and result.failed == 0


def test_a_record_is_frozen_and_grows_by_replace() -> None:
    """The trainer makes each next record with `dataclasses.replace`; the one read stays."""
    run = read(FORMAT1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.complete = True  # type: ignore[misc]
    with pytest.raises(AttributeError):
        run.folds.append(run.folds[0])  # type: ignore[attr-defined]
    grown = replace(run, folds=(*run.folds, replace(run.folds[0], seed=2)), complete=False)
    assert len(grown.folds) == len(run.folds) + 1 and grown.complete is False
    assert run == read(FORMAT1)  # the one it grew from unchanged
    assert isinstance(run.classes, tuple) and isinstance(run.folds, tuple)


def test_lists_given_are_kept_as_the_tuples_a_read_record_holds(tmp_path: Path) -> None:
    made = RunRecord("r", RunConfig(), "loso", ["neu", "ang"], folds=[FoldEntry(0, "f1")])
    assert made.classes == ("neu", "ang") and made.folds == (FoldEntry(0, "f1"),)
    assert read(write(tmp_path / "run.json", made)) == made
