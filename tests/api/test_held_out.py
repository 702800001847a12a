"""Predicting a corpus's own utterances honestly: `ser.load(run).predict` of a file that
is an utterance of the run's store says which fold models trained on it and which held
it out, and `checkpoint="held-out"` predicts each such utterance with the folds whose
test side held it alone (`ser predict --checkpoint held-out` the same). Before, the five
LOSO folds were averaged over it, four of them trained on it, and nothing said so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import ser
from ser.errors import CheckpointError
from ser.predict.held_out import Origin, RunCorpus
from ser.train.checkpoint import checkpoint_dir
from tests.refused import ser as ser_command


@pytest.fixture(scope="module")
def loso(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LOSO run of an MLP on the demo store's log-mel set: five folds, one epoch."""
    out = tmp_path_factory.mktemp("held-out-runs")
    run = ser.train(
        store=demo_store, features="logmel80", fusion="none", protocol="loso", classes="4",
        seeds=1, epochs=1, batch_size=8, device="cpu", out=out, name="loso",
    )  # fmt: skip
    return run.folder


def folds_of(run: Path) -> dict[int, str]:
    """Each manifest row a fold tested -> that fold's checkpoint key."""
    found = {}
    for sidecar in sorted(checkpoint_dir(run).glob("*.json")):
        meta = json.loads(sidecar.read_text())
        found.update(dict.fromkeys(meta["test"]["rows"], sidecar.stem))
    return found


def wavs(demo: Path, rows: list[int]) -> list[str]:
    manifest = ser.open_store(demo / "demo" / "features.zarr").feature_store.manifest
    corpus = demo / "demo" / "IEMOCAP_full_release"
    return [str(corpus / str(manifest.column("wav")[r])) for r in rows]


def two_sessions(run: Path) -> list[int]:
    """A tested row of each of two folds."""
    by_fold: dict[str, int] = {}
    for row, key in sorted(folds_of(run).items()):
        by_fold.setdefault(key, row)
    return list(by_fold.values())[:2]


def test_an_utterance_of_the_store_says_which_folds_trained_on_it(demo: Path, loso: Path) -> None:
    rows = two_sessions(loso)
    keys = folds_of(loso)
    model = ser.load(loso, device="cpu")
    assert len(model.checkpoints) == 5
    utterances = ser.open_store(demo / "demo" / "features.zarr").utterances
    for row, p in zip(rows, model.predict(wavs(demo, rows)), strict=True):
        held = keys[row]
        assert p.utterance == utterances[row] and p.held_out_by == (held,)
        assert p.seen_by == tuple(k for k in model.checkpoints if k != held)
        (note,) = [n for n in p.notes if "of the run's store" in n]
        assert note == (
            f"utterance {p.utterance} of the run's store: {', '.join(p.seen_by)} trained on "
            "it, so a prediction by them is not a held-out one; checkpoint='held-out' "
            f"predicts it with {held} alone, whose test side held it"
        )


def test_held_out_predicts_each_with_the_fold_that_tested_it(
    demo: Path, loso: Path, tmp_path: Path
) -> None:
    rows = two_sessions(loso)
    keys = folds_of(loso)
    own = wavs(demo, rows)
    moved = (
        tmp_path / "elsewhere" / Path(own[1]).relative_to(demo / "demo" / "IEMOCAP_full_release")
    )
    moved.parent.mkdir(parents=True)
    shutil.copy(own[1], moved)  # a corpus moved: known by its folders and file name
    stranger = tmp_path / "mine.wav"
    shutil.copy(own[0], stranger)
    made = ser.load(loso, device="cpu", checkpoint="held-out").predict([own[0], moved, stranger])
    for row, wav, p in zip(rows, own, made[:2], strict=True):
        alone = ser.load(loso, device="cpu", checkpoint=folds_of(loso)[row]).predict(wav)
        assert p.error is None and p.held_out_by == (keys[row],)
        assert p.probabilities == pytest.approx(alone[0].probabilities, abs=1e-6)
        assert any(f"predicted by {keys[row]} alone" in n for n in p.notes)
    assert made[2].label is None and made[2].utterance is None
    assert made[2].error is not None and "is no utterance of the run's store" in made[2].error
    assert not any("checkpoints averaged are folds" in n for n in made.notes)


def test_ser_predict_says_it_and_takes_held_out(demo: Path, loso: Path) -> None:
    (row,) = two_sessions(loso)[:1]
    (wav,) = wavs(demo, [row])
    result = ser_command(
        "predict", "--run", loso, wav, "--checkpoint", "held-out", "--device", "cpu", "--json"
    )
    assert result.exit_code == 0, result.output
    (p,) = json.loads(result.stdout)["predictions"]
    assert p["held_out_by"] == [folds_of(loso)[row]] and len(p["seen_by"]) == 4
    assert p["error"] is None and p["utterance"]


def test_an_utterance_every_fold_trained_on_is_not_held_out(demo: Path, demo_run: Path) -> None:
    """`--protocol session5` tests session 5 alone: a session 1 utterance has no model
    that held it out, and `held-out` says so for it alone."""
    manifest = ser.open_store(demo / "demo" / "features.zarr").feature_store.manifest
    sessions = [str(w).split("/")[0] for w in manifest.column("wav")]
    rows = [sessions.index("Session1"), sessions.index("Session5")]
    made = ser.load(demo_run, device="cpu", checkpoint="held-out").predict(
        wavs(demo, rows), transcripts="That is enough!"
    )
    assert made[0].seen_by == ("seed0_session5",) and made[0].held_out_by == ()
    assert made[0].error == (
        f"held-out: utterance {made[0].utterance} is on the training side of every fold "
        "(no fold's test side holds it), so no model of the run held it out"
    )
    assert made[1].error is None and made[1].held_out_by == ("seed0_session5",)


def test_an_utterance_outside_the_class_set_was_seen_by_none() -> None:
    corpus = RunCorpus(
        Path("s.zarr"),
        np.array(["a_1", "a_2"]),
        {Path("/corpus/S1/a_1.wav"): 0, Path("/corpus/S1/a_2.wav"): 1},
        {("S1", "a_1.wav"): 0, ("S1", "a_2.wav"): 1},
        np.array([True, False]),  # a_2's label is outside the run's class set
        {"seed0_f1": frozenset({0}), "seed0_f2": frozenset()},
        (2,),
    )
    ckpts = [SimpleNamespace(key="seed0_f1"), SimpleNamespace(key="seed0_f2")]
    outside = corpus.origin(Path("/moved/S1/a_2.wav"), ckpts)  # type: ignore[arg-type]
    assert outside == Origin("a_2", ("seed0_f1", "seed0_f2"), ()) and outside.note() is None
    inside = corpus.origin(Path("/corpus/S1/a_1.wav"), ckpts)  # type: ignore[arg-type]
    assert inside == Origin("a_1", ("seed0_f1",), ("seed0_f2",))
    assert corpus.origin(Path("/elsewhere/a_1.wav"), ckpts) is None  # type: ignore[arg-type]


def test_a_fold_lost_names_the_whole_ones_as_python_gives_them(loso: Path, tmp_path: Path) -> None:
    run = tmp_path / "loso"
    shutil.copytree(loso, run)
    keys = sorted(p.stem for p in checkpoint_dir(run).glob("*.json"))
    (checkpoint_dir(run) / f"{keys[0]}.safetensors").unlink()
    with pytest.raises(CheckpointError) as lost:
        ser.load(run)
    assert f"use the whole ones with checkpoint='{','.join(keys[1:])}', or delete it" in str(
        lost.value
    )
