"""Every document a file cites exists, and every heading it cites is a heading of it.

A citation is a document's path as the repository spells it (a page under `docs/`,
`benchmarks/README.md`, `README.md`), optionally followed by a heading in double quotes,
as comments and docs write them: ``benchmarks/README.md, "How long do the demo and
the tests take?"`` or ``docs/dev/store.md ("Feature store")``. A citation may wrap
over lines (comment leaders are read past). A cited heading matches a heading of the
document case-insensitively, backticks aside, whole or as its start (``"Sweeps"`` names
``## Sweeps (`ser/sweep/`)``).
Markdown files' relative links to other Markdown files are checked too, with their
``#anchor`` against the target's headings as GitHub makes anchors of them.

README.md stays a page a newcomer reads in minutes, linking a page per topic.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED_FOLDERS = ("ser", "tests", "benchmarks", "scripts", "docs")
SCANNED_FILES = ("README.md", "Makefile", "pyproject.toml")
TEXT_SUFFIXES = {".py", ".md", ".toml", ".sh", ".txt", ".cfg", ".ini", ".yml", ".yaml"}
TOPICS = (
    "corpora",
    "extract",
    "train",
    "sweep",
    "report",
    "predict",
    "export",
    "stores",
    "distributed",
    "models",
)
README_MAX_LINES = 200
PAGE_MAX_LINES = 400

_DOC = r"(?<![\w./-])(?P<doc>docs/(?:dev/)?[\w.-]+\.md|benchmarks/README\.md|README\.md)"
# The heading, when there is one, comes after a comma or a space (and maybe a parenthesis):
# `"README.md"` in pyproject.toml is a path in quotes, not a path and a heading.
_HEADING_AFTER = r'(?:`?(?:,\s*|\s+)\(?"(?P<heading>[^"]{1,200})")?'
_CITATION = re.compile(_DOC + _HEADING_AFTER)
_LINK = re.compile(r"\]\((?P<target>[^()\s]*)\)" + _HEADING_AFTER)
_HEADING = re.compile(r"^(#{1,6})\s+(?P<text>.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LEADER = re.compile(r"^\s*#*\s*")  # comment leaders of Python, shell, TOML, Makefiles


@dataclass(frozen=True)
class Citation:
    """`doc` cited at `line` of `path`, maybe with a heading or a link's anchor."""

    path: Path
    line: int
    doc: Path  # absolute
    heading: str | None = None
    anchor: str | None = None  # a Markdown link's `#anchor`


def scanned_files(root: Path) -> list[Path]:
    """The repository's text files that may cite documents."""
    files = [root / name for name in SCANNED_FILES if (root / name).is_file()]
    for folder in SCANNED_FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            text = path.suffix in TEXT_SUFFIXES or path.name == "Makefile"
            if text and path.is_file() and "__pycache__" not in path.parts:
                files.append(path)
    return files


def headings(path: Path) -> list[str]:
    """The ATX headings of a Markdown file, outside fenced code blocks."""
    found, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := _HEADING.match(line)):
            found.append(match["text"])
    return found


def _plain(text: str) -> str:
    return " ".join(text.replace("`", "").lower().split())


def is_heading(cited: str, of: Iterable[str]) -> bool:
    """Whether `cited` names one of the headings `of`: the whole heading or its start,
    up to a word's end (case and backticks aside)."""
    cited = _plain(cited)
    for heading in map(_plain, of):
        if heading == cited:
            return True
        if heading.startswith(cited) and not heading[len(cited)].isalnum():
            return True
    return False


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (lower case, punctuation but `-`
    and `_` dropped, spaces as `-`; a repeated one numbered)."""
    seen: dict[str, int] = {}
    for heading in headings(path):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        if count:
            seen[f"{slug}-{count}"] = 1
    return set(seen)


def citations(path: Path, root: Path) -> Iterator[Citation]:
    """The documents `path` cites: by their path from `root` and, in Markdown, by
    relative link (``[train.md](train.md), "Progress"`` cites a heading too)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return
    markdown = path.suffix == ".md"
    # One line of text with the comment leaders dropped, so that a citation wrapped in a
    # comment or docstring reads whole; `starts` maps an offset back to its line.
    starts, parts, offset = [], [], 0
    for line in lines:
        part = line.strip() if markdown else _LEADER.sub("", line, count=1).strip()
        starts.append(offset)
        parts.append(part)
        offset += len(part) + 1
    text = " ".join(parts)
    if markdown:
        for match in _LINK.finditer(text):
            file, _, anchor = match["target"].partition("#")
            if re.match(r"^[a-z][a-z+.-]*:", file) or (file and not file.endswith(".md")):
                continue  # a web address, or a link to a file that is not a document
            line = bisect.bisect_right(starts, match.start())
            doc = (path.parent / file).resolve() if file else path
            yield Citation(path, line, doc, match["heading"], anchor or None)
        # Link targets blanked (same length, the offsets hold): checked above.
        text = _LINK.sub(lambda m: "]" + " " * (len(m[0]) - 1), text)
    for match in _CITATION.finditer(text):
        line = bisect.bisect_right(starts, match.start())
        yield Citation(path, line, root / match["doc"], match["heading"])


