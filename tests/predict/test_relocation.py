"""A run predicts from any directory: model folders recorded resolved, `--encoder` for a
moved one (accepted on its weights checksum only), runs recorded before (relative paths).

The run here is extracted and trained inside its own folder with relative paths (as
`make demo` does), leave-one-session-out with a dialog-level model, so the notes about
folds and dialog context are checked on it too.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from ser.cli import main
from ser.errors import ConfigError, FingerprintMismatch
from ser.predict.run import PredictConfig, predict
from ser.synth.tiny import save_tiny_hubert
from ser.train.checkpoint import checkpoint_dir, load_checkpoint, located

# Relative to the folder the run is made in, as `make demo` gives it (a path of two
# parts, "models/tiny-hubert", would read as a hub id once the folder is not there).
HUBERT = Path("demo") / "models" / "tiny-hubert"
SET = "tiny-hubert.L2"


@pytest.fixture(scope="module")
def made_here(synthetic_corpus, tiny_models, tmp_path_factory) -> Path:
    """A folder holding demo/models/tiny-hubert, f.zarr and runs/ctx, made from inside it."""
    from ser.extract.run import ExtractConfig, extract_features
    from ser.models import ModelConfig
    from ser.train.recipe import TrainConfig, train

    root, _ = synthetic_corpus
    work = tmp_path_factory.mktemp("made_here")
    shutil.copytree(tiny_models.hubert, work / HUBERT)
    extract = ExtractConfig(
        features=("hubert",),
        options={"hubert": {"model": str(HUBERT), "layers": "2"}},
        classes="4",
        device="cpu",
        precision="fp32",
        progress=False,
    )
    model = ModelConfig(fusion="none", context=True, d_model=8, heads=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        extract_features(root, Path("f.zarr"), extract, console=Console(quiet=True))
        train(
            TrainConfig(
                store="f.zarr",
                features=("hubert",),
                model=model,
                classes="4",
                protocol="loso",
                epochs=1,
                batch_size=8,
                seeds=1,
                device="cpu",
                out="runs",
                name="ctx",
            )
        )
    return work


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory of a test: not the one the run was made in."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def moved(made_here: Path, tmp_path: Path) -> Iterator[Path]:
    """The run's model folder moved away for one test (and back after it)."""
    new = tmp_path / "moved" / "renamed-hubert"
    new.parent.mkdir()
    shutil.move(made_here / HUBERT, new)
    try:
        yield new
    finally:
        shutil.move(new, made_here / HUBERT)


def wav(synthetic_corpus, session: int) -> str:
    _, truth = synthetic_corpus
    return next(
        str(u.wav_path) for u in truth.utterances if u.group("session") == session and u.wav_path
    )


def config(made_here: Path, *inputs: str, **changes) -> PredictConfig:
    return PredictConfig(str(made_here / "runs" / "ctx"), inputs, device="cpu", **changes)


def test_the_run_records_its_model_folder_resolved(made_here: Path) -> None:
    ckpt = load_checkpoint(made_here / "runs" / "ctx", "seed0_fold1")
    assert ckpt.features[SET]["attrs"]["model"] == str((made_here / HUBERT).resolve())


def test_predicts_from_another_directory(made_here, elsewhere, synthetic_corpus) -> None:
    result = predict(config(made_here, wav(synthetic_corpus, 2)))
    assert result.failed == 0 and result.predictions[0].label in result.classes


def test_a_moved_model_folder_is_given_with_encoder(
    made_here, elsewhere, moved: Path, synthetic_corpus
) -> None:
    audio = wav(synthetic_corpus, 2)
    with pytest.raises(ConfigError, match=r"tiny-hubert.L2: its model folder .* --encoder"):
        predict(config(made_here, audio))
    said: list[str] = []
    result = predict(config(made_here, audio, encoders=(str(moved),)), message=said.append)
    assert result.failed == 0
    assert f"{SET}: encoder from {moved} (weights match the run's)" in said


