"""What a `FeatureStore` hands back: a feature set, its summary and a health check."""

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
class VerifyReport:
    problems: list[str]
    checksums: dict[str, str | None]  # per feature set; None when it could not be read

    @property
    def healthy(self) -> bool:
        return not self.problems
