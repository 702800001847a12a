"""The files a new corpus kind, head or model family touches, counted: each recipe in
docs/dev/ lists them under "Files touched" (one new file, at most one registry line, and
docs), and every such thing ser has today is built exactly that way, so the recipe is
what the code does and not a hope. (That a thing made by the recipe works end to end is
each recipe's own test: tests/corpus/test_a_new_kind.py, tests/heads/test_a_new_head.py,
tests/train/test_extension.py.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import ser.corpus.registry as corpora
import ser.heads as heads
import ser.models as models
from ser.heads.registry import HEADS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "dev"
RECIPES = ("add-corpus.md", "add-head.md", "add-family.md")
_ITEM = re.compile(r"^- (new|one line|no line|docs): (.+)$")


def touched(page: str) -> dict[str, list[str]]:
    """The recipe's "Files touched" list: what each kind of bullet names."""
    text = (DOCS / page).read_text(encoding="utf-8")
    section = text.split("## Files touched", 1)
    if len(section) < 2:
        raise AssertionError(f"docs/dev/{page} has no '## Files touched' section")
    found: dict[str, list[str]] = {"new": [], "one line": [], "no line": [], "docs": []}
    for line in section[1].split("\n## ", 1)[0].strip().splitlines():
        if not line.startswith("- "):
            continue
        match = _ITEM.match(line)
        if match is None:
            raise AssertionError(f"docs/dev/{page}: a bullet of no known kind: {line!r}")
        found[match[1]].append(match[2])
    return found


def _path(bullet: str) -> str:
    """The first `code` span of a bullet: its path."""
    return bullet.split("`")[1]


@pytest.mark.parametrize("page", RECIPES)
def test_each_recipe_is_one_file_and_at_most_one_registry_line(page: str) -> None:
    files = touched(page)
    assert len(files["new"]) == 1, files
    assert len(files["one line"]) + len(files["no line"]) == 1, files
    for bullet in files["one line"] + files["no line"]:
        assert (ROOT / _path(bullet)).is_file(), bullet


def test_every_corpus_kind_is_its_own_file_and_no_registry_line() -> None:
    """Each kind registers itself at the bottom of its module under kinds/, and the
    registry names none of them (it imports every module of the folder)."""
    files = touched("add-corpus.md")
    assert _path(files["new"][0]) == "ser/corpus/kinds/<kind>.py"
    registry = (ROOT / _path(files["no line"][0])).read_text(encoding="utf-8")
    kinds = corpora.KINDS
    assert len(kinds) >= 8
    for name, kind in kinds.items():
        module = kind.read.__module__
        assert module.startswith("ser.corpus.kinds."), (name, module)
        source = (ROOT / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8")
        assert re.search(r"register\(\s*CorpusKind\(", source), name
        assert module.rsplit(".", 1)[1] not in registry, name


def _tuple_of(path: Path, name: str) -> tuple[str, ...]:
    """The string tuple assigned to `name` in the module at `path`, one item a line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError(f"{path} assigns no {name}")


def test_every_family_is_its_own_file_and_one_name_in_the_registry() -> None:
    """A family's file ends in its `FAMILY`; the one line naming it is its module's name
    in `FAMILY_MODULES`, and every family ser registers came in that way."""
    files = touched("add-family.md")
    assert _path(files["new"][0]) == "ser/models/<family>.py"
    listed = _tuple_of(ROOT / _path(files["one line"][0]), "FAMILY_MODULES")
    assert listed == models.FAMILY_MODULES
    for family in models.FAMILIES.values():
        module = family.config.__module__
        assert module.rsplit(".", 1)[1] in listed, family.name
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file()
    assert len(listed) == len(models.FAMILIES)


def test_every_further_head_is_its_own_file_and_one_name_in_the_registry() -> None:
    """A head's file ends in its `HEAD`; the one line naming it is its module's name in
    `HEAD_MODULES`, and every head the registry holds came in that way."""
    files = touched("add-head.md")
    assert _path(files["new"][0]) == "ser/heads/<head>.py"
    listed = _tuple_of(ROOT / _path(files["one line"][0]), "HEAD_MODULES")
    assert listed == heads.HEAD_MODULES
    built_in = {name: head for name, head in HEADS.items() if head.__module__.startswith("ser.")}
    assert sorted(h.__module__.rsplit(".", 1)[1] for h in built_in.values()) == sorted(listed)
