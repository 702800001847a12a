"""Earlier runs' temporary folders, removed while this run's tests run.

pytest keeps the newest `tmp_path_retention_count` runs' folders under
``<temp>/pytest-of-<user>`` and removes the older ones when the run ends, one file at a time
in its main process after the last test. A run of the suite leaves ~40,000 files (~800 MB),
and removing a run's added 8 to 18 s to every run's wall on a 2-core machine's disk, with
nothing else left to do. Here the same folders are removed by a process of its own started
with the run, its disk waits beside the tests' work; pytest's own clean-up finds them gone.
"""

from __future__ import annotations

import getpass
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REMOVER = pytest.StashKey[subprocess.Popen[bytes]]()
NUMBERED = re.compile(r"pytest-(\d+)")
# `pathlib.create_cleanup_lock`'s file, holding its run's process id: a folder that holds it
# belongs to a run under way (or one killed: pytest's own clean-up decides about those).
LOCK = ".lock"


def runs_root() -> Path:
    """Where pytest makes each run's numbered folder, as its documentation says."""
    temp = os.environ.get("PYTEST_DEBUG_TEMPROOT") or tempfile.gettempdir()
    try:
        user = getpass.getuser()
    except (ImportError, KeyError, OSError):
        user = "unknown"
    return Path(temp).resolve() / f"pytest-of-{user}"


def removable(root: Path, keep: int, pid: int | None = None) -> list[Path]:
    """The numbered folders that pytest removes when this run (process ``pid``) ends: all
    but the newest ``keep``, counting this run's own, the newest already made if its lock
    names ``pid`` and else the next number; none that holds a run's lock."""
    numbers = sorted(
        int(match.group(1))
        for entry in (os.listdir(root) if root.is_dir() else [])
        if (match := NUMBERED.fullmatch(entry))
    )
    if keep <= 0 or not numbers:
        return []
    ours = numbers[-1] if _locked_by(root / f"pytest-{numbers[-1]}", pid) else numbers[-1] + 1
    return [
        root / f"pytest-{n}"
        for n in numbers
        if n <= ours - keep and not (root / f"pytest-{n}" / LOCK).exists()
    ]


def _locked_by(folder: Path, pid: int | None) -> bool:
    try:
        return (folder / LOCK).read_text().strip() == str(pid or os.getpid())
    except (OSError, UnicodeDecodeError):
        return False


def start_removing(config: pytest.Config) -> None:
    """In pytest's main process only, and only where pytest numbers the folders itself
    (no ``--basetemp``) and keeps every run's (its default policy). A process, not a
    thread, so that it can be niced: it takes a core only where the tests leave one."""
    if hasattr(config, "workerinput") or config.getoption("basetemp"):
        return
    if config.getini("tmp_path_retention_policy") != "all":
        return
    folders = removable(runs_root(), int(config.getini("tmp_path_retention_count")))
    if folders:
        remove = "import os, shutil, sys\nos.nice(10)\n"
        remove += "for f in sys.argv[1:]: shutil.rmtree(f, ignore_errors=True)"
        command = [sys.executable, "-c", remove, *map(str, folders)]
        config.stash[REMOVER] = subprocess.Popen(command, stdin=subprocess.DEVNULL)


def wait_for_removal(config: pytest.Config) -> None:
    """Before pytest's own clean-up looks at the same folders."""
    remover = config.stash.get(REMOVER, None)
    if remover is not None:
        remover.wait()
