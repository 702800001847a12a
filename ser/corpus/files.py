"""A corpus's files as the disk has them: names that are not UTF-8, and folders where a
file is expected.

A file name is bytes. Python hands a name that is not UTF-8 over as text with its bad
bytes as lone surrogates (`os.fsdecode`, "surrogateescape"): such a path opens with the
`os` functions, and a library that wants text is given `native(path)`, the name's own
bytes. Text that holds those surrogates cannot be printed or stored, so a message shows
the name with each bad byte written `\\xNN` (`shown`), and a feature store keeps it so;
`opened` finds the file again from what the store kept.

>>> name = os.fsdecode(b"caf\\xe9.wav")
>>> print(shown(name), native(name), shown("café.wav"))
caf\\xe9.wav b'caf\\xe9.wav' café.wav
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# A byte that is not UTF-8 as `shown` writes it: 0x80 or above (below it, bytes are ASCII).
_BYTE = re.compile(rb"\\x([89a-f][0-9a-f])")
#: What `not_a_file` says of a folder.
FOLDER = "a folder, not a file"


def native(path: str | os.PathLike[str]) -> bytes:
    """The file name's bytes, as the disk has them."""
    return os.fsencode(path)


def shown(text: str | os.PathLike[str]) -> str:
    """`text` (a path) with each byte that is not UTF-8 written `\\xNN`: printable and
    storable; text without such bytes is returned as it is."""
    text = os.fspath(text)
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate no byte stands for (JSON's "\ud800")
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def opened(path: Path) -> Path:
    """The file a path kept as `shown` writes it names: `path` itself where it is there,
    else the file whose name has the bytes its `\\xNN` stand for, where that one is."""
    raw = str(path).encode("utf-8", "surrogateescape")
    if not _BYTE.search(raw) or path.exists():
        return path
    found = Path(os.fsdecode(_BYTE.sub(lambda byte: bytes([int(byte[1], 16)]), raw)))
    return found if found.exists() else path


def not_a_file(path: Path) -> str | None:
    """Why `path` is not a file to read ("a folder, not a file", "not there"); None when
    it is one."""
    if path.is_file():
        return None
    return FOLDER if path.is_dir() else "not there"
