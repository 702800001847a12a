"""What a corpus reading takes beside its root and class set, for the kinds whose files
name their audio relative to another folder: `ReadOptions` (`--audio-root`).

A kind that takes none refuses them (`CorpusKind.reading`), so an option is never
silently ignored.

>>> ReadOptions().given(), ReadOptions(Path("/data/EmoBox")).given()
((), ('--audio-root',))
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class ReadOptions:
    """`audio_root`: the folder a kind's relative wav paths resolve against (EmoBox's:
    the one holding `downloads/`); None: the kind's default."""

    audio_root: Path | None = None

    def given(self) -> tuple[str, ...]:
        """The options set, as the command line spells them (`--audio-root`)."""
        return tuple(
            f"--{f.name.replace('_', '-')}"
            for f in fields(self)
            if getattr(self, f.name) is not None
        )


#: No options given: every kind's default.
NO_OPTIONS = ReadOptions()
