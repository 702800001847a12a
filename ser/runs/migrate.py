"""Older run records brought to today's format before they are read: the JSON of format
N made format N+1's by one step each (`STEPS`), so that `ser.runs.record` reads only
`FORMAT`'s shape.

Format 1: no ``format`` key; what ser wrote before the record had a type. Its first
writers kept each fold side's IEMOCAP sessions (``test_sessions`` / ``val_sessions``,
the protocol's group "session"); later ones the groups (``test_groups`` / ``val_groups``
and ``group``); entries written before stacking have no ``stacked`` (they trained
alone); records from before the execution policy hold ``processes`` ({count, source}),
kept as it is.
Format 2: ``format`` 2; the same keys as the last format 1 writers.

A format change: bump `FORMAT`, add the step that makes the previous format's JSON the
new one's, and a record the previous version wrote to tests/runs/fixtures/ (its
README). A format newer than `FORMAT` is refused: its keys may mean what this version
cannot know.

>>> entry = {"seed": 0, "fold": "session5", "test_sessions": [5], "val_sessions": [1]}
>>> (made,) = current({"name": "r", "folds": [entry]}, "run.json")["folds"]
>>> made["test_groups"], made["val_groups"], made["group"], made["stacked"], "test_sessions" in made
([5], [1], 'session', 1, False)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ser.errors import ReportError

FORMAT = 2


def current(obj: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """`obj` (a parsed run.json) in format `FORMAT`; `ReportError` naming `path` for a
    format this version does not know."""
    version = obj.get("format", 1)
    if not isinstance(version, int) or version > FORMAT:
        raise ReportError(
            f"{path}: run record format {version!r}, newer than this ser reads ({FORMAT}): "
            "a newer ser wrote it; read it with that one"
        )
    for step in STEPS[max(version, 1) - 1 :]:
        obj = step(obj)
    return obj


def _from_1(obj: dict[str, Any]) -> dict[str, Any]:
    """Format 1 to 2: each entry's sessions as groups, `stacked` 1 where not said."""
    folds = obj.get("folds")
    if isinstance(folds, list):
        folds = [_entry_from_1(e) if isinstance(e, dict) else e for e in folds]
    return {**obj, "format": 2, **({} if folds is None else {"folds": folds})}


def _entry_from_1(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry's ``<side>_sessions`` as ``<side>_groups`` (left as written where both
    are there) with `group` "session": only IEMOCAP's sessions were recorded before
    protocols named their group."""
    out = dict(entry)
    renamed = False
    for side in ("test", "val"):
        old, new = f"{side}_sessions", f"{side}_groups"
        if old in out and new not in out:
            out[new] = out.pop(old)
            renamed = True
    if renamed and "group" not in out and out.get("test_groups") is not None:
        out["group"] = "session"
    out.setdefault("stacked", 1)
    return out


# STEPS[n - 1] makes format n's JSON format n + 1's.
STEPS: tuple[Callable[[dict[str, Any]], dict[str, Any]], ...] = (_from_1,)