def test_an_encoder_with_other_weights_is_refused(
    made_here, elsewhere, moved: Path, tiny_models, synthetic_corpus
) -> None:
    other = save_tiny_hubert(elsewhere / "other-hubert", seed=1)  # same shapes, other weights
    audio = wav(synthetic_corpus, 2)
    with pytest.raises(FingerprintMismatch) as caught:
        predict(config(made_here, audio, encoders=(str(other),)))
    assert re.search(
        r"its model folder \S+ does not exist, and no --encoder folder holds the weights it "
        r"was extracted with \(--encoder \S+other-hubert: other weights \(sha256 [0-9a-f]{12}, "
        r"the run's [0-9a-f]{12}\)\)$",
        str(caught.value),
    )
    # Another model's folder: said, not skipped for the advice to give the folder.
    with pytest.raises(FingerprintMismatch, match=r"tiny-bert: a bert model, the set's is hubert"):
        predict(config(made_here, audio, encoders=(str(tiny_models.bert),)))
    with pytest.raises(ConfigError, match=r"--encoder .*tiny-bert: its model \(bert\) is not"):
        predict(config(made_here, audio, encoders=(str(moved), str(tiny_models.bert))))
    with pytest.raises(ConfigError, match=r"--encoder .*nothing: not a model folder"):
        predict(config(made_here, audio, encoders=(str(elsewhere / "nothing"),)))


def test_a_run_recorded_with_relative_folders_works_from_its_directory_or_with_encoder(
    made_here: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synthetic_corpus
) -> None:
    """Runs written before folders were resolved name them as `ser extract` was given."""
    run = made_here / "runs" / "legacy"
    if not run.exists():
        shutil.copytree(made_here / "runs" / "ctx", run)
        for sidecar in checkpoint_dir(run).glob("*.json"):
            meta = json.loads(sidecar.read_text())
            meta["features"][SET]["attrs"]["model"] = str(HUBERT)
            sidecar.write_text(json.dumps(meta))
    legacy = PredictConfig(str(run), (wav(synthetic_corpus, 2),), device="cpu")
    monkeypatch.chdir(made_here)
    assert predict(legacy).failed == 0
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"demo/models/tiny-hubert does not exist .*--encoder"):
        predict(legacy)
    again = PredictConfig(**{**legacy.__dict__, "encoders": (str(made_here / HUBERT),)})
    assert predict(again).failed == 0


def test_dialog_models_and_fold_ensembles_say_what_the_prediction_is_not(
    made_here, elsewhere, synthetic_corpus
) -> None:
    result = predict(config(made_here, wav(synthetic_corpus, 3)))
    assert result.dialog_context_lost
    dialog, folds = result.notes
    assert "dialog-level" in dialog and "dialog of one utterance" in dialog
    assert "folds (fold1, fold2, fold3, fold4, fold5)" in folds and "--checkpoint" in folds
    (note,) = result.predictions[0].notes
    # Known by its wav in the run's store: its utterance id and the folds that saw it.
    assert note.startswith("utterance Ses03M_impro05a_F000 of the run's store: ")
    assert "seed0_fold1, seed0_fold2, seed0_fold4, seed0_fold5 trained on" in note
    assert result.predictions[0].held_out_by == ("seed0_fold3",)
    # Its own fold alone: a held-out prediction, nothing to say about the corpus.
    own = predict(config(made_here, wav(synthetic_corpus, 3), checkpoint="seed0_fold3"))
    assert own.notes == (result.notes[0],) and own.predictions[0].notes == []


def test_on_the_command_line_the_notes_are_lines_and_json_fields(
    made_here, elsewhere, synthetic_corpus
) -> None:
    args = ["predict", "--run", str(made_here / "runs" / "ctx"), wav(synthetic_corpus, 3)]
    table = CliRunner().invoke(main, [*args, "--device", "cpu"])
    assert table.exit_code == 0, table.output
    assert "note: this run's models are dialog-level" in table.stderr
    assert "note: the 5 checkpoints averaged are folds" in table.stderr
    as_json = CliRunner().invoke(main, [*args, "--device", "cpu", "--json"])
    payload = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert payload["dialog_context_lost"] is True and len(payload["notes"]) == 2
    assert "Ses03M_impro05a_F000" in payload["predictions"][0]["notes"][0]
    assert payload["predictions"][0]["held_out_by"] == ["seed0_fold3"]


def test_a_checkpoint_records_a_store_s_relative_folder_resolved(
    made_here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stores extracted before folders were resolved: training from where the folder is
    found records it absolute, so the run predicts from anywhere."""
    monkeypatch.chdir(made_here)
    attrs = {"model": str(HUBERT), "asr_model": "openai/whisper-small", "dim": 8}
    assert located(dict(attrs)) == {**attrs, "model": str((made_here / HUBERT).resolve())}
    monkeypatch.chdir(made_here / "runs")  # not there from here: kept as it was
    assert located(dict(attrs)) == attrs
