"""`ser sweep` and `ser report` on a sweep folder, through click's runner."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ser.cli import main

SETS = {
    "hubert-tiny.L2": ("hubert", "audio", "frame", 6, "float16"),
    "is13": ("is13", "audio", "utterance", 7, "float32"),
    "bert-tiny": ("bert", "text", "token", 5, "float16"),
}
TINY = ("epochs=2", "batch-size=8", "seeds=2", "protocol=session5", "d-model=8", "lr=0.01")


def ser(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def fixes(*extra: str) -> list[str]:
    return [x for value in (*TINY, *extra) for x in ("--fix", value)]


@pytest.fixture(scope="session")
def store_path(labelled_stores: Callable[..., Path]) -> Path:
    """The labelled store of `SETS`, shared by the session; read only."""
    return labelled_stores(SETS, per_dialog=6)


@pytest.mark.slow
def test_msmser_table2_end_to_end_with_the_published_numbers(
    store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sweep"
    args = ("sweep", "msmser-table2", "--store", store_path, "--out", out,
            "--set", "audio=hubert", "--set", "text=bert",
            *fixes("heads=2", "layers=1"))  # fmt: skip
    dry = ser(*args, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "w/o SelfAtt" in dry.output and "estimated total" in dry.output
    assert "6 cells: 0 finished, 6 to train (dry run):" in dry.output
    # No cell trained yet: MSMSER timed by a short probe of its first cell, what it
    # measured said; without the probe, how rough the estimate is.
    assert "probe: msmser: timed on Text: " in dry.output
    assert "(from 1 timed probe(s) on this machine)" in dry.output
    assert "(uncalibrated: " in ser(*args, "--dry-run", "--no-probe").output
    # MSMSER cells: one process, `ser train`'s threads (a cell per process unmeasured for
    # them), where a big cell's runs may still go to processes (`ser.runtime.execution`).
    assert "would train as 1 process x its default threads (default for msmser" in dry.output
    assert "each cell's runs as ser train shares them" in dry.output
    assert not out.exists()  # a dry run trains nothing
    result = ser(*args, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    # Said before anything trains: what is left and how long it should take.
    assert "6 cells: 0 finished, 6 to train; ~" in result.output
    assert "training msmser-table2 'Full' (2 members); ~" in result.output
    assert "cell 6/6 done: msmser-table2 'Full'" in result.output  # one log line per cell
    done = next(line for line in result.output.splitlines() if line.startswith("cell 6/6"))
    assert " UA " in done and " WA " in done
    # Finished cells are not to train again, and their measured times calibrate others.
    assert "6 cells: 6 finished, 0 to train" in ser(*args, "--dry-run").output
    table3 = ser(*args[:1], "msmser-table3", *args[2:], "--dry-run").output
    # Full's masked cells train it again (once for both); w/o RMM's train with it.
    shared = "(3 tested from another cell's training)"
    assert f"6 cells: 1 finished, 5 to train {shared} (dry run):" in table3
    assert "calibrated on the measured times of 1 trained cell(s)" in table3
    assert (summary["cells"], summary["done"], summary["failed"]) == (6, 6, 0)
    report = ser("report", out, "--plots", tmp_path / "plots")
    assert report.exit_code == 0, report.output
    text = report.output
    assert "MSMSER Table 2" in text and "its protocol: 5-fold leave-one-session-out" in text
    assert "| Full |" in text and "| 76.40 | 75.20 | reference |" in text
    encoder = next(line for line in text.splitlines() if line.startswith("| w/o Encoder |"))
    assert "| 71.90 | 70.90 |" in encoder and ("(p=" in encoder or "(n=" in encoder)
    assert "Ours: session5" in text
    csv = ser("report", out, "--format", "csv").output.splitlines()
    assert csv[0].startswith("sweep,table,cell") and len(csv) == 1 + 6 * 2  # cells x seeds


@pytest.mark.slow
def test_fusion_study_end_to_end_with_its_tables_and_heatmap(
    store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fusion"
    result = ser("sweep", "fusion-study", "--store", store_path, "--out", out,
                 "--set", "text=bert", *fixes("heads=2"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "26 cells, 26 trained" in result.output
    report = ser("report", out, "--plots", tmp_path / "plots")
    assert report.exit_code == 0, report.output
    assert "| LGF ADD-Fusion / L_p |" not in report.output  # the row label is the paper's
    assert "| LGF ADD-Fusion |" in report.output and "85.40 ± 0.40" in report.output
    assert "Fusion study Table 3" in report.output and "90.52" in report.output
    assert (tmp_path / "plots" / "fusion-study_fusion-study.png").stat().st_size > 0


@pytest.mark.slow
def test_queries_figure(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "queries"
    result = ser("sweep", "msmser-queries", "--store", store_path, "--out", out,
                 "--set", "text=bert", *fixes("heads=2", "layers=1", "seeds=1"))  # fmt: skip
    assert result.exit_code == 0, result.output
    report = ser("report", out, "--plots", tmp_path / "plots")
    assert "L = 50" in report.output
    assert (tmp_path / "plots" / "msmser-queries_msmser-queries.png").stat().st_size > 0


@pytest.fixture(scope="module")
def layers_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three pooled layers of an encoder named like a published checkpoint, two frame
    layers of another (no weighted sum over frames): the signal strongest in the middle."""
    from tests.sweep.layered import layered_store

    path = tmp_path_factory.mktemp("probe_cli") / "features.zarr"
    layers = [("hubert-base-ls960", n, "mean", s) for n, s in enumerate((0.3, 2.0, 0.8))]
    layered_store(path, [*layers, ("tiny-b", 1, None, 1.0), ("tiny-b", 2, None, 0.5)])
    return path


