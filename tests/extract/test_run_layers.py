"""A whole extraction of the encoder kinds' layer and pooled sets (Whisper's encoder, a
text encoder, HuBERT pooled only): the disk estimate printed before anything runs holds
for every set, the pooled rows are the means of the stored ones, a re-run does nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from ser.cache import FeatureStore
from ser.extract.run import ExtractConfig, extract_features
from ser.synth.corpus import SynthConfig, write_corpus
from ser.synth.tiny import save_tiny_whisper

SPEECH = [f"tiny-whisper-run.L{n}{view}" for n in (0, 1) for view in ("", ".mean", ".meanstd")]
TEXT = ["tiny-bert.L1", "tiny-bert.L1.mean", "tiny-bert", "tiny-bert.mean"]
HUBERT = ["tiny-hubert.L0.mean", "tiny-hubert.L1.mean", "tiny-hubert.L2.mean"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small") / "IEMOCAP_full_release"
    write_corpus(root, SynthConfig(dialogs_per_session=1, utterances_per_dialog=(3, 4), seed=3))
    return root


@pytest.mark.slow
def test_layer_and_pooled_sets_are_estimated_and_written(
    corpus: Path, tiny_models: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whisper = save_tiny_whisper(tmp_path / "tiny-whisper-run")
    estimates: dict[str, int] = {}
    monkeypatch.setattr(
        "ser.extract.run.print_estimate",
        lambda console, sizes, store, peak: estimates.update(sizes),
    )
    config = ExtractConfig(
        features=("speech", "text", "hubert"),
        options={
            "speech": {"model": str(whisper), "layers": "all", "pool": "mean,meanstd"},
            "text": {"model": str(tiny_models.bert), "layers": "1-2", "pool": "mean"},
            "hubert": {"model": str(tiny_models.hubert), "layers": "all", "pool": "mean",
                       "pooled_only": True},
        },
        device="cpu",
        shard_size=8,
    )  # fmt: skip
    quiet = Console(quiet=True)
    report = extract_features(corpus, tmp_path / "f.zarr", config, console=quiet)
    assert report.extracted == (*SPEECH, *TEXT, *HUBERT) and report.exit_code == 0
    assert list(estimates) == list(report.extracted)  # printed for every set, before the run

    store = FeatureStore.open(tmp_path / "f.zarr")
    n = len(store.manifest)
    for name in report.extracted:
        info, data = store.info(name), store.read(name)
        stored = data.data.nbytes + 8 * (n + 1)  # the rows, and the offsets
        if info.level == "utterance":
            assert info.rows == n and estimates[name] == stored, name
        else:  # whisper: n_samples // 320 frames; bert: the tokens counted
            assert abs(estimates[name] - stored) <= n * info.dim * 2, name
    assert store.info("tiny-whisper-run.L1.meanstd").dim == 64
    assert store.info("tiny-hubert.L2.mean").attrs["pool"] == "mean"
    assert "tiny-hubert.L2" not in store.feature_sets()

    frames, means = store.read("tiny-whisper-run.L1"), store.read("tiny-whisper-run.L1.mean")
    for i in (0, n - 1):  # the means of each utterance's rows, before fp16 rounding
        rows = frames.utterance(i).astype(np.float32)
        np.testing.assert_allclose(means.utterance(i)[0], rows.mean(axis=0), atol=2e-3, rtol=2e-3)
    durations = store.manifest.column("duration")
    assert abs(len(frames.utterance(0)) - durations[0] / 0.02) < 10  # 20 ms frames

    again = extract_features(corpus, tmp_path / "f.zarr", config, console=quiet)
    assert again.nothing_to_do
