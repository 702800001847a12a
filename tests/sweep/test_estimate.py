"""A sweep's time estimate: what the folder already holds, calibration from measured
cells, staged models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ser.cache.store as store_module
from ser.sweep.cells import cell_dir, resolve_cells
from ser.sweep.estimate import UNCALIBRATED, estimate_sweep
from ser.sweep.spec import load_spec
from tests.stores import labelled_store
from tests.train.test_streamed_views import add_view

from .conftest import PARAMS, SETS, TINY


def cells_of(preset: str, store: Path, out: Path, **fixed: str) -> list[Any]:
    spec = load_spec(preset, params=PARAMS, fixed={**TINY, **fixed})
    return resolve_cells(spec.cells, str(store), out)


def write_record(out: Path, key: str, seconds: list[float], complete: bool, device: str) -> None:
    folds = [{"seed": s, "fold": "session5", "seconds": t} for s, t in enumerate(seconds)]
    record = {"name": key, "config": {}, "protocol": "session5", "classes": [], "folds": folds,
              "complete": complete, "timings": {"device": device}}  # fmt: skip
    path = cell_dir(out, key) / "run.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))


def test_finished_cells_are_not_to_train_and_measured_ones_calibrate_the_rest(
    store_path: Path, tmp_path: Path
) -> None:
    cells = cells_of("msmser-table3", store_path, tmp_path, seeds="2")  # 2 members a cell
    before = estimate_sweep(cells, tmp_path)
    assert len(before.to_train) == 6 and before.calibrated_on == 0
    assert before.note() == UNCALIBRATED
    # A row's masked tests are tested from its unmasked cell's training: no time of their own.
    assert [c.seconds > 0 for c in before.cells] == [True, False, False, True, False, False]
    assert [c.shared for c in before.cells] == [False, True, True, False, True, True]
    full, half, elsewhere, *rest = before.cells
    # Measured: twice the estimate, per member (the first finished, the second half-way).
    write_record(tmp_path, full.cell.key, [full.estimate.seconds] * 2, True, "cpu")
    write_record(tmp_path, half.cell.key, [half.estimate.seconds], False, "cpu")
    # Trained on another device: says nothing of this one's speed.
    write_record(tmp_path, elsewhere.cell.key, [1e6], False, "cuda:0")
    after = estimate_sweep(cells, tmp_path)
    assert after.calibrated_on == 2 and "calibrated on" in after.note()
    assert after.cells[0].finished and after.cells[0].seconds == 0
    assert len(after.to_train) == 5
    assert after.cells[1].trained == 1
    assert after.cells[1].seconds == pytest.approx(half.estimate.seconds * 0.5 * 2)
    # The first unfinished cell of a row trains for the row's others.
    assert after.cells[2].trained == 1 and after.cells[2].seconds == 0
    for old, new in zip(rest, after.cells[3:], strict=True):
        assert new.seconds == pytest.approx(old.seconds * 2)
    assert after.cells[3].seconds > 0
    assert after.seconds == pytest.approx(sum(c.seconds for c in after.cells))


def test_a_staged_model_counts_its_branch_stages(store_path: Path, tmp_path: Path) -> None:
    spec = tmp_path / "zhou.toml"
    spec.write_text(
        "[fixed]\nfusion = 'late-prob'\nfeatures = 'hubert+bert'\nepochs = 2\n"
        "protocol = 'session5'\nclasses = '4'\nd-model = 8\n"
        "[[cells]]\nlabel = 'staged'\nstaged = true\n"
        "[[cells]]\nlabel = 'one stage'\nstaged = false\n"
    )
    cells = resolve_cells(load_spec(str(spec)).cells, str(store_path), tmp_path)
    staged, single = estimate_sweep(cells, tmp_path).cells
    assert staged.estimate.parameters == single.estimate.parameters
    assert staged.estimate.seconds == pytest.approx(2 * single.estimate.seconds)


@pytest.mark.slow
def test_the_estimate_uses_the_execution_the_sweep_trains_with(
    store_path: Path, tmp_path: Path
) -> None:
    from ser.runtime.execution import Execution
    from ser.sweep.estimate import ONE_THREAD

    cells = cells_of("msmser-table3", store_path, tmp_path, seeds="2")
    alone = estimate_sweep(cells, tmp_path)
    two = Execution(2, 1, "test", cluster=True)
    side = estimate_sweep(cells, tmp_path, two)
    assert side.processes == 2
    for a, s in zip(alone.cells, side.cells, strict=True):
        assert s.seconds == pytest.approx(a.seconds * ONE_THREAD)  # one thread's pace
    assert side.seconds == pytest.approx(alone.seconds * ONE_THREAD / 2)  # two at once
    # A cell measured at one thread calibrates the one-thread estimate one to one, and
    # the default's (its threads unrecorded: `ser train`'s) by the one-thread pace.
    first = alone.cells[0]
    measured = first.estimate.seconds * ONE_THREAD
    write_record(tmp_path, first.cell.key, [measured / 2], False, "cpu")
    path = cell_dir(tmp_path, first.cell.key) / "run.json"
    record = json.loads(path.read_text())
    record["timings"]["threads"] = 1
    path.write_text(json.dumps(record))
    again = estimate_sweep(cells, tmp_path, two)
    assert again.cells[1].seconds == pytest.approx(side.cells[1].seconds)
    default = estimate_sweep(cells, tmp_path)
    assert default.cells[1].seconds == pytest.approx(alone.cells[1].seconds)


def test_its_memory_counts_the_views_and_the_streamed_caches_as_a_run_places_them(
    tmp_path: Path,
) -> None:
    """The estimate's rows are where `ser train` puts them (`open_inputs`): an input's
    views beside its own rows, or under a budget they do not fit, the chunk caches of the
    streams alone. Before, the views were left out."""
    path = tmp_path / "features.zarr"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "CHUNK_BYTES", 256)
        store = labelled_store(path, SETS, per_dialog=12)
        frames = store.read("hubert-tiny.L2")
        offsets, data = np.asarray(frames.offsets), np.asarray(frames.data, dtype=np.float32)
        noisy = {i: data[offsets[i] : offsets[i + 1]] + 1 for i in range(len(store.manifest))}
        add_view(store, "hubert-tiny.L2", "noise20db", noisy)

    def memory(**fixed: str) -> int:
        cell = cells_of("msmser-table3", path, tmp_path, **fixed)[0]  # its unmasked cell
        return estimate_sweep([cell], tmp_path).cells[0].estimate.memory

    alone = {"features": "hubert-tiny.L2+bert-tiny", "fusion": "mit"}
    clean, viewed = memory(**alone), memory(**alone, views="noise20db")
    frames, view, tokens = (
        store.info(name).rows * dim * 2
        for name, dim in (("hubert-tiny.L2", 6), ("hubert-tiny.L2.noise20db", 6), ("bert-tiny", 5))
    )
    assert viewed - clean == view
    weights = clean - frames - tokens  # the members' weights, gradients and moments
    streamed = memory(**alone, views="noise20db", **{"memory-budget": "16KB"})
    assert streamed < viewed
    assert tokens < streamed - weights <= 16_000  # the tokens held and the caches: the budget
