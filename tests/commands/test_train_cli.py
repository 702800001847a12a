"""`ser train` and `ser report` through click's runner."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from ser.cache import FeatureStore
from ser.cli import main
from ser.heads.metrics import Metrics
from ser.runs.fold_entry import FoldEntry
from tests.stores import add_incomplete_set, add_labelled_set, add_layer_sets, labelled_store


def ser(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


IS13 = ("is13", "audio", "utterance", 7, "float32")
SCORES = Metrics.from_json({"ua": 1.0, "wa": 2.0, "f1": 3.0})  # a fold line's scores
BERT = ("bert", "text", "utterance", 5, "float32")


def make_store(path: Path) -> FeatureStore:
    return labelled_store(path, {"is13": IS13, "bert-tiny": BERT})


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "features.zarr"
    make_store(path)
    return path


SMALL = (
    "--fusion",
    "none",
    "--classes",
    "4",
    "--epochs",
    "3",
    "--batch-size",
    "8",
    "--lr",
    "0.01",
    "--device",
    "cpu",
)


def test_train_json_summary(store_path: Path, tmp_path: Path) -> None:
    result = ser(
        "train",
        "--store",
        store_path,
        "--features",
        "is13",
        *SMALL,
        "--protocol",
        "loso",
        "--seeds",
        "1",
        "--out",
        tmp_path,
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # one JSON object, nothing else on stdout
    assert list(summary) == ["wa", "ua", "f1", "wa_std", "ua_std", "folds", "protocol", "seconds"]
    assert all(
        isinstance(summary[k], float) for k in ("wa", "ua", "f1", "wa_std", "ua_std", "seconds")
    )
    assert summary["protocol"] == "loso"
    record = json.loads((tmp_path / "is13_none_loso_c4" / "run.json").read_text())
    assert [(f["fold"], f["ua"]) for f in summary["folds"]] == [
        (f["fold"], f["metrics"]["ua"]) for f in record["folds"]
    ]
    for key in ("wa", "ua", "f1"):
        assert summary[key] == pytest.approx(np.mean([f[key] for f in summary["folds"]]))
        assert 0.0 <= summary[key] <= 100.0
    assert summary["ua"] > 50.0  # percent, and the features carry class signal
    assert record["config"]["precision"] == "fp32"  # --precision auto on a CPU


def test_train_precision_option(store_path: Path, tmp_path: Path) -> None:
    args = ["train", "--store", store_path, "--features", "is13", *SMALL, "--out", tmp_path]
    result = ser(*args, "--protocol", "session5", "--precision", "bf16", "--name", "p")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "p" / "run.json").read_text())["config"]["precision"] == "bf16"
    bad = ser(*args, "--precision", "int8")
    assert bad.exit_code == 2 and "int8" in bad.output


def test_val_session_is_next_group_by_its_old_name(store_path: Path, tmp_path: Path) -> None:
    """`--val next-group` holds out the next session; `--val session`, its old name, is
    taken with a note; the record keeps writing `session`, so a run made before the
    rename resumes under the new name (nothing left to train: no config difference)."""
    args = ["train", "--store", store_path, "--features", "is13", *SMALL, "--out", tmp_path]
    old = ser(*args, "--protocol", "session5", "--val", "session", "--name", "v")
    assert old.exit_code == 0, old.output
    assert "note: --val session is now spelled --val next-group" in old.stderr
    record = json.loads((tmp_path / "v" / "run.json").read_text())
    assert record["config"]["val"] == "session" and record["folds"][0]["val_groups"] == [1]
    again = ser(*args, "--protocol", "session5", "--val", "next-group", "--name", "v")
    assert again.exit_code == 0 and "note:" not in again.stderr, again.output
    resumed = json.loads((tmp_path / "v" / "run.json").read_text())
    assert (resumed["config"], resumed["folds"]) == (record["config"], record["folds"])


def test_train_two_seeds_table_and_envvar(store_path: Path, tmp_path: Path) -> None:
    result = ser(
        "train",
        "--features",
        "is13",
        *SMALL,
        "--protocol",
        "session5",
        "--seeds",
        "2",
        "--out",
        tmp_path,
        "--name",
        "two",
        env={"SER_STORE": str(store_path)},
    )
    assert result.exit_code == 0, result.output
    assert "mean" in result.stdout and "±" in result.stdout and "session5" in result.stdout
    record = json.loads((tmp_path / "two" / "run.json").read_text())
    uas = [f["metrics"]["ua"] for f in record["folds"]]
    assert [f["seed"] for f in record["folds"]] == [0, 1]
    assert record["summary"]["ua"] == pytest.approx(np.mean(uas))
    assert record["summary"]["ua_std"] == pytest.approx(np.std(uas, ddof=1))
    assert "seed 1 session5: UA" in result.stderr  # per-fold notes go to stderr


def _refused(result: Result, *phrases: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output
    for phrase in phrases:
        assert phrase in result.stderr


def test_refuses_missing_and_incomplete_sets(store_path: Path, tmp_path: Path) -> None:
    _refused(
        ser("train", "--store", store_path, "--features", "mpnet", *SMALL, "--out", tmp_path),
        "'mpnet' is not in the store",
        "bert-tiny, is13",
    )
    path = tmp_path / "partial.zarr"
    store = make_store(path)
    add_incomplete_set(store)
    _refused(
        ser("train", "--store", path, "--features", "logmel", *SMALL, "--out", tmp_path),
        "'logmel80'",
        "incomplete",
    )
    _refused(
        ser("train", "--store", tmp_path / "nothing.zarr", "--features", "is13", *SMALL),
        "no feature store",
    )


def test_refuses_resume_on_changed_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "features.zarr"
    store = make_store(path)
    args = (
        "train",
        "--store",
        path,
        "--features",
        "is13",
        *SMALL,
        "--protocol",
        "session5",
        "--seeds",
        "1",
        "--out",
        tmp_path / "runs",
    )
    assert ser(*args).exit_code == 0
    add_labelled_set(store, "is13", IS13, seed=5, overwrite=True)  # recomputed: another fingerprint
    _refused(ser(*args), "other features", "is13:", "--name", "--overwrite")
    assert ser(*args, "--overwrite").exit_code == 0


@pytest.mark.slow
def test_report_table_and_plots(store_path: Path, tmp_path: Path) -> None:
    for name, features, fusion in (("audio", "is13", "none"), ("text", "bert", "none")):
        result = ser(
            "train",
            "--store",
            store_path,
            "--features",
            features,
            *SMALL,
            "--fusion",
            fusion,
            "--protocol",
            "session5",
            "--seeds",
            "1",
            "--out",
            tmp_path,
            "--name",
            name,
        )
        assert result.exit_code == 0, result.output
    result = ser("report", tmp_path / "audio", tmp_path / "text", "--plots", tmp_path / "plots")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("| run | features") and len(lines) == 6  # and the legend
    assert lines[2].startswith("| audio | is13 |") and lines[3].startswith("| text | bert |")
    # one seed of the one session5 fold: its number and n = 1, no "± 0.00"
    assert "(n = 1)" in lines[2] and "| 1 fold of 1 seed |" in lines[2] and "± 0.00" not in lines[2]
    pngs = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert pngs == [
        "audio_confusion.png",
        "audio_curves.png",
        "text_confusion.png",
        "text_curves.png",
    ]
    assert all((tmp_path / "plots" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    csv = ser("report", tmp_path / "audio", "--format", "csv")
    assert csv.exit_code == 0 and csv.stdout.splitlines()[0].startswith("run,features,fusion")
    _refused(ser("report", tmp_path / "missing"), "missing")


def test_staged_option_is_refused_outside_late_prob(store_path: Path, tmp_path: Path) -> None:
    result = ser("train", "--store", store_path, "--features", "is13", *SMALL, "--staged")
    assert result.exit_code == 2
    assert "staged does not apply to fusion 'none'" in result.output


def test_live_progress_redraws_from_the_epoch_hook() -> None:
    import io

    from rich.console import Console

    from ser.track.console import ConsoleProgress

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    clock = iter([10.0, 10.1, 10.3, 10.4])  # read once per epoch
    progress = ConsoleProgress(console, live=True)
    with progress.bar:
        progress.clock = lambda: next(clock)
        assert not progress.bar.live.auto_refresh  # no redraw thread beside training
        progress.fold_start(0, "session5", epochs=4)
        draws = []
        for epoch in range(1, 5):
            before = out.tell()
            progress.epoch(epoch, 4, 0.5, 50.0)
            draws.append(out.tell() > before)
        entry = FoldEntry(0, "session5", SCORES, best_epoch=4, seconds=1.0)
        progress.fold_end(0, "session5", entry)
    # Redrawn at most every REDRAW_SECONDS (0.25 s) and at the last epoch.
    assert draws == [True, False, True, True]
    assert "4/4" in out.getvalue() and "val UA 50.0" in out.getvalue()


def test_without_a_terminal_each_fold_logs_plain_epoch_lines(
    store_path: Path, tmp_path: Path
) -> None:
    # CliRunner's stderr is no terminal, as with `ser train ... 2>log`.
    args = ["train", "--store", store_path, "--features", "is13", *SMALL, "--out", tmp_path]
    result = ser(*args, "--protocol", "session5", "--name", "log")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if ": epoch " in line]
    # 3 epochs in well under 30 s: the first and the last, each with every field
    assert len(lines) == 2, result.stderr
    first, last = lines
    assert first.startswith("seed 0 session5: epoch 1/3  loss ")
    assert last.startswith("seed 0 session5: epoch 3/3  loss ")
    for line in lines:
        assert "  val UA " in line and "  elapsed " in line and "  eta " in line
    assert last.endswith("eta 0:00")
    # The table: one seed of one fold is its number, n = 1, never "± 0.00"; the pooled
    # scores in a row of their own; rows unwrapped though stdout is a file (80 wide).
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("│")}
    assert "(n = 1)" in rows["mean"] and "1 fold of 1 seed" in rows["mean"]
    assert "all folds" in rows["pooled"] and "±" not in result.stdout
    record = json.loads((tmp_path / "log" / "run.json").read_text())
    assert f"{record['pooled']['ua']:.2f}" in rows["pooled"]


def test_messages_are_one_line_in_a_log() -> None:
    import io

    from rich.console import Console

    from ser.track.console import ConsoleProgress

    out = io.StringIO()
    progress = ConsoleProgress(Console(file=out, width=30), live=False, plain=True)
    text = "run: cpu, 2 torch threads (all 2, brief waits: affinity 2 cores, 1 worker)"
    progress.message(text)
    assert out.getvalue() == text + "\n"  # not wrapped at the console's 30 columns
    entry = FoldEntry(0, "session5", SCORES, best_epoch=6, seconds=8.0,
                      stacked=3)  # fmt: skip
    progress.fold_end(0, "session5", entry)
    assert out.getvalue().splitlines()[1] == (
        "seed 0 session5: UA 1.00 WA 2.00 F1 3.00 (best epoch 6, 24.0 s for 3 stacked "
        "members, 8.0 s a member)"
    )  # the fold's line too


def test_plain_epoch_lines_are_throttled_to_one_per_interval() -> None:
    import io

    from rich.console import Console

    from ser.track.console import ConsoleProgress

    out = io.StringIO()
    times = iter([0.0, 10.0, 20.0, 35.0, 50.0, 70.0, 80.0, 90.0])  # fold start, per epoch
    progress = ConsoleProgress(
        Console(file=out, width=40), live=False, plain=True, interval=30, clock=lambda: next(times)
    )
    with progress.bar:
        progress.fold_start(0, "fold1..fold5 x seeds 0-2 (15 members stacked)", epochs=6)
        for epoch in range(1, 7):
            progress.epoch(epoch, 6, 1.0 / epoch, 40.0 + epoch)
        entry = FoldEntry(0, "fold1", SCORES, best_epoch=6, seconds=80.0)
        progress.fold_end(0, "fold1", entry)
        progress.epoch(1, 2, 0.5, math.nan)  # --final: no fold_start, no validation
    lines = [line for line in out.getvalue().splitlines() if ": epoch " in line]
    # epoch 1 (first), 4 (30 s after the last line), 6 (last); not 2, 3, 5
    assert [line.split(": epoch ")[1].split()[0] for line in lines] == ["1/6", "4/6", "6/6", "1/2"]
    assert lines[-1].startswith("training: epoch 1/2  loss 0.500  no validation  elapsed 0:00")
    assert lines[1] == (
        "fold1..fold5 x seeds 0-2 (15 members stacked): epoch 4/6  loss 0.250  "
        "val UA 44.0  elapsed 0:50  eta 0:27"
    )  # one line each, though the console is 40 wide; no "seed 0" before seeds 0-2
    # (eta: epochs 2-4 took 40 s, 13.3 s each; epoch 1, which holds the set-up, is left out)


@pytest.mark.slow
@pytest.mark.parametrize(
    "fusion",
    [
        ("--fusion", "mit", "--d-model", "8", "--heads", "2", "--layers", "1",
         "--decoder-layers", "1", "--queries", "3"),
        ("--fusion", "add", "--fusion-at", "logits", "--loss", "perspective", "--d-model", "8",
         "--heads", "2"),
    ],
    ids=["msmser", "fusion-study"],
)  # fmt: skip
def test_every_layer_of_a_speech_model_trains_beside_a_text_model(
    fusion: tuple[str, ...], tmp_path: Path
) -> None:
    store = labelled_store(tmp_path / "layers.zarr", {})
    add_layer_sets(store, "tiny-hubert", ("hubert", "audio", "frame", 6, "float16"), range(4))
    add_layer_sets(store, "tiny-bert", ("bert", "text", "token", 5, "float16"), range(3))
    args = ["--store", store.path, "--out", tmp_path, "--features", "tiny-hubert.L*+tiny-bert"]
    small = ["--classes", "4", "--epochs", "2", "--seeds", "1", "--device", "cpu",
             "--protocol", "session5"]  # fmt: skip
    result = ser("train", *args, *small, *fusion, "--name", "run")
    assert result.exit_code == 0, result.output
    assert "layer weights of tiny-hubert.L0-3 (softmax, 1 fold entry; uniform 0.250)" in (
        result.stdout
    )
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["config"]["features"] == "tiny-hubert.L*+tiny-bert"
    assert list(record["fingerprints"]) == ["tiny-hubert.L0-3", "tiny-bert"]
    assert list(record["folds"][0]["layer_weights"]) == ["tiny-hubert.L0-3"]
    report = ser("report", tmp_path / "run", "--plots", tmp_path / "plots")
    assert report.exit_code == 0 and "| tiny-hubert.L0-3: L" in report.stdout
    assert (tmp_path / "plots" / "run_layers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
