"""`ser extract` stays linear in the number of utterances (`tests/growth.py`): log-mel,
and a tiny HuBERT's frames of one layer and their means, over a manifest corpus of n
short wavs."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile

from ser.synth.tiny import save_tiny_hubert
from tests.growth import assert_linear
from tests.refused import ser

# Utterances, and 4 times as many: enough that their work, not the command's, makes most
# of each run's time (an encoder's forward costs more an utterance: fewer of them).
N, N_SPEECH = 200, 150


@pytest.fixture(scope="module")
def hubert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_hubert(tmp_path_factory.mktemp("hubert") / "tiny-hubert", seed=0)


def corpus(folder: Path, n: int) -> Path:
    """A manifest of n utterances, each a wav of its own (50-100 ms of noise)."""
    folder.mkdir()
    rng = np.random.default_rng(n)
    with open(folder / "m.csv", "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["utt_id", "wav", "label", "speaker"])
        for i in range(n):
            samples = 0.1 * rng.standard_normal(800 + 80 * (i % 11))
            soundfile.write(folder / f"u{i:06d}.wav", samples, 16000, subtype="PCM_16")
            rows.writerow([f"u{i:06d}", f"u{i:06d}.wav", "neu", f"s{i % 10}"])
    return folder / "m.csv"


def extracting(folder: Path, *options: str) -> Callable[[int], Callable[[], object]]:
    """prepare(n): `ser extract OPTIONS` of a corpus of n utterances (made once per n)
    into a new store, on this process's one thread (`--processes 1`: no process to wait
    for, all the work in `time.process_time`; the write threads are this process's)."""
    manifests: dict[int, Path] = {}
    stores = itertools.count()

    def prepare(n: int) -> Callable[[], object]:
        if n not in manifests:
            manifests[n] = corpus(folder / f"n{n}", n)
        store = folder / f"f{next(stores)}.zarr"
        args: list[str | Path] = ["extract", manifests[n], "--corpus", "manifest", "--store", store]
        args += ["--device", "cpu", "--processes", "1", "--threads", "1", "-q", *options]

        def extract() -> None:
            done = ser(*args)
            assert done.exit_code == 0, done.output

        return extract

    return prepare


def test_logmel_extraction_cpu_time_grows_linearly(tmp_path: Path) -> None:
    assert_linear(extracting(tmp_path, "--features", "logmel"), N, "ser extract logmel")


def test_a_speech_encoder_extraction_cpu_time_grows_linearly(tmp_path: Path, hubert: Path) -> None:
    options = ["--features", "hubert", "--hubert-model", str(hubert), "--hubert-layers", "2"]
    options += ["--pool", "mean", "--precision", "fp32"]
    assert_linear(extracting(tmp_path, *options), N_SPEECH, "ser extract hubert")
