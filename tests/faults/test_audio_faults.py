"""Audio and prediction faults on the command line, each as a user meets it: a WAV cut
short inside a corpus (extracted, listed, counted), the same file given to `ser predict`,
a truncated checkpoint, a file too short to predict, a CSV list under a header ser does
not know, an `--encoder` of other weights for a moved model folder. Each: its exit code,
one line naming the file and the problem, no traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner, Result

from ser.cache import FeatureStore
from ser.cli import main
from ser.corpus.options import ReadOptions
from ser.corpus.registry import read_corpus
from ser.synth.tiny import save_tiny_hubert
from ser.train.checkpoint import checkpoint_dir

RATE = 16000


def _cut(wav: Path) -> None:
    """Half of the file's samples dropped, its header (declaring all of them) kept."""
    data = wav.read_bytes()
    wav.write_bytes(data[: 44 + (len(data) - 44) // 4 * 2])


def _errors(result: Result) -> list[str]:
    """The error lines a user sees, each unwrapped (rich wraps at the terminal's width)."""
    said = " ".join(result.output.split())
    assert "Traceback" not in result.output, result.output
    return ["error: " + part.strip() for part in said.split("error: ")[1:]]


def _predict(run: Path | str, *args: str) -> Result:
    return CliRunner().invoke(main, ["predict", "--run", str(run), *args, "--device", "cpu"])


@pytest.mark.slow
def test_a_wav_cut_short_in_a_corpus_fails_alone_and_is_counted(
    corpus_copy: Path, tmp_path: Path
) -> None:
    _, reading = read_corpus(corpus_copy, None, "4", ReadOptions())
    victim = next(u for u in reading.utterances if u.wav_path is not None)
    assert victim.wav_path is not None
    declared = soundfile.info(victim.wav_path).duration
    _cut(victim.wav_path)
    held = soundfile.info(victim.wav_path).duration  # what libsndfile reads of it, silently
    store = tmp_path / "s.zarr"

    args = ["extract", str(corpus_copy), "--store", str(store), "--features", "logmel"]
    result = CliRunner().invoke(main, [*args, "--classes", "4", "-q"])

    assert result.exit_code == 1, result.output
    reason = (
        f"cannot decode audio file {victim.wav_path}: read {held:.2f} s of the "
        f"{declared:.2f} s its header declares: the file is cut short"
    )
    assert f"{victim.utt_id} [logmel80]: {reason}" in " ".join(result.output.split())
    assert _errors(result) == [
        "error: 1 utterance(s) could not be extracted (listed above); the store is complete, "
        "they have zero rows"
    ]
    opened = FeatureStore.open(store)
    assert opened.failures("logmel80") == [(victim.utt_id, reason)]
    features = opened.read("logmel80")
    empty = [u for i, u in enumerate(opened.manifest.utt_ids) if not len(features.utterance(i))]
    assert empty == [victim.utt_id]  # every other utterance extracted
    info = CliRunner().invoke(main, ["store", "info", str(store), "--json"])
    assert json.loads(info.output)["feature_sets"]["logmel80"]["failures"] == 1


def test_the_same_cut_wav_through_predict_is_one_error_line(trained_run, tmp_path: Path) -> None:
    cut = tmp_path / "cut.wav"
    shutil.copy(trained_run.wavs[0], cut)
    _cut(cut)
    result = _predict(trained_run.run_dir, trained_run.wavs[1], str(cut), "--text", "hi")
    assert result.exit_code == 1, result.output
    (line,) = _errors(result)
    assert line.startswith(f"error: {cut}: cannot decode audio file {cut}: read ")
    assert line.endswith(" s its header declares: the file is cut short")


def test_a_truncated_checkpoint_is_one_line_naming_it_and_its_fold(
    trained_run, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)
    weights = checkpoint_dir(run) / "seed0_session5.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    result = _predict(run, trained_run.wavs[0], "--text", "hi")
    assert result.exit_code == 2, result.output
    (line,) = _errors(result)
    assert line.startswith(f"error: checkpoint {weights} (seed 0, fold session5) cannot be read")


def test_a_file_too_short_is_refused_with_its_length(trained_run, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.wav"
    soundfile.write(tiny, np.random.default_rng(0).normal(0, 0.05, RATE // 10), RATE)
    result = _predict(trained_run.run_dir, trained_run.wavs[0], str(tiny), "--text", "hi")
    assert result.exit_code == 1, result.output
    assert _errors(result) == [
        f"error: {tiny}: too short to predict: 0.10 s of audio, under the 0.25 s ser takes"
    ]


def test_a_csv_list_under_an_unknown_header_is_refused(trained_run, tmp_path: Path) -> None:
    listing = tmp_path / "list.csv"
    listing.write_text(f"file,text\n{trained_run.wavs[0]},hi\n")
    result = _predict(trained_run.run_dir, str(listing))
    assert result.exit_code == 2, result.output
    (line,) = _errors(result)
    assert line.startswith(f"error: {listing}: line 1 (file,text) names no audio file")


def _moved(run_dir: Path, tmp_path: Path, hubert: Path) -> Path:
    """A copy of the run whose sidecars name its HuBERT folder where it is no more."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    gone = str(tmp_path / "moved-away" / "tiny-hubert")
    for sidecar in checkpoint_dir(run).glob("*.json"):
        meta: dict[str, Any] = json.loads(sidecar.read_text())
        for feature in meta["features"].values():
            if feature["attrs"].get("model") == str(hubert.resolve()):
                feature["attrs"]["model"] = gone
        sidecar.write_text(json.dumps(meta))
    return run


def test_an_encoder_of_other_weights_for_a_moved_model_says_so(
    trained_run, tiny_models, tmp_path: Path
) -> None:
    run = _moved(trained_run.run_dir, tmp_path, tiny_models.hubert)
    other = save_tiny_hubert(tmp_path / "other-hubert", seed=1)  # same shapes, other weights
    for encoder, said in [
        (other, f"--encoder {other.resolve()}: other weights (sha256 "),
        (tiny_models.bert, f"--encoder {Path(tiny_models.bert).resolve()}: a bert model, "),
    ]:
        result = _predict(run, trained_run.wavs[0], "--text", "hi", "--encoder", str(encoder))
        assert result.exit_code == 2, result.output
        (line,) = _errors(result)
        assert "does not exist, and no --encoder folder holds the weights" in line
        assert said in line
