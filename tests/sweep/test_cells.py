"""Cells are checked against the store up front and keyed by what they train."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ser.cache import FeatureStore
from ser.errors import ConfigError, StoreError
from ser.sweep.cells import resolve_cells, tasks, unique
from ser.sweep.spec import load_spec
from ser.train.record import ONCE_LEFT_OUT
from tests.stores import add_labelled_set, labelled_store

from .conftest import PARAMS, SETS, TINY


@pytest.mark.slow
def test_impossible_cells_are_refused_before_anything_trains(
    store_path: Path, tmp_path: Path
) -> None:
    spec = load_spec("msmser-table2", params=PARAMS, fixed={**TINY, "queries": "3"})
    with pytest.raises(ConfigError, match=r"msmser-table2 'w/o MIT': --queries 3 does not apply"):
        resolve_cells(spec.cells, str(store_path), tmp_path)
    missing = load_spec("fusion-study", params={"audio": "logmel", "text": "bert"}, fixed=TINY)
    problem = r"25 cell\(s\) cannot train:\n  fusion-study 'EF ADD-Fusion / L_s' and 24 more: "
    with pytest.raises(ConfigError, match=problem + "feature set 'logmel' is not in the store"):
        resolve_cells(missing.cells, str(store_path), tmp_path)
    assert not (tmp_path / "cells").exists()
    with pytest.raises(StoreError):
        resolve_cells(spec.cells, str(tmp_path / "nowhere.zarr"), tmp_path)


@pytest.mark.slow
def test_keys_follow_the_config_and_the_features_not_the_place(tmp_path: Path) -> None:
    store = tmp_path / "a.zarr"
    labelled_store(store, SETS, per_dialog=4)
    spec = load_spec("msmser-table3", params=PARAMS, fixed=TINY)
    here = resolve_cells(spec.cells, str(store), tmp_path / "one")
    there = resolve_cells(spec.cells, str(store), tmp_path / "two")
    assert [c.key for c in here] == [c.key for c in there]
    assert len({c.key for c in here}) == 6
    other = load_spec("msmser-table3", params=PARAMS, fixed={**TINY, "epochs": "3"})
    assert not {c.key for c in here} & {
        c.key for c in resolve_cells(other.cells, str(store), tmp_path)
    }
    # A re-extracted feature set (another fingerprint) is another cell.
    add_labelled_set(FeatureStore.open(store, mode="a"), "bert-tiny", SETS["bert-tiny"], seed=1,
                     overwrite=True)  # fmt: skip
    again = resolve_cells(spec.cells, str(store), tmp_path / "one")
    assert not {c.key for c in here} & {c.key for c in again}


def test_a_cell_hashes_its_config_as_records_before_every_option_held_it(
    store_path: Path, tmp_path: Path
) -> None:
    """A run record names every option, on or off; a cell's key leaves out the keys of
    options that are off which older records lacked, so every sweep's cells keep their
    folders."""
    spec = load_spec("msmser-table3", params=PARAMS, fixed=TINY)
    cell = resolve_cells(spec.cells[:1], str(store_path), tmp_path)[0]
    assert not ONCE_LEFT_OUT & set(cell.resolved)
    assert {"patience", "precision", "seeds"} <= set(cell.resolved)  # always held


@pytest.mark.slow
def test_cells_of_one_model_and_its_seeds_are_one_task(store_path: Path, tmp_path: Path) -> None:
    table3 = resolve_cells(load_spec("msmser-table3", params=PARAMS, fixed=TINY).cells,
                           str(store_path), tmp_path)  # fmt: skip
    # Cells of another RMM train apart (their modules differ); cells that differ only in
    # their eval mask are one task, whose members train once (tests/train/test_shared_training).
    assert [[c.cell.row.label for c in t] for t in tasks(table3)] == [
        ["w/o RMM", "w/o RMM (only text)", "w/o RMM (only audio)"],
        ["Full", "Full (only text)", "Full (only audio)"],
    ]
    seeds = load_spec("msmser-table3", params=PARAMS, fixed=TINY, grid={"seed": "0,1,2"})
    full = [c for c in seeds.cells if c.row.label == "Full"]
    assert [len(t) for t in tasks(resolve_cells(full, str(store_path), tmp_path))] == [3]
    table2 = resolve_cells(load_spec("msmser-table2", params=PARAMS, fixed=TINY).cells,
                           str(store_path), tmp_path)  # fmt: skip
    assert len(tasks(table2)) == 6
    both = resolve_cells(load_spec("all", params=PARAMS, fixed=TINY).cells[:12], str(store_path),
                         tmp_path)  # fmt: skip
    assert sum(len(t) for t in tasks(both)) == 11  # Full is in both tables: trained once


def test_cells_name_their_store_and_folder_resolved(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given relative, as `make demo` gives them: a cell's run.json still names them."""
    monkeypatch.chdir(store_path.parent)
    spec = load_spec("msmser-table3", params=PARAMS, fixed=TINY)
    cell = resolve_cells(spec.cells, store_path.name, Path("sweep"))[0]
    assert cell.config.store == str(store_path.resolve())
    assert cell.config.out == str((store_path.parent / "sweep" / "cells").resolve())


def test_unique_keeps_a_shared_cell_where_it_first_comes() -> None:
    """`all` lists Table 2's Full before Table 3's: it trains (and is shown) as Table 2's,
    in Table 2's place."""
    cells: list[Any] = [SimpleNamespace(key=k, table=t) for k, t in (("a", 2), ("b", 2), ("a", 3))]
    assert unique(cells) == cells[:2]
