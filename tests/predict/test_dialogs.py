"""`ser predict` on whole conversations: a dialog-context run's utterances in context."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from ser.cache import FeatureStore
from ser.corpus.labels import get_label_set
from ser.models import ModelConfig
from ser.predict.ensemble import probabilities
from ser.predict.notes import DIALOG_CONTEXT, NOT_USED
from ser.predict.run import PredictConfig, predict
from ser.train.checkpoint import load_checkpoint
from ser.train.data import load_data
from ser.train.features import resolve_features
from ser.train.recipe import TrainConfig, train
from tests.conftest import TrainedRun

COLUMNS = ("wav", "transcript", "dialog", "order")
# run directory, test side's wavs, transcripts, {dialog, order} and the run's predictions
DialogRun = tuple[Path, list[str], list[str], dict[str, np.ndarray], list[int]]


@pytest.fixture(scope="module")
def dialog_run(trained_run, synthetic_corpus, tmp_path_factory) -> DialogRun:  # type: ignore[no-untyped-def]
    """The fusion study's dialog model on the predict tests' store, and its test side's
    utterances: wav, transcript, dialog and order, in the checkpoint's row order."""
    out = tmp_path_factory.mktemp("dialog")
    model = ModelConfig(fusion="add", fusion_at="logits", loss="perspective")
    train(
        TrainConfig(
            store=str(trained_run.store), features=("hubert", "bert"), model=model,
            classes="4", protocol="session5", epochs=2, seeds=1, device="cpu", out=str(out),
            name="ctx",
        )
    )  # fmt: skip
    ckpt = load_checkpoint(out / "ctx", "seed0_session5")
    rows = np.asarray(ckpt.meta["test"]["rows"])
    manifest = FeatureStore.open(trained_run.store).manifest
    column = {k: np.asarray(manifest.column(k)).astype(str)[rows] for k in COLUMNS}
    wavs = [str(synthetic_corpus[0] / w) for w in column["wav"]]
    columns = {"dialog": column["dialog"], "order": column["order"]}
    texts = list(column["transcript"])
    return out / "ctx", wavs, texts, columns, list(ckpt.meta["test"]["pred"])


def write_list(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def in_context(run_dir: Path, store: Path, rows: np.ndarray) -> list[int]:
    """The run's checkpoint on the stored features of manifest `rows`, each in its
    dialog among those rows (the trainer's test batches): class per row."""
    ckpt = load_checkpoint(run_dir, "seed0_session5")
    opened = FeatureStore.open(store)
    data = load_data(opened, resolve_features(opened, ("hubert", "bert")), get_label_set("4"))
    positions = np.searchsorted(data.manifest_rows, rows)
    return probabilities(ckpt, data, positions).argmax(axis=1).tolist()


@pytest.mark.slow
def test_conversations_are_predicted_in_context_as_the_run_tested(
    dialog_run: DialogRun, trained_run: TrainedRun, tmp_path: Path
) -> None:
    run_dir, wavs, texts, columns, preds = dialog_run
    rows = np.asarray(load_checkpoint(run_dir, "seed0_session5").meta["test"]["rows"])
    assert in_context(run_dir, trained_run.store, rows) == preds  # the reference is the run's
    # Every turn with a transcript (predict refuses an empty one), listed backwards: the
    # order column, not the line, places a turn.
    keep = [i for i, t in enumerate(texts) if t.strip()]
    assert len(keep) > 5 and len(keep) < len(texts)
    lines = [[wavs[i], texts[i], columns["dialog"][i], columns["order"][i]] for i in reversed(keep)]
    listing = write_list(tmp_path / "talks.csv", ["path", "transcript", "dialog", "order"], lines)
    result = predict(PredictConfig(str(run_dir), (str(listing),), device="cpu"))
    assert not result.dialog_context_lost and DIALOG_CONTEXT not in result.notes
    got = [result.classes.index(p.label) for p in reversed(result.predictions)]
    assert got == in_context(run_dir, trained_run.store, rows[keep])
    assert result.predictions[0].dialog == columns["dialog"][keep[-1]]
    alone = write_list(tmp_path / "alone.csv", ["path", "transcript"], [x[:2] for x in lines])
    lost = predict(PredictConfig(str(run_dir), (str(alone),), device="cpu"))
    assert lost.dialog_context_lost  # and its probabilities are another model's input's:
    both = zip(lost.predictions, result.predictions, strict=True)
    assert any(a.probabilities != pytest.approx(b.probabilities) for a, b in both)


def test_without_dialogs_the_context_is_lost_and_said(
    dialog_run: DialogRun, tmp_path: Path
) -> None:
    run_dir, wavs, texts, _, _ = dialog_run
    rows = [[wavs[0], texts[0] or "hello"], [wavs[1], texts[1] or "hello"]]
    alone = write_list(tmp_path / "alone.csv", ["path", "transcript"], rows)
    result = predict(PredictConfig(str(run_dir), (str(alone),), device="cpu"))
    assert result.dialog_context_lost and DIALOG_CONTEXT in result.notes
    mixed = write_list(
        tmp_path / "mixed.csv",
        ["path", "transcript", "dialog", "order"],
        [[*rows[0], "d1", "1"], [str(tmp_path / "gone.wav"), "hi", "d1", "2"], [*rows[1], "", ""]],
    )
    some = predict(PredictConfig(str(run_dir), (str(mixed),), device="cpu"))
    assert some.dialog_context_lost and any("1 input(s) without a dialog" in n for n in some.notes)
    assert some.failed == 1 and any(n.startswith("dialog(s) d1: turns that") for n in some.notes)


def test_an_utterance_level_run_says_it_does_not_use_the_dialogs(
    trained_run: TrainedRun, tmp_path: Path
) -> None:
    rows = [[trained_run.wavs[0], "hello", "d1", "1"]]
    listing = write_list(tmp_path / "one.csv", ["path", "transcript", "dialog", "order"], rows)
    result = predict(PredictConfig(str(trained_run.run_dir), (str(listing),), device="cpu"))
    assert NOT_USED in result.notes and not result.dialog_context_lost
