"""Faults of `ser extract` a user meets: a model folder that is not there (said at once,
no hub call), a model whose weights file is cut short (one line naming it), a disk
estimate that counts what staging needs, and an utterance far longer than the rest of
its corpus (said at extraction)."""

from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path
from typing import Any

import huggingface_hub
import huggingface_hub.file_download
import numpy as np
import pytest
import soundfile
import transformers.utils.hub

import ser.extract.pipeline as pipeline
import ser.extract.progress as extract_progress
import ser.extract.run as run
from ser.cache import FeatureStore
from tests.refused import one_line, ser


@pytest.fixture
def no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Online as a user is (HF_HUB_OFFLINE unset), and a test failure on any hub call."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)

    def called(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"the hub was called: {args} {kwargs}")

    for module in (huggingface_hub, huggingface_hub.file_download, transformers.utils.hub):
        for name in ("hf_hub_download", "snapshot_download", "get_hf_file_metadata"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, called)


@pytest.mark.slow
@pytest.mark.parametrize("option", ["--hubert-model", "--mpnet-model", "--bert-model"])
def test_a_model_folder_that_is_not_there_is_said_at_once(
    synthetic_corpus: tuple[Path, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_hub: None,
    option: str,
) -> None:
    """`models/hubert-tuned`, its parent a folder here: a folder, not a hub id."""
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path)
    feature = {"--hubert-model": "hubert", "--mpnet-model": "mpnet", "--bert-model": "bert"}
    args = ("extract", synthetic_corpus[0], "--store", tmp_path / "f.zarr")
    args += ("--features", feature[option], option, "models/hubert-tuned", "--quiet")
    start = time.monotonic()
    line = one_line(ser(*args))
    assert time.monotonic() - start < 5  # no hub retries (25 s of them before)
    assert line.startswith("error: model folder models/hubert-tuned does not exist")
    assert "unreachable" not in line  # the hub is not blamed