@pytest.mark.slow
def test_probe_sweep_end_to_end_every_layer_beside_the_published_probes(
    layers_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "probe"
    args = ("sweep", "probe", "--store", layers_path, "--out", out,
            "--fix", "epochs=3", "--fix", "seeds=2", "--fix", "batch-size=16")  # fmt: skip
    dry = ser(*args, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "6 cells: 0 finished, 6 to train (dry run):" in dry.output
    assert "probe  hubert-base-ls960 L1  [" in dry.output
    assert "]  hubert-base-ls960.L1.mean none loso 3 epochs x 2 seeds" in dry.output
    assert "tiny-b.L2 none loso 3 epochs x 2 seeds = 10 members" in dry.output
    assert "]  hubert-base-ls960.L0-2.mean none loso" in dry.output  # the weighted sum
    result = ser(*args)
    assert result.exit_code == 0, result.output
    assert "sweep probe: 6 cells, 6 trained" in result.output
    report = ser("report", out, "--plots", tmp_path / "plots")
    assert report.exit_code == 0, report.output
    text = report.output
    for stem, n in [("hubert-base-ls960", 0), ("hubert-base-ls960", 1), ("hubert-base-ls960", 2),
                    ("tiny-b", 1), ("tiny-b", 2)]:  # fmt: skip
        assert f"| {stem} | {n}" in text
    assert text.count(" (best) |") == 2  # one best layer per encoder
    assert "| hubert-base-ls960 | weighted sum (weights peak at " in text
    assert "| tiny-b | weighted sum" not in text
    assert "Published, SUPERB-style: emotion2vec (Ma et al., 2023), Table 2; its " in text
    # hubert-base-ls960's published probes: SUPERB's WA, EmoBox's IEMOCAP UA, WA, F1.
    assert "| HuBERT base | 64.90 | 63.87 | 63.10 | 63.45 |" in text
    assert "| none (EmoBox has no tiny-b) | - | - | - | - |" in text
    assert (tmp_path / "plots" / "probe_probe.png").stat().st_size > 0
    csv = ser("report", out, "--format", "csv").output.splitlines()
    assert len(csv) == 1 + 6 * 2 * 5 and csv[1].endswith(",63.87,63.1")  # cells x seeds x folds


def test_a_probe_of_an_encoder_the_store_lacks_exits_2_naming_what_it_holds(
    layers_path: Path, tmp_path: Path
) -> None:
    result = ser("sweep", "probe", "--store", layers_path, "--out", tmp_path / "x",
                 "--set", "encoders=wavlm-base-plus")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "has no layer sets of wavlm-base-plus; it holds layers of: hubert-base-ls960 " in (
        result.output
    )
    assert "Traceback" not in result.output and not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("msmser-tabel2",), "neither a preset"),
        (("msmser-table2", "--grid", "colour=red"), "'colour' is not a ser train option"),
        (("msmser-table2", "--fix", "epochs"), "expected KEY=VALUE"),
        (("msmser-table2", "--set", "audio=wav2vec"), "'wav2vec' is not in the store"),
        (("msmser-table2", "--set", "epochs=3", "--set", "bogus=1"), "--fix epochs=3"),
    ],
)
def test_bad_input_exits_2_and_trains_nothing(
    store_path: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = ser("sweep", *args, "--store", store_path, "--out", tmp_path / "x", *fixes())
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x" / "cells").exists()


def test_progress_lines_name_a_stacked_task_and_each_cell_s_share() -> None:
    import io
    from types import SimpleNamespace as NS

    from rich.console import Console

    from ser.commands.sweep import _Display
    from ser.sweep.runner import Outcome

    cells = [NS(key=f"k{i}", members=2, cell=NS(table="t", label=f"c{i}")) for i in range(4)]
    # The last is tested from another's training: its members train no more.
    plan = NS(cells=[NS(cell=c, seconds=300.0, shared=c.key == "k3") for c in cells])
    out = io.StringIO()
    display = _Display(Console(file=out, width=40), plan, live=False)
    display.start(cells)
    display.heartbeat("seed 0 session5: epoch 1/2, training step 3/9")
    display.told(cells[:3], "session5 x seeds 0-1: epoch 1/2  loss 1.000  eta 0:09")  # a worker's
    display.update(Outcome("k0", "done", "", 30.0, 50.0, 60.0, shared=4), cells[0])
    assert out.getvalue().splitlines() == [
        "training 4 cells as one stacked model: t 'c0', t 'c1', t 'c2' and 1 more (6 members); "
        "~20 min estimated",
        "  seed 0 session5: epoch 1/2, training step 3/9",
        "  t 'c0', t 'c1' and 1 more: session5 x seeds 0-1: epoch 1/2  loss 1.000  eta 0:09",
        "cell 1/4 done: t 'c0' [k0] UA 50.00 WA 60.00 (30 s: 1/4 of 4 cells trained as one model)",
    ]
