"""Earlier runs' temporary folders are removed as a run starts, the same ones pytest would
remove when it ends, never one it keeps or one a run under way holds."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests import old_runs


def numbered(root: Path, *numbers: int, locked: tuple[int, ...] = ()) -> None:
    for n in numbers:
        (root / f"pytest-{n}" / "test_a0").mkdir(parents=True)
        (root / f"pytest-{n}" / "test_a0" / "f.bin").write_bytes(b"x")
    for n in locked:
        (root / f"pytest-{n}" / old_runs.LOCK).touch()


def test_all_but_the_newest_kept_are_removable_counting_this_run_s_own(tmp_path: Path) -> None:
    numbered(tmp_path, 3, 4, 5, 6, 7, 8)
    (tmp_path / "pytest-current").symlink_to(tmp_path / "pytest-8")
    (tmp_path / "garbage-1").mkdir()
    names = [p.name for p in old_runs.removable(tmp_path, keep=3)]
    assert names == ["pytest-3", "pytest-4", "pytest-5", "pytest-6"]  # this run: pytest-9
    (tmp_path / "pytest-8" / old_runs.LOCK).write_text("4321")
    names = [p.name for p in old_runs.removable(tmp_path, keep=3, pid=4321)]
    assert names == ["pytest-3", "pytest-4", "pytest-5"]  # this run: pytest-8, made


def test_a_locked_run_and_a_kept_count_of_none_are_left(tmp_path: Path) -> None:
    numbered(tmp_path, 1, 2, 3, 4, locked=(1,))
    assert [p.name for p in old_runs.removable(tmp_path, keep=3)] == ["pytest-2"]
    assert old_runs.removable(tmp_path, keep=0) == []
    assert old_runs.removable(tmp_path / "nowhere", keep=3) == []


def config(**ini: Any) -> Any:
    values = {"tmp_path_retention_policy": "all", "tmp_path_retention_count": "3"} | ini
    return SimpleNamespace(
        getoption=lambda name: None, getini=values.__getitem__, stash=pytest.Stash()
    )


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pytest's folder of runs, moved here (its documented variable), with five runs."""
    monkeypatch.setenv("PYTEST_DEBUG_TEMPROOT", str(tmp_path))
    root = old_runs.runs_root()
    numbered(root, 1, 2, 3, 4, 5)
    return root


def removed_for(settings: Any) -> None:
    old_runs.start_removing(settings)
    old_runs.wait_for_removal(settings)


def test_the_old_runs_are_gone_once_waited_for(runs: Path) -> None:
    started = config()
    removed_for(started)
    assert sorted(p.name for p in runs.iterdir()) == ["pytest-4", "pytest-5"]
    assert started.stash[old_runs.REMOVER].returncode == 0


def test_nothing_is_removed_where_pytest_keeps_other_runs(runs: Path) -> None:
    for other in (config(tmp_path_retention_policy="failed"), config(tmp_path_retention_count="9")):
        removed_for(other)
        assert old_runs.REMOVER not in other.stash
    assert len(list(runs.iterdir())) == 5
