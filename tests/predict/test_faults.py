"""Recordings that go wrong with --segment: a damaged or cut short tail is predicted up to
where it decodes, then one error row for the rest; a recording of two hours is streamed
segment by segment, within a memory limit far below its decoded size."""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ser.cli import main
from ser.predict.run import PredictConfig, predict
from tests.predict.conftest import RATE, noise_wav


def _damaged(tmp_path: Path) -> Path:
    """6 s of FLAC whose second half is garbage."""
    whole = noise_wav(tmp_path / "clean.flac", 6.0).read_bytes()
    half = len(whole) // 2
    damaged = tmp_path / "damaged.flac"
    damaged.write_bytes(whole[:half] + os.urandom(len(whole) - half))
    return damaged


def test_a_damaged_tail_is_predicted_up_to_where_it_decodes(text_run: Path, tmp_path) -> None:
    damaged, good = _damaged(tmp_path), noise_wav(tmp_path / "good.wav", 2.0)
    config = PredictConfig(
        str(text_run), (str(damaged), str(good)), text="hi", device="cpu", segment="fixed:1"
    )
    result = predict(config)
    rows = [p for p in result.predictions if p.path == str(damaged)]
    *predicted, last = rows
    assert predicted and all(p.label is not None for p in predicted)
    assert [p.start for p in predicted] == [float(i) for i in range(len(predicted))]
    assert last.start == len(predicted) and last.end == pytest.approx(6.0)
    assert str(last.error).startswith(f"audio stops decoding at {last.start:.2f} s, the rest")
    assert str(damaged) in str(last.error)  # the decoder's reason names the file
    assert result.failed == 1 and [p.label is not None for p in result.predictions[-2:]] == [
        True, True,
    ]  # fmt: skip
    cli = CliRunner().invoke(
        main,
        ["predict", "--run", str(text_run), str(damaged), str(good), "--text", "hi",
         "--segment", "fixed:1", "--device", "cpu", "--json"],
    )  # fmt: skip
    assert cli.exit_code == 1
    said = " ".join(cli.stderr.split())  # rich wraps lines at the terminal's width
    assert f"error: {damaged}: audio stops decoding at" in said


def test_a_wav_cut_short_is_predicted_up_to_its_data(text_run: Path, tmp_path: Path) -> None:
    whole = noise_wav(tmp_path / "whole.wav", 6.0).read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[: 44 + 2 * RATE * 3])  # 3 of its 6 s
    config = PredictConfig(str(text_run), (str(cut),), text="hi", device="cpu", segment="fixed:1")
    result = predict(config)
    *predicted, last = result.predictions
    assert [(p.start, p.end) for p in predicted] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    assert all(p.label is not None for p in predicted) and result.failed == 1
    assert (last.start, last.end) == (3.0, 3.0) and "is cut short" in str(last.error)
    assert str(last.error).endswith("predicted up to 3.00 s, the rest is missing")
    without = predict(PredictConfig(str(text_run), (str(cut),), text="hi", device="cpu"))
    assert "is cut short" in str(without.predictions[0].error)  # whole: fails as before


def _silent_wav(path: Path, seconds: int) -> Path:
    """A 16-bit mono WAV of `seconds` of silence, written as a sparse file: instant."""
    size = seconds * RATE * 2
    with path.open("wb") as out:
        out.write(b"RIFF" + struct.pack("<I", 36 + size) + b"WAVEfmt ")
        out.write(struct.pack("<IHHIIHH", 16, 1, 1, RATE, 2 * RATE, 2, 16))
        out.write(b"data" + struct.pack("<I", size))
        out.truncate(44 + size)
    return path


CHILD = """
import json, resource, sys
from ser.predict.run import PredictConfig, predict
run, short, long, spare = sys.argv[1:5]
config = PredictConfig(run, (short,), text="hi", device="cpu", segment="fixed:60")
predict(config)  # every module and model loaded before the limit
with open("/proc/self/statm") as f:
    mapped = int(f.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (mapped + int(spare), resource.RLIM_INFINITY))
result = predict(PredictConfig(run, (long, short), text="hi", device="cpu", segment="fixed:60"))
print(json.dumps([[p.path, p.start, p.label, p.error] for p in result.predictions]))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads /proc (Linux)")
def test_two_hours_stream_within_a_memory_limit(text_run: Path, tmp_path: Path) -> None:
    """Two hours of 16 kHz audio are 460 MB as float32: predicted with 200 MB of address
    space to spare, they must be decoded a group of segments at a time."""
    long = _silent_wav(tmp_path / "two_hours.wav", 2 * 3600)
    short = noise_wav(tmp_path / "short.wav", 2.0)
    spare = 200 * 2**20
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", CHILD, str(text_run), str(short), str(long), str(spare)]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(rows) == 121 and all(label is not None for _, _, label, _ in rows)
    assert rows[-2][1] == 7140.0 and rows[-1][0] == str(short)
    assert resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY  # ours untouched
