"""`ser.predict.run`: re-created features reproduce the run, bad inputs fail alone, ASR."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from ser.errors import CheckpointError, FingerprintMismatch
from ser.predict.run import NO_TEXT, PredictConfig, predict
from ser.train.checkpoint import checkpoint_dir


def test_predicting_the_test_wavs_reproduces_the_runs_predictions(trained_run) -> None:
    """Features re-created from provenance + the checkpoint = the run's own test side."""
    csv_path = trained_run.run_dir.parent / "test_side.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "transcript"])
        writer.writerows(zip(trained_run.wavs, trained_run.transcripts, strict=True))
    config = PredictConfig(str(trained_run.run_dir), (str(csv_path),), device="cpu")
    result = predict(config)
    assert result.checkpoints == ("seed0_session5",)
    # The corpus has a few empty transcripts, which predict refuses; all others match.
    empty = [i for i, t in enumerate(trained_run.transcripts) if not t.strip()]
    assert [i for i, p in enumerate(result.predictions) if p.error] == empty
    got = [result.classes.index(p.label) for p in result.predictions if p.label]
    assert len(got) > 10
    assert got == [y for i, y in enumerate(trained_run.preds) if i not in empty]
    probs = np.array([list(p.probabilities.values()) for p in result.predictions if p.label])
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_ensemble_is_the_mean_of_the_checkpoints(trained_run, tmp_path: Path) -> None:
    wav = trained_run.wavs[0]
    base = PredictConfig(str(trained_run.run_dir), (wav,), text="hello", device="cpu")
    fold = predict(base).predictions[0].probabilities
    final = predict(PredictConfig(**{**base.__dict__, "checkpoint": "final"}))
    run = tmp_path / "both"
    shutil.copytree(trained_run.run_dir, run)  # "final" renamed: a second ensemble member
    for suffix in (".json", ".safetensors"):
        (checkpoint_dir(run) / f"final{suffix}").rename(checkpoint_dir(run) / f"seed9_x{suffix}")
    both = predict(PredictConfig(**{**base.__dict__, "run": str(run)}))
    assert both.checkpoints == ("seed0_session5", "seed9_x")
    mean = {c: (fold[c] + final.predictions[0].probabilities[c]) / 2 for c in fold}
    assert both.predictions[0].probabilities == pytest.approx(mean, abs=1e-6)


def test_bad_inputs_fail_alone(trained_run, tmp_path: Path) -> None:
    good = trained_run.wavs[0]
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF not really a wave file")
    short = tmp_path / "short.wav"
    soundfile.write(short, np.zeros(10, np.float32), 16000)
    stereo = tmp_path / "stereo44k.wav"
    wave, rate = soundfile.read(good, dtype="float32")
    soundfile.write(stereo, np.stack([wave, wave], axis=1), rate)  # 2 channels
    resampled = tmp_path / "r44k.wav"
    soundfile.write(resampled, np.repeat(wave, 2), 32000)
    paths = [good, tmp_path / "missing.wav", empty, corrupt, short, stereo, resampled]
    config = PredictConfig(
        str(trained_run.run_dir), tuple(map(str, paths)), text="hi", device="cpu"
    )
    result = predict(config)
    by_name = {Path(p.path).name: p for p in result.predictions}
    assert by_name[Path(good).name].label is not None
    assert "does not exist" in by_name["missing.wav"].error
    assert "empty" in by_name["empty.wav"].error
    assert "cannot decode" in by_name["corrupt.wav"].error
    assert "too short" in by_name["short.wav"].error
    assert (
        by_name["stereo44k.wav"].label
        and "2 channels averaged to mono" in by_name["stereo44k.wav"].notes
    )
    assert (
        by_name["r44k.wav"].label and "resampled 32000 Hz -> 16000 Hz" in by_name["r44k.wav"].notes
    )
    assert result.failed == 4


def test_text_runs_need_a_transcript(trained_run) -> None:
    wav = trained_run.wavs[0]
    none = predict(PredictConfig(str(trained_run.run_dir), (wav,), device="cpu"))
    assert none.predictions[0].error == NO_TEXT
    empty = predict(PredictConfig(str(trained_run.run_dir), (wav,), text="  ", device="cpu"))
    assert empty.predictions[0].error == "the transcript is empty"


def test_asr_transcribes_inputs_without_text(trained_run, tiny_models) -> None:
    wavs = tuple(trained_run.wavs[:3])
    config = PredictConfig(
        str(trained_run.run_dir),
        wavs,
        asr=str(tiny_models.whisper),
        asr_max_new_tokens=6,
        device="cpu",
    )
    result = predict(config)
    assert result.failed == 0
    for p in result.predictions:
        assert p.transcript_source == "asr" and p.transcript and p.label in result.classes


def test_refuses_features_the_extractor_would_not_reproduce(trained_run, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)
    sidecar = checkpoint_dir(run) / "seed0_session5.json"
    meta = json.loads(sidecar.read_text())
    meta["features"]["tiny-hubert.L2"]["attrs"]["weights_sha256"] = "0" * 64
    sidecar.write_text(json.dumps(meta))
    config = PredictConfig(str(run), (trained_run.wavs[0],), text="x", device="cpu")
    with pytest.raises(FingerprintMismatch, match=r"tiny-hubert.L2 .*weights_sha256: \"0+\""):
        predict(config)


