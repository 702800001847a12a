"""`ser predict` on the command line: table, --json, --csv, exit codes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from ser.cli import main


def test_json_csv_and_exit_code_one_when_a_file_fails(trained_run, tmp_path: Path) -> None:
    out_csv = tmp_path / "p.csv"
    args = ["predict", "--run", str(trained_run.run_dir), trained_run.wavs[0], "missing.wav"]
    args += ["--text", "hello", "--device", "cpu", "--json", "--csv", str(out_csv)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["failed"] == 1 and payload["classes"] == ["neu", "hap", "sad", "ang"]
    ok, bad = payload["predictions"]
    assert ok["label"] in payload["classes"] and sum(ok["probabilities"].values()) > 0.999
    assert "missing.wav does not exist" in bad["error"]
    assert "error: missing.wav: audio file missing.wav does not exist" in result.stderr
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["label"] for r in rows] == [ok["label"], ""]
    assert float(rows[0][ok["label"]]) == max(ok["probabilities"].values())


def test_table_and_success(trained_run) -> None:
    args = ["predict", "--run", str(trained_run.run_dir), trained_run.wavs[0], "--text", "hi"]
    result = CliRunner().invoke(
        main, [*args, "--device", "cpu", "--checkpoint", "final", "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "torch threads: 1 (--threads 1)\n1 checkpoint(s)" in result.stderr
    assert "final" in result.stdout and Path(trained_run.wavs[0]).name[:10] in result.stdout


def test_run_without_checkpoints_is_a_user_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["predict", "--run", str(tmp_path), "a.wav"])
    assert result.exit_code == 2 and "is not a run's folder (it holds no run.json)" in result.stderr
    assert result.stderr.startswith("error: ")  # the threads note waits for a started run


def test_headerless_csv_list_and_encoder_folders(trained_run, tiny_models, tmp_path: Path) -> None:
    """README's `path[,transcript]` lines are a list (no header needed); --encoder names
    the folders of the run's models (here where they are: accepted on their checksums)."""
    listing = tmp_path / "list.csv"
    listing.write_text(f"{trained_run.wavs[0]},hello there\n{trained_run.wavs[1]},hi\n")
    args = ["predict", "--run", str(trained_run.run_dir), str(listing), "--device", "cpu"]
    args += ["--encoder", str(tiny_models.hubert), "--encoder", str(tiny_models.bert), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert [p["transcript"] for p in payload["predictions"]] == ["hello there", "hi"]
    assert payload["dialog_context_lost"] is False and payload["notes"] == []
    assert f"tiny-bert: encoder from {tiny_models.bert}" in result.stderr


@pytest.mark.slow
def test_segments_add_start_and_end_columns_only_with_segment(trained_run, tmp_path) -> None:
    """With --segment each window is a row with its span (table, JSON, CSV); without it
    the outputs keep their columns."""
    wave, rate = soundfile.read(trained_run.wavs[0], dtype="float32")
    long = tmp_path / "long.wav"
    soundfile.write(long, np.concatenate([wave, np.zeros(rate // 2, np.float32), wave]), rate)
    base = ["predict", "--run", str(trained_run.run_dir), str(long), "--text", "hi"]
    base += ["--device", "cpu"]
    out_csv = tmp_path / "s.csv"
    args = [*base, "--segment", "fixed:1:0.5", "--json", "--csv", str(out_csv)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout.strip().splitlines()[-1])["predictions"]
    duration = (2 * len(wave) + rate // 2) / rate
    assert len(rows) > 2 and rows[0]["start"] == 0.0 and rows[-1]["end"] == duration
    assert [r["start"] for r in rows] == [i * 0.5 for i in range(len(rows))]
    written = list(csv.DictReader(out_csv.open()))
    assert list(written[0])[:4] == ["path", "start", "end", "label"]
    assert [r["label"] for r in written] == [r["label"] for r in rows]
    table = CliRunner().invoke(main, [*base, "--segment", "fixed:1"])
    assert table.exit_code == 0 and "start" in table.stdout and "0.00" in table.stdout
    plain = CliRunner().invoke(main, [*base, "--json", "--csv", str(out_csv)])
    assert plain.exit_code == 0, plain.output
    (row,) = json.loads(plain.stdout.strip().splitlines()[-1])["predictions"]
    assert "start" not in row and "end" not in row
    header = "path,label,neu,hap,sad,ang,transcript,transcript_source,error"
    assert out_csv.read_text().splitlines()[0] == header


def test_vtt_cues_follow_the_segments(trained_run, tmp_path) -> None:
    wave, rate = soundfile.read(trained_run.wavs[0], dtype="float32")
    long = tmp_path / "long.wav"
    soundfile.write(long, np.tile(wave, 3), rate)
    base = ["predict", "--run", str(trained_run.run_dir), str(long), "--text", "hi"]
    vtt = tmp_path / "out.vtt"
    args = [*base, "--device", "cpu", "--segment", "fixed:1", "--json", "--vtt", str(vtt)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout.strip().splitlines()[-1])["predictions"]
    lines = vtt.read_text().splitlines()
    assert lines[:3] == ["WEBVTT", "", "00:00:00.000 --> 00:00:01.000"]
    first = rows[0]
    assert lines[3] == f"{first['label']} {first['probabilities'][first['label']]:.2f}"
    assert sum("-->" in line for line in lines) == len(rows)  # one cue per segment
    refused = CliRunner().invoke(main, [*base, "--vtt", str(vtt)])
    assert refused.exit_code == 2 and "give --segment too" in refused.stderr


def test_plot_draws_the_segments_timeline(trained_run, tmp_path) -> None:
    """--plot draws each class's probability over the segments, one panel per file."""
    from PIL import Image

    wave, rate = soundfile.read(trained_run.wavs[0], dtype="float32")
    long = tmp_path / "long.wav"
    soundfile.write(long, np.tile(wave, 3), rate)
    base = ["predict", "--run", str(trained_run.run_dir), str(long), "--text", "hi"]
    plot = tmp_path / "plots" / "timeline.png"
    args = [*base, "--device", "cpu", "--segment", "fixed:1", "--plot", str(plot)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size == (1200, 260)  # one file: one panel
    refused = CliRunner().invoke(main, [*base, "--plot", str(plot)])
    assert refused.exit_code == 2 and "--plot draws on segments" in refused.stderr


def test_many_files_show_how_far_each_encoder_is(trained_run, monkeypatch) -> None:
    """Prediction over many files said nothing until its table."""
    from ser.runtime import progress

    monkeypatch.setattr(progress, "SHORT", 0.0)  # as long as a folder of thousands
    wavs = [str(w) for w in trained_run.wavs[:3]]
    args = ["predict", "--run", str(trained_run.run_dir), *wavs, "--text", "hi", "--json"]
    result = CliRunner().invoke(main, [*args, "--device", "cpu", "--batch-size", "1"])
    assert result.exit_code == 0, result.output
    json.loads(result.stdout.strip().splitlines()[-1])  # stdout: the JSON alone
    lines = [line for line in result.stderr.splitlines() if line.startswith("predict: ")]
    total = lines[-1].split()[1].split("/")[1]  # every input once an encoder
    assert int(total) % 3 == 0 and lines[-1].startswith(f"predict: {total}/{total} inputs")
    quiet = CliRunner().invoke(main, [*args, "--device", "cpu", "-q"])
    assert quiet.exit_code == 0 and "predict: " not in quiet.stderr
