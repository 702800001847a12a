"""`ser extract`: bad inputs are recorded with their reason while the rest is extracted,
every extractor runs end to end into both store formats, and bad options exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
import soxr
from click.testing import CliRunner

from ser.cache import FeatureStore
from ser.cli import main
from ser.runtime.device import pick_device
from ser.runtime.precision import resolve_precision


def _models(tiny_models: Any) -> list[str]:
    return [
        "--hubert-model", str(tiny_models.hubert), "--bert-model", str(tiny_models.bert),
        "--mpnet-model", str(tiny_models.mpnet),
    ]  # fmt: skip


@pytest.mark.slow
def test_bad_wavs_fail_alone_with_their_reason_and_exit_1(
    synthetic_corpus: tuple[Path, Any], corpus_copy: Path, tiny_models: Any, tmp_path: Path
) -> None:
    original, truth = synthetic_corpus
    utts = [u for u in truth.utterances if u.wav_path is not None]
    wav = {u.utt_id: corpus_copy / u.wav_path.relative_to(original) for u in utts}
    missing, garbage, empty, no_samples, nan, stereo = (u.utt_id for u in utts[3:9])
    wav[missing].unlink()
    wav[garbage].write_bytes(b"RIFF but not really a wav file")
    wav[empty].write_bytes(b"")
    soundfile.write(wav[no_samples], np.zeros(0, np.float32), 16000)
    soundfile.write(wav[nan], np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    mono, rate = soundfile.read(wav[stereo], dtype="float32")
    assert rate == 16000
    loud = soxr.resample(mono, 16000, 44100)
    soundfile.write(wav[stereo], np.stack([loud, loud], axis=1), 44100)

    store = tmp_path / "f.zarr"
    args = ["extract", str(corpus_copy), "--store", str(store), "--quiet", "--layers", "2",
            "--features", "hubert,bert,logmel", *_models(tiny_models)]  # fmt: skip
    result = CliRunner().invoke(main, args)

    assert result.exit_code == 1, result.output
    out = result.output
    assert "failures (5):" in out
    assert f"{missing} [tiny-hubert.L2, logmel80]: no wav file for this utterance" in out
    assert f"{garbage} [tiny-hubert.L2, logmel80]: cannot decode audio file" in out
    assert f"{empty} [tiny-hubert.L2, logmel80]:" in out and "empty (0 bytes)" in out
    assert "empty (0 samples)" in out
    assert f"{nan} [tiny-hubert.L2" in out and "NaN" in out
    assert stereo not in out
    assert "5 utterance(s) could not be extracted" in out

    features = FeatureStore.open(store)
    ids = list(features.manifest.utt_ids)
    bad = {missing, garbage, empty, no_samples, nan}
    for name in ("tiny-hubert.L2", "logmel80"):
        info, data = features.info(name), features.read(name)
        assert info.complete and info.failures == len(bad)
        reasons = dict(features.failures(name))
        assert set(reasons) == bad
        sizes = np.diff(data.offsets)
        assert all((sizes[ids.index(u)] == 0) == (u in bad) for u in ids), name
    assert features.info("tiny-bert").failures == 0  # text is unaffected by the audio
    # the stereo 44.1 kHz file was downmixed and resampled: 20 ms frames of its 16 kHz length
    frames = np.diff(features.read("tiny-hubert.L2").offsets)[ids.index(stereo)]
    assert abs(frames - len(mono) / 320) <= 1


@pytest.mark.slow
def test_every_extractor_into_an_hdf5_store(tiny_models: Any, tmp_path: Path) -> None:
    from ser.synth.corpus import SynthConfig, write_corpus

    root = tmp_path / "IEMOCAP_full_release"
    write_corpus(root, SynthConfig(dialogs_per_session=1, utterances_per_dialog=(4, 4), seed=3))
    store = tmp_path / "features.h5"
    args = ["extract", str(root), "--store", str(store), "--quiet", "--classes", "4",
            "--features", "hubert,mpnet,bert,is13,logmel", *_models(tiny_models)]  # fmt: skip
    result = CliRunner().invoke(main, args)

    assert result.exit_code == 0, result.output
    assert "extracted 5 feature set(s)" in result.output
    features = FeatureStore.open(store)
    assert features.backend == "hdf5"
    assert set(features.manifest.column("label")) <= {"neu", "hap", "exc", "sad", "ang"}
    for name in ("tiny-hubert.L2", "tiny-mpnet", "tiny-bert", "is13", "logmel80"):
        assert features.info(name).complete
        assert name in result.output
    assert features.info("is13").rows == len(features.manifest)
    # --precision auto is resolved for the device before it is recorded
    auto = resolve_precision("auto", pick_device("auto"), "extract")
    assert features.info("tiny-hubert.L2").attrs["precision"] == auto != "auto"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--features", "hubert,wav2vec"], "unknown feature kind(s) wav2vec"),
        (["--workers", "2", "--scheduler", "tcp://localhost:8786"], "not both"),
        (["--store", "features.parquet"], "parquet"),
        (["--device", "tpu"], "unknown device"),
    ],
)
def test_bad_options_exit_2_with_a_message(
    synthetic_corpus: tuple[Path, Any], tmp_path: Path, extra: list[str], message: str
) -> None:
    root = synthetic_corpus[0]
    args = ["extract", str(root), "--store", str(tmp_path / "f.zarr"), "--features", "logmel"]
    result = CliRunner().invoke(main, [*args, *extra])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_the_command_offers_the_registered_kinds_and_their_flags() -> None:
    from ser.extract.registry import KINDS, default_kinds

    shown = CliRunner().invoke(main, ["extract", "--help"], terminal_width=200).output
    assert f"[default: {','.join(default_kinds())}]" in shown
    assert f"of {','.join(KINDS)}" in shown
    flags = ["--hubert-model", "--mpnet-model", "--bert-model", "--layers", "--name"]
    flags += ["--speech-model", "--text-model", "--text-layers", "--pool", "--pooled-only"]
    for flag in flags:
        assert flag in shown


def test_the_help_examples_are_shown_as_written() -> None:
    """The examples keep their lines (click rewraps paragraphs, and a docstring's
    trailing backslash joined the ASR example's two lines into one)."""
    shown = CliRunner().invoke(main, ["extract", "--help"], terminal_width=80).output
    assert "--features mpnet,bert \\\n" in shown
    assert "--store features.zarr --features hubert,bert \\\n" in shown
    assert "--layers all --pool mean\n" in shown


def test_a_folder_that_is_not_iemocap_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["extract", str(tmp_path), "--store", str(tmp_path / "f.zarr")]
    )
    assert result.exit_code == 2
    assert result.output.startswith("error: ")