def test_a_run_without_checkpoints_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"holds no checkpoints.*--overwrite"):
        predict(PredictConfig(str(tmp_path), ("a.wav",), device="cpu"))


def test_a_text_only_run_still_refuses_audio_it_cannot_read(
    trained_run, text_run: Path, tmp_path: Path
) -> None:
    """No audio features: the transcript alone could be scored, but README's rule holds:
    a missing, corrupt or cut short file is an error of its own (exit code 1)."""
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF not really a wave file")
    whole = Path(trained_run.wavs[0]).read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[: len(whole) // 2])
    paths = [trained_run.wavs[0], str(tmp_path / "missing.wav"), str(corrupt), str(cut)]
    config = PredictConfig(str(text_run), tuple(paths), text="hello", device="cpu")
    result = predict(config)
    good, missing, broken, short = result.predictions
    assert good.label is not None and good.error is None
    assert "does not exist" in str(missing.error) and "cannot decode" in str(broken.error)
    assert "is cut short" in str(short.error) and result.failed == 3


def test_a_run_s_whisper_folder_that_moved_is_given_with_asr(tmp_path: Path) -> None:
    """A run on ASR text transcribes with its recorded Whisper: a folder no longer there
    names --asr (which is accepted on its weights checksum) instead of failing to load."""
    import torch

    from ser.errors import ConfigError
    from ser.predict.inputs import Item
    from ser.predict.run import _transcripts

    recorded = {"asr_model": str(tmp_path / "gone" / "tiny-whisper"), "asr_weights_sha256": "ab"}
    config = PredictConfig("run", ("a.wav",), device="cpu")
    with pytest.raises(ConfigError, match=r"gone/tiny-whisper, which does not exist.*--asr"):
        _transcripts([Item(tmp_path / "a.wav")], config, torch.device("cpu"), print, recorded)


@pytest.fixture(scope="module")
def layered_run(synthetic_corpus, tiny_models, tmp_path_factory):  # type: ignore[no-untyped-def]
    """MSMSER trained on every layer of the tiny HuBERT (`tiny-hubert.L*`) and BERT."""
    from rich.console import Console

    from ser.cache import FeatureStore
    from ser.extract.run import ExtractConfig, extract_features
    from ser.models import ModelConfig
    from ser.train.checkpoint import load_checkpoint
    from ser.train.recipe import TrainConfig, train

    root, _ = synthetic_corpus
    tmp = tmp_path_factory.mktemp("layered")
    options = {"hubert": {"model": str(tiny_models.hubert), "layers": "all"},
               "bert": {"model": str(tiny_models.bert)}}  # fmt: skip
    config = ExtractConfig(
        ("hubert", "bert"), "4", options, device="cpu", precision="fp32", progress=False
    )
    extract_features(root, tmp / "f.zarr", config, console=Console(quiet=True))
    train(
        TrainConfig(
            store=str(tmp / "f.zarr"), features=("tiny-hubert.L*", "bert"), classes="4",
            model=ModelConfig(fusion="mit", d_model=16, heads=2, queries=4), epochs=2,
            protocol="session5", batch_size=8, seeds=1, device="cpu", out=str(tmp), name="mit",
        )
    )  # fmt: skip
    ckpt = load_checkpoint(tmp / "mit", "seed0_session5")
    rows = np.asarray(ckpt.meta["test"]["rows"])
    manifest = FeatureStore.open(tmp / "f.zarr").manifest
    wavs = [str(root / w) for w in np.asarray(manifest.column("wav")).astype(str)[rows]]
    texts = np.asarray(manifest.column("transcript")).astype(str)[rows]
    return tmp / "mit", ckpt, wavs, list(texts)


def test_a_run_on_every_layer_predicts_through_the_same_layers(layered_run) -> None:  # type: ignore[no-untyped-def]
    run_dir, ckpt, wavs, texts = layered_run
    sets = ["tiny-hubert.L0", "tiny-hubert.L1", "tiny-hubert.L2"]
    assert ckpt.layers == {"tiny-hubert.L0-2": {"sets": sets, "layers": [0, 1, 2]}}
    assert sorted(ckpt.features) == sorted([*sets, "tiny-bert"])  # each layer set's provenance
    assert "layer_mix.mixes.tiny-hubert_L0-2.weights" in ckpt.state
    ok = [i for i, t in enumerate(texts) if t.strip()]
    lines = [(wavs[i], texts[i]) for i in ok]
    csv_path = run_dir.parent / "test_side.csv"
    with csv_path.open("w", newline="") as handle:
        csv.writer(handle).writerows([("path", "transcript"), *lines])
    result = predict(PredictConfig(str(run_dir), (str(csv_path),), device="cpu"))
    got = [result.classes.index(str(p.label)) for p in result.predictions]
    assert len(got) > 10 and got == [ckpt.meta["test"]["pred"][i] for i in ok]
