"""The cross-corpus preset (ser.sweep.cross): every ordered pair of stores and each
store's diagonal as cells, resolved, keyed, estimated, run and reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ser.cache import FeatureStore
from ser.cli import main
from ser.errors import ConfigError
from ser.sweep.cells import resolve_cells
from ser.sweep.cross import cross_table
from ser.sweep.estimate import estimate, estimate_sweep
from ser.sweep.spec import load_spec
from tests.stores import corpus_store

FIXED = {"epochs": "2", "seeds": "1", "batch-size": "8"}


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("cross_sweep")
    built = [
        ("iemocap", ["neu", "hap", "sad", "ang", "exc", "fru"] * 10),
        ("crema-d", ["neu", "hap", "sad", "ang", "fea", "dis"] * 10),
        ("meld", ["neu.neu", "hap.pos", "sad.neg", "ang.neg", "sur.pos"] * 10),
    ]
    paths = []
    for kind, labels in built:
        corpus_store(root / f"{kind}.zarr", kind, labels)
        paths.append(str((root / f"{kind}.zarr").resolve()))
    return paths


def test_rows_are_the_ordered_pairs_and_the_diagonal(three: list[str]) -> None:
    table = cross_table(three)
    pairs = [(r.meta["store"], r.meta["test_store"]) for r in table.rows]
    assert sorted(pairs) == sorted((a, b) for a in three for b in three)
    crossed = [r for r in table.rows if r.options]
    assert len(crossed) == 6 and all(
        r.options["test_store"] == r.meta["test_store"] for r in crossed
    )
    assert [r.label for r in table.rows[:3]] == [
        "IEMOCAP (own protocol)", "IEMOCAP -> CREMA-D", "IEMOCAP -> MELD",
    ]  # fmt: skip


def test_each_row_resolves_on_its_store_only_keyed_by_its_test_store(
    three: list[str], tmp_path: Path
) -> None:
    spec = load_spec("cross-corpus", fixed=FIXED, made=cross_table(three))
    cells = resolve_cells(spec.cells, three, tmp_path)
    assert len(cells) == 9 and len({c.key for c in cells}) == 9
    for c in cells:
        assert c.store.path == c.cell.row.meta["store"]
        crossed = c.cell.row.meta["test_store"] != c.store.path
        assert (c.config.test_store is not None) == crossed
        assert (c.settings.protocol == "cross") == crossed  # a diagonal: its own protocol
        if crossed:
            assert c.members == 1  # one model trained on all of its store
        assert (c.resolved.get("test") is not None) == crossed  # the test store in the key


@pytest.mark.slow
def test_its_estimate_counts_the_test_store(three: list[str], tmp_path: Path) -> None:
    spec = load_spec("cross-corpus", fixed=FIXED, made=cross_table(three))
    cells = resolve_cells(spec.cells, three, tmp_path)
    crossed = next(c for c in cells if c.config.test_store)
    store = FeatureStore.open(crossed.store.path)
    alone = estimate(crossed, store, {})
    tested = estimate(crossed, store, {}, FeatureStore.open(str(crossed.config.test_store)))
    assert tested.seconds > alone.seconds
    assert len(estimate_sweep(cells, tmp_path).cells) == 9


def test_it_needs_two_stores(three: list[str]) -> None:
    with pytest.raises(ConfigError, match="give two or more --store"):
        cross_table(three[:1])
    with pytest.raises(ConfigError, match="its rows are pairs of stores"):
        load_spec("cross-corpus", fixed=FIXED)


@pytest.mark.slow
def test_the_sweep_runs_resumes_and_reports_its_tables(three: list[str], tmp_path: Path) -> None:
    args = ["sweep", "cross-corpus", *(a for s in three[:2] for a in ("--store", s))]
    args += [
        "--out",
        str(tmp_path / "sweep"),
        *(a for k, v in FIXED.items() for a in ("--fix", f"{k}={v}")),
    ]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "4 cells, 4 trained" in first.output
    again = CliRunner().invoke(main, args)
    assert "0 trained, 4 finished before" in again.output
    plots = tmp_path / "plots"
    report = CliRunner().invoke(main, ["report", str(tmp_path / "sweep"), "--plots", str(plots)])
    assert report.exit_code == 0, report.output
    assert "### UA, train (rows) x test (columns)" in report.output
    assert "| train \\ test | IEMOCAP | CREMA-D |" in report.output
    assert (plots / "cross-corpus_cross.png").is_file()
