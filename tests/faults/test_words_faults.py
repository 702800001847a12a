"""Faults where ser said too little or said it badly, tried as a user meets them: a class
no training side holds (said per fold), a sweep whose cells' weights were deleted (named
by `ser report`), `ser predict --stream -` on an empty stdin (one line, exit 1), log lines
cut at 80 columns in a file, a stacked fold's seconds read as a fold's own, `session5`
against LOSO's fold 5 (why they differ, said and checked), and the best epoch unseen on a
curves plot when it is the last."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ser.cache.manifest import Manifest
from ser.cache.store import FeatureStore
from ser.synth.manifest import example_columns
from tests.refused import one_line, ser
from tests.stores import LABEL_CYCLE, add_labelled_set

IS13 = ("is13", "audio", "utterance", 7, "float32")
SMALL: tuple[str | Path, ...] = ("--features", "is13", "--fusion", "none", "--classes", "4")
SMALL += ("--epochs", "2", "--batch-size", "8", "--device", "cpu")
SMALL += ("--processes", "1", "--threads", "1")
PER_DIALOG = 4
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def store(labelled_stores: Callable[..., Path]) -> Path:
    return labelled_stores({"is13": IS13}, per_dialog=PER_DIALOG)


# -- a class no training side holds ----------------------------------------------------


def store_without_sad_before_session5(path: Path) -> Path:
    """`tests.stores.labelled_store`'s utterances, with every sad one of sessions 1-4
    neutral instead: only session 5 holds sad."""
    ids = [
        f"Ses0{s}{g}_impro0{d}_{'FM'[u % 2]}{u:03d}"
        for s in range(1, 6)
        for d, g in enumerate("FM")
        for u in range(PER_DIALOG)
    ]
    labels = [LABEL_CYCLE[i % len(LABEL_CYCLE)] for i in range(len(ids))]
    session5 = [i.startswith("Ses05") for i in ids]
    labels = ["neu" if c == "sad" and not s else c for c, s in zip(labels, session5, strict=True)]
    cols = example_columns(ids)
    cols["label"], cols["order"] = labels, [i % PER_DIALOG for i in range(len(ids))]
    add_labelled_set(FeatureStore.create(path, Manifest.from_columns(cols)), "is13", IS13)
    return path


def test_a_class_missing_from_training_is_said_with_its_fold(tmp_path: Path) -> None:
    """Before, `--sampler balanced` drew among the classes there and said nothing."""
    store = store_without_sad_before_session5(tmp_path / "s.zarr")
    args = ("train", "--store", store, *SMALL, "--protocol", "session5", "--seeds", "1")
    done = ser(*args, "--sampler", "balanced", "--out", tmp_path / "runs", "--name", "b")
    assert done.exit_code == 0, done.output
    lines = [line for line in done.stderr.splitlines() if "no training utterance" in line]
    assert len(lines) == 1, done.stderr
    said = re.fullmatch(
        r"session5 \(every seed\): no training utterance of sad \((\d+) in its test side\): "
        r"the model cannot learn it; --sampler balanced draws only the other 3",
        lines[0],
    )
    assert said is not None and int(said[1]) > 0, lines[0]
    # Without the balanced sampler the class is still never learnt: said all the same.
    plain = ser(*args, "--out", tmp_path / "runs", "--name", "s")
    assert plain.exit_code == 0, plain.output
    assert "no training utterance of sad" in plain.stderr
    assert "--sampler balanced" not in plain.stderr


# -- a sweep whose cells' weights were deleted -----------------------------------------


def test_the_sweep_report_names_a_cell_whose_weights_were_deleted(
    store: Path, tmp_path: Path
) -> None:
    """Before, the table showed "-" where it read them and nothing named the files."""
    spec = tmp_path / "one.toml"
    spec.write_text('name = "one"\n[grid]\nepochs = [1]\n')
    out = tmp_path / "out"
    pairs = zip(SMALL[::2], SMALL[1::2], strict=True)
    fixed = [x for a, b in pairs if a != "--epochs" for x in ("--fix", f"{str(a)[2:]}={b}")]
    args: tuple[str | Path, ...] = ("sweep", spec, "--store", store, "--out", out, *fixed)
    swept = ser(*args, "--fix", "seeds=1", "--fix", "protocol=session5")
    assert swept.exit_code == 0, swept.output
    (cell,) = (out / "cells").iterdir()
    whole = ser("report", out)
    assert whole.exit_code == 0 and "missing:" not in whole.stderr, whole.output
    weights = cell / "checkpoints" / "seed0_session5.safetensors"
    weights.unlink()
    report = ser("report", out)
    assert report.exit_code == 0, report.output
    lines = [line for line in report.stderr.splitlines() if line.startswith("missing: ")]
    assert len(lines) == 1, report.stderr
    assert f"[{cell.name}]: its checkpoint {weights} is missing" in lines[0]
    assert lines[0].endswith(f"delete {cell} and run the sweep again to train it anew")


# -- `ser predict --stream -` on an empty stdin ----------------------------------------


@pytest.mark.slow
def test_an_empty_stdin_stream_is_one_line_not_silence(audio_run: Path) -> None:
    """Before: exit 0, nothing on stdout, nothing said."""
    empty = ser_input(b"", "predict", "--run", audio_run, "--stream", "-", "--device", "cpu")
    line = one_line(empty, code=1)
    assert line.startswith("error: --stream -: stdin held no audio"), line
    assert "16 kHz mono 16-bit PCM" in line and not empty.stdout


def ser_input(data: bytes, *args: str | Path) -> Any:
    from click.testing import CliRunner

    from ser.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], input=data)


# -- log lines in a file ---------------------------------------------------------------


def test_log_lines_in_a_file_are_never_cut_at_80_columns(crema_d_corpus, tmp_path: Path) -> None:
    """`ser extract 2>log`: rich cut its execution and disk lines mid-sentence."""
    from ser.synth.acted import write_manifest

    listed = write_manifest(crema_d_corpus, tmp_path / "corpus.csv")
    args = ("extract", listed, "--store", tmp_path / "m.zarr", "--features", "logmel")
    result = ser(*args)  # its stderr is no terminal, as in a log
    lines = result.stderr.splitlines()
    assert any(len(line) > 80 for line in lines), result.stderr  # long lines were there
    threads = [line for line in lines if "computes with torch threads" in line]
    assert len(threads) == 1 and threads[0].endswith(")"), result.stderr
    assert all(line.count("(") == line.count(")") for line in lines), result.stderr


# -- a stacked fold's seconds ----------------------------------------------------------


def test_a_stacked_fold_s_line_gives_the_stacked_model_s_time(store: Path, tmp_path: Path) -> None:
    """Before: "5.3 s: 1/5 of its stacked model's time" beside "26.2 s" of a fold of the
    same size trained alone, read as a fold five times faster."""
    args = ("train", "--store", store, *SMALL, "--protocol", "loso", "--seeds", "1")
    done = ser(*args, "--members-at-once", "5", "--out", tmp_path, "--name", "stacked")
    assert done.exit_code == 0, done.output
    said = re.findall(
        r"seed 0 (fold\d): .*\(best epoch \d+, ([\d.]+) s for 5 stacked members, ([\d.]+) s "
        r"a member\)",
        done.stderr,
    )
    assert [fold for fold, _, _ in said] == [f"fold{k}" for k in range(1, 6)], done.stderr
    record = json.loads((tmp_path / "stacked" / "run.json").read_text())
    for (_, whole, share), entry in zip(said, record["folds"], strict=True):
        assert entry["stacked"] == 5  # the record keeps its share, as every record has
        assert float(share) == pytest.approx(entry["seconds"], abs=0.05)
        assert float(whole) == pytest.approx(5 * entry["seconds"], abs=0.05)


# -- session5 and LOSO's fold 5 ----------------------------------------------------------


def test_session5_and_loso_fold5_differ_by_their_seeding_alone(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/train.md (and distributed.md, at length) says why the two score differently
    with one seed: the fold's place in its protocol seeds its batch order (and a stack its
    dropout). Given fold 5's place, session5 trained alone repeats LOSO's fold 5 alone."""
    import ser.train.group as group
    from ser.models import ModelConfig
    from ser.train.recipe import TrainConfig, train

    said = " ".join((DOCS / "train.md").read_text().split())
    assert "`--protocol session5` and LOSO's fold 5 hold the same sides but score" in said
    assert "### Why session5 and LOSO's fold 5 differ" in (DOCS / "distributed.md").read_text()

    def losses(protocol: str, name: str) -> list[float]:
        config = TrainConfig(
            store=str(store), features=("is13",), model=ModelConfig(fusion="none"),
            classes="4", protocol=protocol, epochs=3, batch_size=8, seeds=1, device="cpu",
            out=str(tmp_path), name=name, members_at_once=1,
        )  # fmt: skip
        (entry,) = [e for e in train(config).folds if e.fold in ("fold5", "session5")]
        return list(entry.curves["train_loss"])

    fold5, session5 = losses("loso", "loso"), losses("session5", "s5")
    assert fold5 != session5  # k = 4 against k = 0: another batch order
    placed = property(lambda job: job.seed * 1000 + (4 if job.fold.name == "session5" else job.k))
    monkeypatch.setattr(group.Job, "stream", placed)
    assert losses("session5", "s5-as-fold5") == fold5


# -- the best epoch on a curves plot ---------------------------------------------------


def test_the_best_epoch_is_seen_on_the_curves_when_it_is_the_last() -> None:
    """Before: a dotted line alone, on the axis's edge and its grid line."""
    from ser.report.plots import _curves_figure
    from tests.report.test_runs import _record

    record = _record("mit")
    last = replace(record, folds=tuple(replace(f, best_epoch=3) for f in record.folds))
    ua_axes = _curves_figure(last).axes[1]
    dots = [
        np.asarray(line.get_xydata()).tolist()
        for line in ua_axes.get_lines()
        if line.get_marker() not in (None, "None", "")
    ]
    assert dots == [[[3.0, 52.0]]] * 2  # a dot on each fold's val UA at its best epoch
    assert "dot and dotted line: best epoch" in ua_axes.get_title()