def test_a_model_whose_weights_are_cut_short_is_one_line(
    synthetic_corpus: tuple[Path, Any], tiny_models: Any, tmp_path: Path, no_hub: None
) -> None:
    """62 lines of safetensors' traceback before."""
    model = tmp_path / "mpnet"
    shutil.copytree(tiny_models.mpnet, model)
    weights = next(model.rglob("model.safetensors"))
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    args = ("extract", synthetic_corpus[0], "--store", tmp_path / "f.zarr")
    line = one_line(ser(*args, "--features", "mpnet", "--mpnet-model", model, "--quiet"))
    assert line.startswith(f"error: {weights} is damaged (cut short? ")
    assert line.endswith("copy or download the model again, then run the same command")


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.mark.slow
def test_the_disk_estimate_counts_the_staged_shards(
    synthetic_corpus: tuple[Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass's shards are staged, then each set is laid out beside them: the estimate
    counted the laid-out sets alone, half of what the disk held at its fullest (it failed
    at 5 MiB free for a 3.2 MiB estimate)."""
    store = tmp_path / "f.zarr"
    shown: list[int] = []
    before: list[int] = []
    full: list[int] = []
    print_estimate = run.print_estimate

    def estimate(console: Any, sizes: Any, path: Path, *peak: int) -> None:
        shown.append(peak[0] if peak else sum(size for _, size in sizes))
        before.append(_bytes(tmp_path))  # the store's manifest, its audio prints
        print_estimate(console, sizes, path, *peak)

    clear = FeatureStore._clear_staging

    def cleared(self: FeatureStore, name: str) -> None:
        full.append(_bytes(tmp_path))  # a set laid out, its shards (f.zarr.staging) still there
        clear(self, name)

    monkeypatch.setattr(run, "print_estimate", estimate)
    monkeypatch.setattr(FeatureStore, "_clear_staging", cleared)
    done = ser("extract", synthetic_corpus[0], "--store", store, "--features", "logmel")
    assert done.exit_code == 0, done.output
    assert shown and full
    assert shown[0] >= max(full) - before[0], (shown, max(full) - before[0])


@pytest.mark.slow
def test_an_utterance_far_longer_than_the_others_is_said(corpus_copy: Path, tmp_path: Path) -> None:
    """61 s among the synthetic corpus's 1-4 s ones: kept, and said at extraction."""
    wav = sorted(corpus_copy.rglob("sentences/wav/*/*.wav"))[0]
    audio, rate = soundfile.read(wav)
    soundfile.write(wav, np.resize(audio, 61 * rate), rate)
    args = ("extract", corpus_copy, "--store", tmp_path / "f.zarr", "--features", "logmel")
    done = ser(*args)
    assert done.exit_code == 0, done.output
    warned = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1, done.stderr
    assert warned[0].startswith(f"warning: {wav.stem} is 61.0 s long, ")
    assert "x the corpus's median of " in warned[0] and "it is kept" in warned[0]
    assert "stands still" not in done.stderr  # a minute among 7:30 of audio: no matter


@pytest.mark.slow
def test_a_recording_the_progress_stands_still_on_is_said_before(
    corpus_copy: Path, tmp_path: Path
) -> None:
    """A recording of 6 minutes: said before its pass, as the one the progress (by
    utterances) stands still on. It said "5/6 utterances ... eta 0:26", then nothing for
    4.5 minutes, on a recording of 40."""
    wav = sorted(corpus_copy.rglob("sentences/wav/*/*.wav"))[0]
    audio, rate = soundfile.read(wav)
    soundfile.write(wav, np.resize(audio, 360 * rate), rate)
    done = ser("extract", corpus_copy, "--store", tmp_path / "f.zarr", "--features", "logmel")
    assert done.exit_code == 0, done.output
    lines = done.stderr.splitlines()
    still = [n for n, line in enumerate(lines) if "stands still" in line]
    assert len(still) == 1, done.stderr
    assert lines[still[0]].startswith(f"logmel: {wav.stem} is 6:00 of audio, ")
    progress = [n for n, line in enumerate(lines) if line.startswith("logmel: ") and "/" in line]
    assert progress and still[0] < progress[0]


def test_ser_extract_says_a_long_recording_under_way_while_it_is_extracted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two utterances of a second and one of 70 s (90 % of the pass): said before the
    pass, then under way while its batch runs (each batch held 0.2 s here), in a log as
    on a terminal; nothing with -q."""
    lines = ["utt_id,wav,label,speaker"]
    for i, seconds in enumerate([1, 1, 70]):
        soundfile.write(tmp_path / f"u{i}.wav", np.zeros(16000 * seconds, np.float32), 16000)
        lines.append(f"u{i},u{i}.wav,neu,s{i}")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    finish = pipeline.finish

    def slow(*args: Any) -> Any:  # a batch's results waited on
        time.sleep(0.2)
        return finish(*args)

    monkeypatch.setattr(pipeline, "finish", slow)
    monkeypatch.setattr(extract_progress, "TICK", 0.01)
    monkeypatch.setattr(
        run, "Underway", functools.partial(extract_progress.Underway, after=0.0, interval=0.0)
    )
    args = ["extract", tmp_path / "m.csv", "--corpus", "manifest", "--features", "logmel"]
    args += ["--processes", "1", "--batch-seconds", "8"]
    said = ser(*args, "--store", tmp_path / "f.zarr")
    assert said.exit_code == 0, said.output
    before = [n for n, line in enumerate(said.stderr.splitlines()) if "stands still" in line]
    under = [n for n, line in enumerate(said.stderr.splitlines()) if " under way " in line]
    assert before and under and before[0] < under[0], said.stderr
    assert said.stderr.splitlines()[under[0]].startswith("logmel: u2 (1:10 of audio) under way ")
    quiet = ser(*args, "--store", tmp_path / "g.zarr", "-q")
    assert quiet.exit_code == 0 and " under way " not in quiet.stderr


@pytest.mark.slow
def test_a_stopped_extraction_keeps_the_utterances_it_finished(
    synthetic_corpus: tuple[Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in a shard's fourth batch (a recording of 40 minutes after five short ones):
    the batches finished before are kept as the shard's part, said by `ser store info`,
    and the same command extracts only the rest, into the bytes an uninterrupted run
    writes. Before, the shard was lost whole: 0 rows, "0 shards staged"."""
    root = synthetic_corpus[0]
    args = ("extract", root, "--features", "logmel", "--processes", "1", "--quiet")
    args += ("--shard-size", "1000", "--batch-seconds", "8")
    whole = tmp_path / "whole.zarr"
    assert ser(*args, "--store", whole).exit_code == 0
    launch, launched = pipeline.launch, []

    def stopped(*a: Any, **k: Any) -> Any:
        launched.append(1)
        if len(launched) == 4:
            raise KeyboardInterrupt
        return launch(*a, **k)

    monkeypatch.setattr(pipeline, "launch", stopped)
    store = tmp_path / "f.zarr"
    assert ser(*args, "--store", store).exit_code == 130
    kept = FeatureStore.open(store).info("logmel80")
    assert not kept.complete and kept.rows > 0 and kept.staged_shards == 0
    info = ser("store", "info", store)
    assert f"{kept.rows:,}" in info.output or str(kept.rows) in info.output
    launched.clear()
    monkeypatch.setattr(
        pipeline, "launch", lambda *a, **k: (launched.append(1), launch(*a, **k))[1]
    )
    assert ser(*args, "--store", store).exit_code == 0
    batches = len(launched)
    launched.clear()
    assert ser(*args, "--store", tmp_path / "again.zarr").exit_code == 0
    assert batches == len(launched) - 3  # the three batches kept, not extracted again
    a, b = (FeatureStore.open(p).read("logmel80") for p in (whole, store))
    assert np.array_equal(a.offsets, b.offsets) and a.data.tobytes() == b.data.tobytes()
