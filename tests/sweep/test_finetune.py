"""The finetune preset: its grid made from the tiny HuBERT's cached layers, a k whose
layer is missing said with the command that adds it, and its table (scores, trainable
parameters, seconds), CSV and figure from one sweep of tiny cells (`ser.sweep.finetune`)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from ser.cache import FeatureStore
from ser.cli import main
from ser.errors import ConfigError
from ser.sweep.cells import resolve_cells, tasks
from ser.sweep.finetune import COLUMNS, CSV_COLUMNS, finetune_table, trainable
from ser.sweep.plots import sweep_plots
from ser.sweep.presets import FINETUNE
from ser.sweep.report import sweep_report
from ser.sweep.results import CellResult, load_sweeps
from ser.sweep.runner import run_sweep, write_manifest
from ser.sweep.spec import load_spec

# One held-out session, one epoch, one seed: each cell trains in a second or two.
TINY = {"epochs": "1", "batch-size": "16", "seeds": "1", "protocol": "session5", "d-model": "8"}
GRID = ["k = 0 frozen", "k = 1 whole", "k = 1 LoRA r=8", "k = 2 whole", "k = 2 LoRA r=8"]


@dataclass(frozen=True)
class Swept:
    store: Path
    out: Path
    stem: str
    said: list[str]
    results: list[CellResult]


@pytest.fixture(scope="module")
def swept(layered_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Swept:
    """The preset swept on every layer of the tiny HuBERT (2 layers), as extracted once a
    session; the store is copied, the tests remove sets from copies of it."""
    tmp = tmp_path_factory.mktemp("finetune")
    store, out = tmp / "f.zarr", tmp / "sweep"
    shutil.copytree(layered_store, store)
    table, said = finetune_table([str(store)], {"encoder": "tiny-hubert"})
    spec = load_spec(FINETUNE, fixed=TINY, store=[str(store)], made=table)
    cells = resolve_cells(spec.cells, [str(store)], out)
    write_manifest(spec, cells, out)
    outcomes = run_sweep(cells, out)
    assert [o.status for o in outcomes] == ["done"] * len(GRID)
    stem = str(table.rows[0].meta["encoder"])
    return Swept(store, out, stem, said, load_sweeps(out)[0]["results"])


def test_the_grid_is_k_up_to_the_layer_count_whole_and_lora(swept: Swept) -> None:
    s = swept.stem
    assert [r.row["label"] for r in swept.results] == GRID
    configs = [r.row["config"] for r in swept.results]
    assert [c["features"] for c in configs] == [f"{s}.L{n}" for n in (2, 1, 1, 0, 0)]
    assert [c.get("finetune", []) for c in configs] == [
        [], [f"{s}.L1:top=1"], [f"{s}.L1:top=1,lora=8"], [f"{s}.L0:top=2"],
        [f"{s}.L0:top=2,lora=8"],
    ]  # fmt: skip
    assert {c["fusion"] for c in configs} == {"none"}  # the family: --fix fusion=... else
    # k = 4 is above the tiny HuBERT's 2 layers: said, never dropped silently.
    assert swept.said == [f"finetune: k = 4 left out: {s} has 2 layers"]


def test_whole_and_lora_cells_train_as_separate_tasks(swept: Swept, tmp_path: Path) -> None:
    table, _ = finetune_table([str(swept.store)], {"lora": "4", "encoder": swept.stem})
    spec = load_spec(FINETUNE, fixed=TINY, store=[str(swept.store)], made=table)
    cells = resolve_cells(spec.cells, [str(swept.store)], tmp_path)
    assert spec.cells[2].label == "k = 1 LoRA r=4"
    assert len({c.key for c in cells}) == len(GRID)
    # Other models: never said to train as one stacked model.
    assert [len(task) for task in tasks(cells)] == [1] * len(GRID)


def test_a_missing_layer_is_said_with_the_command_that_adds_it(
    swept: Swept, tmp_path: Path
) -> None:
    copy = tmp_path / "f.zarr"
    shutil.copytree(swept.store, copy)
    FeatureStore.open(copy, "a").delete_feature_set(f"{swept.stem}.L0")
    table, said = finetune_table([str(copy)], {"encoder": swept.stem})
    assert [row.label for row in table.rows] == GRID[:3]
    line = said[0]
    assert line.startswith(f"finetune: k = 2 needs {swept.stem}.L0 (the frames of layer 0")
    assert f"which {copy} lacks; add it with: ser extract " in line
    assert "--features hubert" in line and "--hubert-layers 0" in line
    assert line in table.note  # the report says it too
    result = CliRunner().invoke(
        main, ["sweep", FINETUNE, "--store", str(copy), "--out", str(tmp_path / "o"),
               "--set", f"encoder={swept.stem}",
               *[x for k, v in TINY.items() for x in ("--fix", f"{k}={v}")], "--dry-run"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert line in result.stderr and "3 cells: 0 finished, 3 to train" in result.stdout


def test_the_table_columns_parameters_and_seconds(swept: Swept) -> None:
    report = sweep_report(swept.out)
    assert "| " + " | ".join(COLUMNS) + " |" in report
    assert f"finetune: k = 4 left out: {swept.stem} has 2 layers." in report
    size = {r.row["label"]: trainable(swept.out, r) for r in swept.results}
    # More layers train more values; LoRA's adapters fewer than the layers whole.
    assert size["k = 0 frozen"] < size["k = 1 LoRA r=8"] < size["k = 2 LoRA r=8"]
    assert size["k = 1 whole"] < size["k = 2 whole"]
    assert size["k = 1 LoRA r=8"] < size["k = 1 whole"]
    assert size["k = 2 LoRA r=8"] < size["k = 2 whole"]
    for r in swept.results:
        assert r.run is not None and r.run.seconds > 0
        line = next(x for x in report.splitlines() if x.startswith(f"| {r.row['label']} |"))
        assert f"| {size[r.row['label']]:,} | {r.run.seconds:.1f} |" in line
    lines = sweep_report(swept.out, fmt="csv").splitlines()
    assert lines[0].endswith(",".join(CSV_COLUMNS))
    fold = swept.results[1].run.folds[0]  # a line per (seed, fold): its own seconds
    assert lines[2].endswith(f",1,whole,{size['k = 1 whole']},{fold.seconds:.2f}")


def test_the_figure(swept: Swept, tmp_path: Path) -> None:
    written = sweep_plots(swept.out, tmp_path)
    assert [p.name for p in written] == ["finetune_finetune.png"]


def test_the_estimate_counts_the_tuned_layers(swept: Swept, tmp_path: Path) -> None:
    from ser.finetune.top_layers import top_parameters
    from ser.sweep.estimate import estimate

    table, _ = finetune_table([str(swept.store)], {"encoder": swept.stem})
    spec = load_spec(FINETUNE, fixed=TINY, store=[str(swept.store)], made=table)
    cells = resolve_cells(spec.cells, [str(swept.store)], tmp_path)
    store = FeatureStore.open(swept.store)
    params = {c.cell.label: estimate(c, store, {}).parameters for c in cells}
    model = str(store.info(f"{swept.stem}.L1").attrs["model"])
    assert params["k = 1 whole"] - params["k = 0 frozen"] == top_parameters(model, 1)
    assert params["k = 2 whole"] - params["k = 0 frozen"] == top_parameters(model, 2)


def test_refused_with_what_to_do(swept: Swept, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no layer frames of it; it holds the layer frames"):
        finetune_table([str(swept.store)], {"encoder": "wavlm"})
    with pytest.raises(ConfigError, match="give --store once"):
        finetune_table([str(swept.store), str(swept.store)], {})
    with pytest.raises(ConfigError, match="LoRA's rank"):
        finetune_table([str(swept.store)], {"lora": "0", "encoder": swept.stem})
    with pytest.raises(ConfigError, match="made from its store; give --store"):
        load_spec(FINETUNE)
    table, _ = finetune_table([str(swept.store)], {"encoder": swept.stem})
    with pytest.raises(ConfigError, match="takes encoder=STEM, lora=R only"):
        load_spec(FINETUNE, params={"audio": "is13"}, made=table)
    helped = CliRunner().invoke(main, ["sweep", "--help"]).output
    assert "finetune: how many of an encoder's top layers" in " ".join(helped.split())
