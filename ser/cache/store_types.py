"""What a `FeatureStore` hands back: a feature set, its summary, a health check and
what of a set is damaged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FeatureData:
    """A whole feature set: utterance ``i`` is ``data[offsets[i]:offsets[i + 1]]``."""

    data: np.ndarray  # [rows, dim] in the stored dtype
    offsets: np.ndarray  # [n_utt + 1] int64
    attrs: dict[str, Any]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def utterance(self, index: int) -> np.ndarray:
        return self.data[self.offsets[index] : self.offsets[index + 1]]  # [n_rows, dim]


@dataclass(frozen=True)
class FeatureSetInfo:
    """Summary of one feature set; rows/failures of an incomplete set count staged work."""

    name: str
    modality: str
    level: str
    rows: int
    dim: int
    dtype: str
    bytes: int
    fingerprint: str
    complete: bool
    failures: int
    attrs: dict[str, Any] = field(repr=False)
    staged_shards: int = 0


@dataclass(frozen=True)
class Damage:
    """What of a feature set is damaged, and so what a repair does: metadata written anew
    from the store's own copies (``metadata``: the nodes whose metadata is unreadable: the
    set's group, its ``data``), the utterances whose rows are damaged (in a chunk that
    fails its checksum, or NaN/Inf) re-extracted, or the whole set extracted again
    (``whole``: its offsets or failures table damaged, its layout inconsistent, or its
    content checksum differing from the recorded one with no chunk to blame)."""

    utterances: tuple[int, ...] = ()  # manifest rows
    rows: tuple[tuple[int, int], ...] = ()  # [start, stop) of data rows that are damaged
    whole: bool = False
    problems: tuple[str, ...] = ()  # as `verify` words them
    metadata: tuple[str, ...] = ()  # "<set>", "<set>/data"
    # [start, stop) of the rows of the chunks that fail their checksum (among ``rows``,
    # which holds the NaN/Inf rows too): a repair seals no such chunk it did not rewrite.
    failing: tuple[tuple[int, int], ...] = ()

    def __bool__(self) -> bool:
        return self.whole or bool(self.utterances) or bool(self.metadata)


@dataclass(frozen=True)
class VerifyReport:
    problems: list[str]
    checksums: dict[str, str | None]  # per feature set, as read; None when it could not be
    # The checksum recorded when each set was completed; None: a set written before
    # checksums were recorded (not a problem).
    recorded: dict[str, str | None] = field(default_factory=dict)
    damaged: dict[str, Damage] = field(default_factory=dict)  # sets with damage
    # The store's own parts that are damaged: "" (its root metadata), "manifest", or a
    # transcript set ("transcripts/<name>"); each with what verify says of it.
    parts: dict[str, list[str]] = field(default_factory=dict)
    # Parts this user may not read (permissions): said, not checked, no repair offered.
    unreadable: set[str] = field(default_factory=set)
    # View sets made from a clean set since extracted again with other settings, each with
    # its clean set (`verify.stale_view`): made again from it, not repaired.
    stale: dict[str, str] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def unrecorded(self) -> list[str]:
        """Complete sets without a recorded checksum (written before ser recorded them)."""
        return [name for name, digest in self.recorded.items() if digest is None]
