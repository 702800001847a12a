"""`ser corpus summary` and `ser demo-corpus` through click: the JSON summary, the
table, one clear message and exit code 2 for a bad root, and the demo corpus writer."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ser.cli import main
from ser.corpus.kinds.iemocap import read as read_corpus
from ser.corpus.registry import guess
from ser.runtime import progress


def _run(*args: str | Path) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def test_bad_root_is_one_message_and_exit_code_2(tmp_path: Path) -> None:
    result = _run("corpus", "summary", tmp_path)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {tmp_path.resolve()} is not an IEMOCAP root: no Session1..Session5 folders "
        "with dialog/EmoEvaluation\n"
    )
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_missing_root_exit_code_2(tmp_path: Path) -> None:
    result = _run("corpus", "summary", tmp_path / "absent", "--json")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_summary_json(synthetic_corpus: tuple[Path, Any]) -> None:
    root, truth = synthetic_corpus
    result = _run("corpus", "summary", root, "--classes", "4", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary) == {"utterances", "per_session", "speakers", "hours", "problems"}
    four = [u for u in truth.utterances if u.label in {"neu", "hap", "exc", "sad", "ang"}]
    assert summary["utterances"] == len(four)
    assert summary["speakers"] == 10
    assert isinstance(summary["hours"], float) and summary["hours"] > 0
    assert summary["problems"] == []
    assert sorted(summary["per_session"]) == ["1", "2", "3", "4", "5"]
    assert sum(sum(c.values()) for c in summary["per_session"].values()) == len(four)
    hap_1 = sum(1 for u in four if u.group("session") == 1 and u.label in ("hap", "exc"))
    assert summary["per_session"]["1"]["hap"] == hap_1


def test_summary_says_how_far_its_read_is_on_stderr_and_keeps_its_json_whole(
    crema_d_corpus: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "SHORT", 0.0)  # a read however short is said
    result = _run("corpus", "summary", crema_d_corpus.root, "--json")
    assert result.exit_code == 0, result.output
    n = json.loads(result.stdout)["utterances"]
    assert re.search(rf"^audio headers: {n}/{n} utterances  [0-9.]+ utt/s", result.stderr, re.M)


def test_summary_json_lists_problems(corpus_copy: Path) -> None:
    wav = next(corpus_copy.glob("Session2/sentences/wav/*/*.wav"))
    wav.unlink()
    result = _run("corpus", "summary", corpus_copy, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["problems"] == [
        {"utt_id": wav.stem, "problem": f"wav missing: {wav.resolve()}"}
    ]


def test_summary_table(synthetic_corpus: tuple[Path, Any]) -> None:
    root, truth = synthetic_corpus
    result = _run("corpus", "summary", root, "--classes", "4")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "session" in line)
    assert header.split() == ["session", "neu", "hap", "sad", "ang", "total"]
    assert "10 speakers" in result.stdout and "0 problems" in result.stdout
    all_row = next(line for line in result.stdout.splitlines() if line.split()[:1] == ["all"])
    four = [u for u in truth.utterances if u.label in {"neu", "hap", "exc", "sad", "ang"}]
    assert all_row.split()[-1] == str(len(four))


def test_bad_class_set_is_a_usage_error(synthetic_corpus: tuple[Path, Any]) -> None:
    result = _run("corpus", "summary", synthetic_corpus[0], "--classes", "3")
    assert result.exit_code == 2
    assert "Invalid value for '--classes'" in result.output


@pytest.mark.slow
def test_demo_corpus_writes_a_readable_corpus(tmp_path: Path) -> None:
    out = tmp_path / "IEMOCAP_full_release"
    result = _run("demo-corpus", out, "--dialogs-per-session", "1", "--seed", "3")
    assert result.exit_code == 0, result.output
    reading = read_corpus(out)
    assert reading.problems == ()
    assert f"wrote {len(reading.utterances)} utterances" in result.stdout
    assert "in 5 dialogs of 10 speakers" in result.stdout


def test_demo_corpus_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = _run("demo-corpus", tmp_path)
    assert result.exit_code == 2
    assert "is not empty" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_demo_corpus_from_metadata(tmp_path: Path) -> None:
    csv_path = tmp_path / "meta.csv"
    columns = ["utt_id", "dialog", "session", "speaker_gender", "kind", "order", "start", "end"]
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerows(
            [
                [*columns, "label"],
                ["Ses02M_impro01_F000", "Ses02M_impro01", 2, "F", "impro", 0, 1.5, 3.25, "ang"],
                ["Ses02M_impro01_M000", "Ses02M_impro01", 2, "M", "impro", 1, 3.0, 4.0, "oth"],
            ]
        )
    out = tmp_path / "corpus"
    result = _run("demo-corpus", out, "--from-metadata", csv_path)
    assert result.exit_code == 0, result.output
    utts = read_corpus(out).utterances
    assert [(u.utt_id, u.label, u.start, u.end) for u in utts] == [
        ("Ses02M_impro01_F000", "ang", 1.5, 3.25),
        ("Ses02M_impro01_M000", "oth", 3.0, 4.0),
    ]
    clash = _run(
        "demo-corpus", tmp_path / "x", "--from-metadata", csv_path, "--dialogs-per-session", "2"
    )
    assert clash.exit_code == 2
    assert "--dialogs-per-session does not apply with --from-metadata" in clash.stderr


@pytest.mark.slow
def test_demo_corpus_in_every_other_layout_reads_as_its_kind(tmp_path: Path) -> None:
    for layout in ("crema-d", "ravdess", "msp-podcast", "meld"):
        out = tmp_path / layout
        result = _run("demo-corpus", out, "--layout", layout, "--seed", "1")
        assert result.exit_code == 0, result.output
        assert guess(out).name == layout
        summary = _run("corpus", "summary", out, "--json")
        assert summary.exit_code == 0, summary.output
        written = int(result.stdout.split()[1])
        assert 0 < json.loads(summary.stdout)["utterances"] <= written  # the quirks: problems
        assert f"in the {layout} layout" in result.stdout
    clash = _run("demo-corpus", tmp_path / "x", "--layout", "ravdess", "--dialogs-per-session", "2")
    assert clash.exit_code == 2
    assert "--dialogs-per-session is IEMOCAP's: not for --layout ravdess" in clash.stderr