def problems(root: Path, files: Iterable[Path]) -> list[str]:
    """One line per citation of a missing document or heading: file:line, what it cites."""
    found = []
    for citation in (c for path in files for c in citations(path, root)):
        where = f"{citation.path.relative_to(root)}:{citation.line}"
        doc = citation.doc
        shown = doc.relative_to(root) if doc.is_relative_to(root) else doc
        if not doc.is_file():
            found.append(f"{where} cites {shown}, which does not exist")
        elif citation.heading and not is_heading(citation.heading, headings(doc)):
            found.append(
                f'{where} cites {shown}, "{citation.heading}", which is not one of its headings'
            )
        elif citation.anchor and citation.anchor not in anchors(doc):
            found.append(f"{where} links {shown}#{citation.anchor}, not an anchor of its headings")
    return found


def test_every_cited_document_and_heading_exists() -> None:
    found = problems(ROOT, scanned_files(ROOT))
    assert not found, "\n".join(found)


def test_the_scan_finds_the_repository_citations() -> None:
    """Not vacuous: the code's citations of benchmark headings and the README's topic
    links are among those checked."""
    found = [c for path in scanned_files(ROOT) for c in citations(path, ROOT)]
    with_headings = {(c.doc, c.heading) for c in found if c.heading}
    assert len(with_headings) >= 10
    assert any(doc == ROOT / "benchmarks" / "README.md" for doc, _ in with_headings)
    assert any(c.path == ROOT / "README.md" and c.doc == ROOT / "docs" / "models.md" for c in found)


def test_the_checker_names_a_missing_document_and_a_missing_heading(tmp_path: Path) -> None:
    # The documents' names are put together here, so that this file cites none of them.
    real, absent, gone = ("docs/" + name for name in ("real.md", "absent.md", "gone.md"))
    (tmp_path / "docs").mkdir()
    (tmp_path / real).write_text("# Real page\n\n## Real heading (`ser x`)\n")
    (tmp_path / "ser").mkdir()
    (tmp_path / "ser" / "mod.py").write_text(
        f'"""See {real}, "Real heading" and {real} ("real HEADING").\n'
        f'Also {real}, "Missing heading",\n'
        f"and {absent}.\n"
        f'# wrapped: {real}, "Real\n'
        f'# heading (ser x)" and {real}, "Real head".\n"""\n'
    )
    (tmp_path / "README.md").write_text(
        f"[ok]({real}#real-heading-ser-x) [bad]({real}#nowhere) [gone]({gone})\n"
        f'[ok](real.md), "Real heading" [bad]({real}), "Other heading"\n'
    )
    found = problems(tmp_path, scanned_files(tmp_path))
    assert found == [
        f"README.md:1 links {real}#nowhere, not an anchor of its headings",
        f"README.md:1 cites {gone}, which does not exist",
        "README.md:2 cites real.md, which does not exist",
        f'README.md:2 cites {real}, "Other heading", which is not one of its headings',
        f'ser/mod.py:2 cites {real}, "Missing heading", which is not one of its headings',
        f"ser/mod.py:3 cites {absent}, which does not exist",
        f'ser/mod.py:5 cites {real}, "Real head", which is not one of its headings',
    ]


def test_the_readme_is_short_and_links_every_topic() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = readme.count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines, at most {README_MAX_LINES}"
    links = {c.doc for c in citations(ROOT / "README.md", ROOT)}
    for topic in TOPICS:
        page = ROOT / "docs" / f"{topic}.md"
        assert page.is_file(), f"docs/{topic}.md is missing"
        assert page in links, f"README.md does not link docs/{topic}.md"


def undocumented_kinds(page: str) -> list[str]:
    """The registered corpus kinds without a row in `page`'s table of kinds (a row
    starting with the kind's name in backticks) naming its default protocol in backticks
    in its last cell."""
    from ser.corpus.registry import KINDS

    rows = {}
    for line in page.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) > 1:
            rows[cells[0].strip("`")] = cells[-1]
    return [name for name, kind in KINDS.items() if f"`{kind.protocol}`" not in rows.get(name, "")]


def test_every_corpus_kind_has_a_row_in_corpora_md() -> None:
    page = (ROOT / "docs" / "corpora.md").read_text(encoding="utf-8")
    assert undocumented_kinds(page) == []
    assert undocumented_kinds(page.replace("| `meld` |", "| meld |")) == ["meld"]


def long_pages(root: Path) -> dict[str, int]:
    """The pages over PAGE_MAX_LINES, with their line counts: every page under docs/ and
    benchmarks/README.md (README.md keeps its own, shorter rule)."""
    pages = [*sorted((root / "docs").rglob("*.md")), root / "benchmarks" / "README.md"]
    return {
        str(page.relative_to(root)): n
        for page in pages
        if page.is_file()
        and (n := len(page.read_text(encoding="utf-8").splitlines())) > PAGE_MAX_LINES
    }


def test_every_page_reads_in_one_sitting() -> None:
    """A page over 400 lines is two topics: split it where the topics part. The
    benchmarks' page holds today's figures with their commands; a figure's history
    lives in git."""
    assert long_pages(ROOT) == {}


def test_the_sitting_rule_counts_the_benchmarks_page(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "short.md").write_text("# Short\n")
    (tmp_path / "benchmarks").mkdir()
    page = tmp_path / "benchmarks" / "README.md"
    page.write_text("line\n" * PAGE_MAX_LINES)
    assert long_pages(tmp_path) == {}
    page.write_text("line\n" * (PAGE_MAX_LINES + 1))
    assert long_pages(tmp_path) == {"benchmarks/README.md": PAGE_MAX_LINES + 1}
