"""A store's utterances as a table (`Store.manifest`): one row per utterance, in manifest
order, a column per field the store's manifest holds (`ser.cache.manifest.Manifest`:
the id, label, speaker, dialog, transcript, the corpus's groups such as IEMOCAP's
session), with each wav as a full path under the corpus root the store recorded. Columns
as numpy arrays, as HF `datasets` gives a dataset's; a pandas DataFrame where pandas is
installed (ser does not depend on it).
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import numpy as np

from ser.cache.manifest import Manifest
from ser.errors import StoreError

if TYPE_CHECKING:
    import pandas as pd


class UtteranceTable:
    """The store's utterances by column: `table["label"]` is each utterance's label as
    the corpus codes it ([n] read-only numpy), `columns` their names (`utt_id`, `dialog`,
    `speaker`, `gender`, `label`, `transcript`, `wav`, ..., then the corpus's groups);
    `len(table)` counts the utterances; `row(utt_id)` one utterance's values by name.
    `wav` is each utterance's file, under `corpus_root` where the store recorded one ("":
    none)."""

    def __init__(self, manifest: Manifest, corpus_root: Path | None) -> None:
        self._manifest = manifest
        self.corpus_root = corpus_root
        self._wavs: np.ndarray | None = None  # made when first asked

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self._manifest.names)

    def __len__(self) -> int:
        return len(self._manifest)

    def __getitem__(self, column: str) -> np.ndarray:
        """One column [n], read only: a change would be every later reader's."""
        if not isinstance(column, str):
            raise TypeError(f"a table's column is named by a text, got {column!r}")
        if column == "wav":
            return self._wav_paths()
        try:
            return self._manifest.column(column)
        except StoreError:
            raise KeyError(
                f"no column {column!r}; the table has: {', '.join(self.columns)}"
            ) from None

    def row(self, utt_id: str) -> dict[str, Any]:
        """Utterance `utt_id`'s values by column, as Python values; `KeyError` for an
        utterance the store does not hold."""
        if utt_id not in self._manifest:
            raise KeyError(f"no utterance {utt_id!r} in the store's manifest")
        at = self._manifest.index(utt_id)
        return {name: self[name][at].item() for name in self.columns}

    def to_pandas(self) -> pd.DataFrame:
        """The table as a pandas DataFrame, indexed by `utt_id` (pandas must be installed:
        ser does not need it)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas needs pandas: pip install pandas") from None
        frame = pd.DataFrame({name: self[name] for name in self.columns})
        return frame.set_index("utt_id", drop=False)

    def __repr__(self) -> str:
        return f"UtteranceTable({len(self)} utterances, columns={list(self.columns)})"

    def _wav_paths(self) -> np.ndarray:
        """Each wav as the manifest holds it, joined to the corpus root where relative."""
        if self._wavs is None:
            stored = self._manifest.column("wav").tolist()
            wavs = np.array([self._full(w) for w in stored], dtype=np.str_)
            wavs.flags.writeable = False
            self._wavs = wavs
        return self._wavs

    def _full(self, wav: str) -> str:
        if not wav or self.corpus_root is None or PurePath(wav).is_absolute():
            return wav
        return str(self.corpus_root / wav)
