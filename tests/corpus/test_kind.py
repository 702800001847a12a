"""What a corpus kind holds stays in its module: outside `ser/corpus/kinds/` and
`ser/synth/` no code matches IEMOCAP's utterance ids nor names a `session` or `split`
column (the kinds' groups reach the rest through `CorpusKind`); and the registry finds
every kind's module by itself."""

from __future__ import annotations

import ast
import dataclasses
import doctest
import re
from pathlib import Path

import pytest

import ser.corpus.registry
from ser.corpus.kind import KINDS, Written, register
from ser.corpus.registry import fallback

SER = Path(__file__).resolve().parents[2] / "ser"
OWNERS = ("corpus/kinds/", "synth/")  # where a kind's knowledge lives
AN_IEMOCAP_ID = "Ses01F_impro01_F000"
GROUP_NAMES = ("session", "split")
# The literals that are not a kind's column, each with what it is instead.
NOT_COLUMNS = {
    # the columns every stored manifest had before groups: stores made then still open
    ("cache/manifest.py", "session"),
    # `--val session`, the old spelling of `--val next-group`
    ("corpus/protocols/folds.py", "session"),
    # a model card's dataset `split` field (Hugging Face's model-index), not a column
    ("export/card.py", "split"),
    # run records made before they named their group: all IEMOCAP's, by session
    ("runs/migrate.py", "session"),
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
        # `__all__`'s entries are the module's names (a `split` function), not columns.
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            found.update(id(c) for c in ast.walk(node.value) if isinstance(c, ast.Constant))
    return found


def literals(root: Path = SER) -> list[tuple[str, int, str]]:
    """(path under `root`, line, text) of every string literal outside the kinds' own
    folders, docstrings (they may show an id as an example) and `__all__` aside."""
    found = []
    for path in sorted(root.rglob("*.py")):
        where = path.relative_to(root).as_posix()
        if where.startswith(OWNERS):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstrings(tree)
        found += [
            (where, node.lineno, node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in skip
        ]  # fmt: skip
    return found


def id_patterns(found: list[tuple[str, int, str]]) -> list[str]:
    """The literals that, read as a regex, find an IEMOCAP utterance id."""
    hits = []
    for where, line, text in found:
        try:
            matches = "Ses" in text and re.compile(text).search(AN_IEMOCAP_ID)
        except re.error:
            continue
        if matches:
            hits.append(f"{where}:{line} {text!r}")
    return hits


def group_columns(found: list[tuple[str, int, str]]) -> list[str]:
    """The literals that are a kind's group name, but the known `NOT_COLUMNS`."""
    return [
        f"{where}:{line} {text!r}"
        for where, line, text in found
        if text in GROUP_NAMES and (where, text) not in NOT_COLUMNS
    ]


@pytest.mark.slow
def test_no_code_outside_the_kinds_knows_iemocaps_ids_or_group_columns() -> None:
    found = literals()
    assert id_patterns(found) == []
    assert group_columns(found) == []


def test_the_check_finds_an_id_pattern_and_a_group_column(tmp_path: Path) -> None:
    (tmp_path / "predict").mkdir()
    (tmp_path / "predict" / "notes.py").write_text(
        '"""An id like Ses01F_impro01_F000 in a docstring is fine."""\n'
        "import re\n"
        'UTTERANCE = re.compile(r"^Ses(\\d+)[FM]_")\n'
        'def held(columns):\n    return columns["split"]\n'
    )
    (tmp_path / "corpus" / "kinds").mkdir(parents=True)
    (tmp_path / "corpus" / "kinds" / "iemocap.py").write_text('GROUP = "session"\n')
    found = literals(tmp_path)
    assert id_patterns(found) == ["predict/notes.py:3 '^Ses(\\\\d+)[FM]_'"]
    assert group_columns(found) == ["predict/notes.py:5 'split'"]


def test_the_registry_found_every_kinds_module() -> None:
    assert doctest.testmod(ser.corpus.registry).failed == 0
    kinds = {f"ser.corpus.kinds.{p.stem}" for p in (SER / "corpus" / "kinds").glob("*.py")}
    # A kind's module reads it (two kinds may share one: CMU-MOSI and CMU-MOSEI).
    modules = {kind.read.__module__ for kind in KINDS.values()}
    assert modules <= kinds and fallback() is KINDS["iemocap"]
    with pytest.raises(ValueError, match="'meld' is registered already"):
        register(dataclasses.replace(KINDS["meld"]))  # another kind of that name
    assert register(KINDS["meld"]) is KINDS["meld"]  # the same kind again: a no-op
    written = Written.of(Path("."), {"a": ("neu", "s1"), "b": ("hap", "s1")})
    assert (written.utterances, written.speakers) == (2, 1)
