"""`ser.load`: a run or an exported folder predicting as `ser predict` does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import ser
from ser.errors import CheckpointError, ConfigError, RunNotFound, SerError
from ser.export.write import ExportConfig, export_run
from ser.predict.run import PredictConfig, predict
from tests.api.conftest import FEATURES, TINY


def recordings(demo: Path, n: int) -> tuple[list[str], list[str]]:
    """The first `n` recordings of session 5 (the demo run's test side) with words, and
    their words."""
    manifest = ser.open_store(demo / "demo" / "features.zarr").feature_store.manifest
    wavs, texts = manifest.column("wav").tolist(), manifest.column("transcript").tolist()
    rows = [i for i, w in enumerate(wavs) if "Session5" in w and texts[i]][:n]
    corpus = demo / "demo" / "IEMOCAP_full_release"
    wavs = [str(corpus / str(manifest.column("wav")[i])) for i in rows]
    return wavs, [str(manifest.column("transcript")[i]) for i in rows]


def test_its_predictions_are_ser_predicts(demo: Path, demo_run: Path) -> None:
    wavs, words = recordings(demo, 2)
    model = ser.load(demo_run, device="cpu")
    assert model.classes == ("neu", "hap", "sad", "ang")
    assert model.checkpoints == ("seed0_session5",)
    made = model.predict(wavs, transcripts=words)
    for wav, text, p in zip(wavs, words, made, strict=True):
        config = PredictConfig(str(demo_run), (wav,), text=text, device="cpu")
        (expected,) = predict(config).predictions
        assert p.path == wav and p.transcript == text and p.error is None
        assert p.probabilities == pytest.approx(expected.probabilities, abs=1e-6)
        assert p.label == expected.label and p.outputs["emotion"] == p.probabilities
    again = model.predict(wavs[1], transcripts=words[1])  # the loaded model, called again
    assert again[0].probabilities == pytest.approx(made[1].probabilities, abs=1e-6)


def test_a_segmented_recording_has_its_timeline(demo: Path, demo_run: Path) -> None:
    (wav,), (text,) = recordings(demo, 1)
    (p,) = ser.load(demo_run, device="cpu").predict(wav, transcripts=text, segment="fixed:0.5")
    assert p.path == wav and p.label is None and p.error is None and len(p.timeline) >= 2
    assert [s.start for s in p.timeline] == [i / 2 for i in range(len(p.timeline))]
    assert all(s.label in ("neu", "hap", "sad", "ang") for s in p.timeline)


def test_an_exported_folder_predicts_as_its_run(demo: Path, demo_run: Path, tmp_path: Path) -> None:
    wavs, words = recordings(demo, 1)
    export_run(ExportConfig(str(demo_run), str(tmp_path / "model"), with_encoders=True))
    exported = ser.load(tmp_path / "model", device="cpu").predict(wavs, transcripts=words)
    by_run = ser.load(demo_run, device="cpu").predict(wavs, transcripts=words)
    assert exported[0].probabilities == pytest.approx(by_run[0].probabilities, abs=1e-5)


def test_an_input_that_fails_fails_alone(demo: Path, demo_run: Path, tmp_path: Path) -> None:
    wavs, words = recordings(demo, 1)
    made = ser.load(demo_run, device="cpu").predict(
        [wavs[0], tmp_path / "gone.wav", wavs[0]], transcripts=[words[0], "words", None]
    )
    assert made[0].error is None and made[1].path == str(tmp_path / "gone.wav")
    assert made[1].error and made[1].label is None
    assert made[2].error and "give transcripts" in made[2].error  # a text run given no words
    assert "--text" not in made[2].error and "--asr" not in made[2].error  # Python's words


def test_what_cannot_be_loaded_or_asked_is_refused(demo_run: Path, tmp_path: Path) -> None:
    with pytest.raises(SerError, match="not a run's folder"):
        ser.load(tmp_path)
    model = ser.load(demo_run, device="cpu")
    with pytest.raises(ConfigError, match="transcripts: 1 given for 2 path"):
        model.predict(["a.wav", "b.wav"], transcripts=["one"])
    with pytest.raises(ConfigError, match="batch_size"):
        ser.load(demo_run, batch_size=0)


def test_a_folder_that_is_no_run_is_said_for_what_it_is(
    demo_run: Path, demo_store: Path, tmp_path: Path
) -> None:
    """A path not there, a folder without run.json, a store, a file, a folder of runs:
    each one line naming the path and what to give, never the advice to train again."""
    gone = tmp_path / "no-such-run"
    with pytest.raises(RunNotFound) as missing:
        ser.load(gone)
    assert isinstance(missing.value, FileNotFoundError)
    assert str(missing.value) == (
        f"{gone} does not exist: give the folder of a trained run (<out>/<name>, which "
        "holds its run.json) or of a `ser export`"
    )
    with pytest.raises(CheckpointError) as empty:
        ser.load(tmp_path)
    assert str(empty.value) == (
        f"{tmp_path} is not a run's folder (it holds no run.json): give the folder "
        "`ser train` wrote for the run, <out>/<name>"
    )
    with pytest.raises(CheckpointError) as store:
        ser.load(demo_store)
    assert str(store.value) == (
        f"{demo_store} is a feature store, not a run: give the folder of a run trained on it, "
        "<out>/<name>"
    )
    (tmp_path / "notes.txt").write_text("a file")
    with pytest.raises(CheckpointError) as file:
        ser.load(tmp_path / "notes.txt")
    assert str(file.value) == (
        f"{tmp_path / 'notes.txt'} is a file, not a run's folder: give the folder that holds "
        "its run.json"
    )
    with pytest.raises(CheckpointError) as runs:
        ser.load(demo_run.parent)
    assert str(runs.value) == (
        f"{demo_run.parent} is a folder of runs, not a run: give one of them, such as {demo_run}"
    )


def test_a_run_that_lost_its_checkpoints_is_told_to_resume(
    demo_run: Path, demo_store: Path, tmp_path: Path
) -> None:
    """checkpoints/ deleted: a plain resume trains them again (not --overwrite, which
    would throw the record away); in part: each missing file named."""
    run = tmp_path / "api"
    shutil.copytree(demo_run, run)
    shutil.rmtree(run / "checkpoints")
    with pytest.raises(CheckpointError) as lost:
        ser.load(run)
    said = str(lost.value)
    assert said.startswith(f"{run}: the checkpoints of the 1 member(s) its run.json records ")
    assert "checkpoints/ folder is gone" in said and "without --overwrite" in said
    assert "\n" not in said
    # The mend it names works: the same training, resumed, trains the member again.
    ser.train(store=demo_store, features=FEATURES, out=tmp_path, name="api", **TINY)
    assert ser.load(run, device="cpu").checkpoints == ("seed0_session5",)
    (run / "checkpoints" / "seed0_session5.safetensors").unlink()
    with pytest.raises(CheckpointError) as partial:
        ser.load(run)
    weights = run / "checkpoints" / "seed0_session5.safetensors"
    assert str(partial.value).startswith(
        f"checkpoint {weights} (the weights of seed 0, fold session5) is missing: delete it "
    )


def test_encoders_is_one_folder_or_several(demo_run: Path, tmp_path: Path) -> None:
    one = ser.load(demo_run, device="cpu", encoders=tmp_path / "enc")
    assert one.config.encoders == (str(tmp_path / "enc"),)  # not its characters
    two = ser.load(demo_run, device="cpu", encoders=["a", tmp_path / "b"])
    assert two.config.encoders == ("a", str(tmp_path / "b"))
    with pytest.raises(TypeError, match="encoders takes a folder or a list of folders, got 3"):
        ser.load(demo_run, encoders=3)  # type: ignore[arg-type]


def test_progress_shows_what_ser_predict_shows_on_stderr(
    demo: Path, demo_run: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ser.runtime import progress

    monkeypatch.setattr(progress, "SHORT", 0.0)  # a pass as long as many files'
    wavs, words = recordings(demo, 2)
    model = ser.load(demo_run, device="cpu")
    model.predict(wavs, transcripts=words, progress=True)
    said = capsys.readouterr()
    assert said.out == "" and "predict" in said.err and " elapsed " in said.err
    model.predict(wavs, transcripts=words)  # by default, nothing
    assert capsys.readouterr().err == ""
    with pytest.raises(TypeError, match="progress must be True or False"):
        model.predict(wavs, progress="yes")  # type: ignore[arg-type]
