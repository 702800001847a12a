"""docs/python.md's examples, run in order in one namespace in a folder laid out as
`make demo` leaves it (`demo` in tests/api/conftest.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "python.md"
_BLOCK = re.compile(r"^```python\n(?P<code>.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(page: Path) -> list[str]:
    """The page's fenced ``python`` blocks, in order."""
    return [match["code"] for match in _BLOCK.finditer(page.read_text(encoding="utf-8"))]


def test_the_pages_examples_run(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(demo)
    namespace: dict[str, object] = {"__name__": "docs_python"}
    blocks = python_blocks(PAGE)
    for n, code in enumerate(blocks, 1):
        exec(compile(code, f"docs/python.md, example {n}", "exec"), namespace)
    assert (demo / "demo" / "runs" / "python" / "run.json").is_file()
    scores = namespace["scores"]  # the LOSO loop's, a test UA for each of the five sessions
    assert isinstance(scores, list) and len(scores) == 5 and all(0 <= s <= 100 for s in scores)


def test_the_page_shows_each_name() -> None:
    code = "\n".join(python_blocks(PAGE))
    for name in ("open_store", "folds", "FeatureDataset", "train", "load"):
        assert f"ser.{name}(" in code, name


def test_a_whole_loso_loop_takes_under_40_lines() -> None:
    (loop,) = [code for code in python_blocks(PAGE) if 'protocol="loso", features=features' in code]
    for needed in ("normalize=", ".batches(", ".class_weights()", "ser.metrics.ua("):
        assert needed in loop, needed
    assert len(loop.splitlines()) < 40


def test_the_blocks_are_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("text\n```python\na = 1\n```\n```sh\nls\n```\n```python\nb = a\n```\n")
    assert python_blocks(page) == ["a = 1\n", "b = a\n"]