@pytest.mark.slow
def test_precision_is_recorded_and_another_precision_is_another_feature_set(
    tiny_models: Any, tmp_path: Path
) -> None:
    from ser.synth.corpus import SynthConfig, write_corpus

    root = tmp_path / "IEMOCAP_full_release"
    write_corpus(root, SynthConfig(dialogs_per_session=1, utterances_per_dialog=(3, 3), seed=5))
    store = tmp_path / "f.zarr"
    args = ["extract", str(root), "--store", str(store), "--quiet", "--features", "hubert,bert",
            *_models(tiny_models)]  # fmt: skip

    result = CliRunner().invoke(main, [*args, "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    features = FeatureStore.open(store)
    for name in ("tiny-hubert.L2", "tiny-bert"):
        assert features.info(name).attrs["precision"] == "fp32"

    result = CliRunner().invoke(main, [*args, "--precision", "bf16"])
    assert result.exit_code == 2, result.output
    assert 'precision: "fp32" -> "bf16"' in result.output
    assert "Traceback" not in result.output

    result = CliRunner().invoke(main, [*args, "--precision", "bf16", "--overwrite"])
    assert result.exit_code == 0, result.output
    features = FeatureStore.open(store)
    assert features.info("tiny-hubert.L2").attrs["precision"] == "bf16"

    result = CliRunner().invoke(main, [*args, "--precision", "fp64"])
    assert result.exit_code == 2 and "'fp64' is not one of" in result.output


def _small_corpus(tmp_path: Path) -> Path:
    from ser.synth.corpus import SynthConfig, write_corpus

    root = tmp_path / "IEMOCAP_full_release"
    write_corpus(root, SynthConfig(dialogs_per_session=1, utterances_per_dialog=(3, 3), seed=7))
    return root


@pytest.mark.slow
def test_name_renames_the_sets_and_each_model_load_says_one_line(
    tiny_models: Any, tmp_path: Path
) -> None:
    import shutil

    root = _small_corpus(tmp_path)
    # BERT from a Hugging Face cache snapshot: named after the repo, not the commit hash
    snapshot = tmp_path / "hub" / "models--org--tiny-bert-cased" / "snapshots" / ("ab12" * 10)
    shutil.copytree(tiny_models.bert, snapshot)
    store = tmp_path / "f.zarr"
    args = ["extract", str(root), "--store", str(store), "--features", "hubert,bert",
            "--hubert-model", str(tiny_models.hubert), "--bert-model", str(snapshot),
            "--layers", "1,2", "--bert-layers", "last", "--name", "hubert=speech"]  # fmt: skip
    result = CliRunner().invoke(main, args)

    assert result.exit_code == 0, result.output
    assert set(FeatureStore.open(store).feature_sets()) == {
        "speech.L1",
        "speech.L2",
        "tiny-bert-cased",
    }
    loaded = [line for line in result.stderr.splitlines() if line.startswith("loaded ")]
    assert len(loaded) == 2, result.stderr
    assert loaded[0].startswith("loaded speech (layers 1,2, ")
    assert loaded[1].startswith("loaded tiny-bert-cased (last layer, ")
    assert loaded[1].endswith(f"from {snapshot.resolve()}")
    assert "LOAD REPORT" not in result.output and "Loading weights" not in result.output
    # stderr is no terminal: plain progress lines, the last of each pass with its total
    n = len(FeatureStore.open(store).manifest)
    for kind in ("hubert", "bert"):
        lines = [line for line in result.stderr.splitlines() if line.startswith(f"{kind}: ")]
        assert lines and lines[-1].startswith(f"{kind}: {n}/{n} utterances  "), result.stderr
        assert " utt/s  elapsed " in lines[-1] and lines[-1].endswith("eta 0:00")


def test_a_bare_name_with_two_model_extractors_is_refused(tmp_path: Path) -> None:
    args = ["extract", str(tmp_path), "--store", str(tmp_path / "f.zarr"),
            "--features", "mpnet,bert", "--name", "x"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "ambiguous" in result.output and "--name mpnet=x" in result.output


def test_plain_progress_lines_are_throttled_to_one_per_interval() -> None:
    import io

    from rich.console import Console

    from ser.extract.progress import progress_bar

    out = io.StringIO()
    times = iter([0.0, 1.0, 10.0, 31.0, 40.0, 62.0, 70.0])  # add_task, then per advance
    with progress_bar(Console(file=out, width=30), True, 30, lambda: next(times)) as bar:
        task = bar.add_task("hubert", total=1200)
        for _ in range(6):
            bar.advance(task, 200)
    lines = out.getvalue().splitlines()
    # the first advance, then 30 s after the line before, and the end of the pass
    assert lines == [
        "hubert: 200/1,200 utterances  -- utt/s  elapsed 0:01  eta --",
        "hubert: 600/1,200 utterances  13.3 utt/s  elapsed 0:31  eta 0:45",
        "hubert: 1,000/1,200 utterances  13.1 utt/s  elapsed 1:02  eta 0:15",
        "hubert: 1,200/1,200 utterances  14.5 utt/s  elapsed 1:10  eta 0:00",
    ]  # the pace from the first advance on (its model loaded, its first batch done)


@pytest.mark.slow
def test_text_source_asr_end_to_end_and_bad_asr_options(tiny_models: Any, tmp_path: Path) -> None:
    """The options' way through the command, on a corpus of 15 utterances (what
    the transcripts and their sets hold: tests/extract/test_asr_text.py)."""
    root = _small_corpus(tmp_path)
    store = tmp_path / "f.zarr"
    args = ["extract", str(root), "--store", str(store), "--quiet", "--features", "bert",
            "--bert-model", str(tiny_models.bert), "--text-source", "asr",
            "--asr-model", str(tiny_models.whisper), "--asr-max-new-tokens", "4"]  # fmt: skip
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "extracted 1 feature set(s)" in first.stdout
    assert "asr-tiny-whisper: transcripts by" in first.stdout and "WER " in first.stdout
    assert FeatureStore.open(store).feature_sets() == ["tiny-bert@asr-tiny-whisper"]
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and again.stdout.startswith("nothing to do: asr-tiny-whisper")

    bad = CliRunner().invoke(main, [*args[:-4], "--asr-model", str(tmp_path / "no-such")])
    assert bad.exit_code == 2
    assert "error:" in bad.stderr and "no-such does not exist" in bad.stderr
    not_whisper = CliRunner().invoke(main, [*args[:-4], "--asr-model", str(tiny_models.bert)])
    assert not_whisper.exit_code == 2 and "error:" in not_whisper.stderr
    gold = CliRunner().invoke(
        main, ["extract", str(root), "--store", str(store), "--asr-model", "x"]
    )
    assert gold.exit_code == 2 and "need --text-source asr" in gold.output
