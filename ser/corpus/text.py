"""A corpus's text files (transcripts, label files, CSVs, manifests) read line by line:
every reader of `ser.corpus.kinds` decodes through `read_lines`, so one rule holds for all.

The rule (docs/corpora.md, "Text that is not UTF-8"): each line is decoded as UTF-8 on its
own, so a file's valid lines are kept exactly as written whatever its other lines hold;
a line that is not UTF-8 is read in the kind's fallback encoding (Latin-1, which reads
any byte; MELD's cp1252) and named, with its file, line number and first bad byte, in a
`Problem` (`TextLines.problem`) the caller gives the line's utterance id. Decoding a whole
file in the fallback because of one bad byte would turn every other line into mojibake
("cafÃ©") silently; dropping the line would lose its utterance's text.

A UTF-8 byte-order mark is dropped; line ends are `\\n`, `\\r\\n` or (a file with no
`\\n`) `\\r`, removed from the lines.

>>> text = decode_lines(Path("t.txt"), "café\\nna\\xefve".encode() + b"\\ncaf\\xe9\\n")
>>> text.lines
('café', 'naïve', 'café', '')
>>> [(bad.number, hex(bad.byte), bad.column) for bad in text.not_utf8]
[(3, '0xe9', 4)]
>>> problem = text.problem(text.not_utf8[0], "u1")
>>> print(problem.utt_id, problem.problem.replace(", the", ",\\n the"))
u1 t.txt, line 3: not UTF-8 (byte 0xe9 at byte 4): this line was read as Latin-1 ('café'),
 the file's other lines as UTF-8; save the file as UTF-8 to have it read as written
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ser.corpus.records import Problem

LATIN1 = "latin-1"
#: How the problem spells an encoding a line was read in.
_NAMES = {LATIN1: "Latin-1", "cp1252": "Windows-1252"}
_BOM = "\ufeff"


@dataclass(frozen=True)
class NotUtf8:
    """A line that is not UTF-8: its number (from 1), its first bad byte and where that
    byte is (from 1, in bytes), and the encoding it was read in instead."""

    number: int
    byte: int
    column: int
    encoding: str


@dataclass(frozen=True)
class TextLines:
    """A text file's lines, without their line ends, and those that were not UTF-8."""

    path: Path
    lines: tuple[str, ...]
    not_utf8: tuple[NotUtf8, ...] = ()

    @property
    def text(self) -> str:
        """The lines joined by `\\n` (for the csv and json readers)."""
        return "\n".join(self.lines)

    def numbered(self) -> Iterator[tuple[int, str]]:
        """(line number from 1, line)."""
        return enumerate(self.lines, start=1)

    def problem(self, bad: NotUtf8, utt_id: str = "") -> Problem:
        """The problem naming line `bad` (`utt_id`: its utterance's; else the file's name)."""
        line = self.lines[bad.number - 1]
        shown = line if len(line) <= 60 else f"{line[:57]}..."
        return Problem(
            utt_id or self.path.name,
            f"{self.path}, line {bad.number}: not UTF-8 (byte 0x{bad.byte:02x} at byte "
            f"{bad.column}): this line was read as {_NAMES.get(bad.encoding, bad.encoding)} "
            f"({shown!r}), the file's other lines as UTF-8; save the file as UTF-8 to have "
            "it read as written",
        )

    def problems(self, ids: Mapping[int, str] | None = None) -> list[Problem]:
        """A problem per line that was not UTF-8, each with its utterance id from `ids`
        (line number -> id) where known."""
        return [self.problem(bad, (ids or {}).get(bad.number, "")) for bad in self.not_utf8]


def read_lines(path: Path, fallback: str = LATIN1) -> TextLines:
    """The lines of `path` (`OSError` when it cannot be read: the caller says so)."""
    return decode_lines(path, path.read_bytes(), fallback)


def decode_lines(path: Path, data: bytes, fallback: str = LATIN1) -> TextLines:
    """`data` (the file `path`'s bytes) decoded a line at a time: UTF-8, else `fallback`
    (Latin-1 when `fallback` cannot read the line either)."""
    end = b"\n" if b"\n" in data or b"\r" not in data else b"\r"
    lines: list[str] = []
    bad: list[NotUtf8] = []
    for number, raw in enumerate(data.split(end), start=1):
        raw = raw.removesuffix(b"\r")
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            line, used = _fallback(raw, fallback)
            lines.append(line)
            bad.append(NotUtf8(number, raw[error.start], error.start + 1, used))
    if lines and lines[0].startswith(_BOM):
        lines[0] = lines[0].removeprefix(_BOM)
    return TextLines(path, tuple(lines), tuple(bad))


def _fallback(raw: bytes, encoding: str) -> tuple[str, str]:
    """`raw` read in `encoding`, else in Latin-1 (cp1252 leaves five bytes undefined)."""
    try:
        return raw.decode(encoding), encoding
    except UnicodeDecodeError:
        return raw.decode(LATIN1), LATIN1
