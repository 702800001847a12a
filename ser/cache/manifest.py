"""The utterance table of a feature store: one row per utterance, stored as columns.

Row ``i`` is utterance ``i`` of every feature set of the store; the trainer reads labels,
speakers and transcripts from here and never opens the corpus. `COLUMNS` are the record
every corpus has (`ser.corpus.records.Utterance`); a corpus's groups (IEMOCAP's session
and kind, MELD's split, ...) are columns beside them, text or integers, and so are the
part of its file an utterance is (`span_start`, `span_end`) where a corpus has them.
`DERIVED` columns are made by ser from the audio, not read from the corpus (`audio_print`:
`ser.extract.audio_prints`): a manifest the corpus gives is held by a stored one with them.

Example:
    >>> m = Manifest.from_columns({name: [0, 1] for name in COLUMNS} | {"utt_id": ["a", "b"]})
    >>> len(m), m.index("b")
    (2, 1)
    >>> m == Manifest.from_columns(m.columns())
    True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ser.corpus.files import shown
from ser.corpus.records import Utterance
from ser.errors import StoreError

# Column name -> kind; int64 and float64, so every value round-trips exactly. Whatever is
# handed over for a "str" column (h5py's bytes, zarr's StringDType) becomes numpy "U" text:
# `.astype(str)` works on every column, and bytes never turn into "b'neu'".
COLUMNS: dict[str, str] = {
    "utt_id": "str",
    "dialog": "str",
    "speaker": "str",
    "gender": "str",
    "order": "int",
    "start": "float",
    "end": "float",
    "duration": "float",
    "label": "str",
    "valence": "float",
    "arousal": "float",
    "dominance": "float",
    "transcript": "str",
    "transcript_raw": "str",
    "wav": "str",
}
#: Where an utterance is a part of its wav: seconds, NaN for a whole file.
SPAN = ("span_start", "span_end")
# Columns every corpus's manifest had before groups (session 0 and a word for the
# corpus where it had none): a stored manifest with them holds what a new one without
# them does.
LEGACY = ("session", "kind")
#: A hash of each utterance's decoded samples, "" where its audio could not be read; a
#: store made before it lacks the column (`ser.extract.audio_prints`).
AUDIO_PRINT = "audio_print"
DERIVED = (AUDIO_PRINT,)

_DTYPES = {"str": np.dtype(np.str_), "int": np.dtype(np.int64), "float": np.dtype(np.float64)}
# An extra column keeps its numpy kind's: text ("T": numpy's StringDType), int or float.
_KINDS = dict.fromkeys("USOT", "str") | dict.fromkeys("iub", "int") | {"f": "float"}


class Manifest:
    """Columnar utterance records; equal when every column is equal."""

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        self._columns = _validated(columns)
        ids = self._columns["utt_id"].tolist()
        self._index = {utt_id: i for i, utt_id in enumerate(ids)}
        if len(self._index) != len(ids):
            dupes = sorted(u for u, n in Counter(ids).items() if n > 1)
            raise StoreError(f"manifest has duplicate utt_id values: {', '.join(dupes[:5])}")

    @classmethod
    def from_columns(cls, columns: Mapping[str, Sequence | np.ndarray]) -> Manifest:
        return cls({name: np.asarray(values) for name, values in columns.items()})

    @classmethod
    def from_utterances(
        cls, utterances: Sequence[Utterance], corpus_root: str | Path | None = None
    ) -> Manifest:
        """``wav`` relative to ``corpus_root`` when under it, else as given ("" when missing)."""
        columns = {n: [getattr(u, n) for u in utterances] for n in COLUMNS.keys() - {"wav"}}
        columns["wav"] = [_relative_wav(u.wav_path, corpus_root) for u in utterances]
        groups, scores = _group_columns(utterances), _score_columns(utterances)
        return cls.from_columns({**columns, **groups, **scores, **_spans(utterances)})

    def __len__(self) -> int:
        return len(self._columns["utt_id"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Manifest):
            return NotImplemented
        return not self.differences(other)

    def differences(self, other: Manifest) -> list[str]:
        """Columns that differ (or exist in only one), in order."""
        names = dict.fromkeys([*self._columns, *other._columns])
        return [
            name
            for name in names
            if name not in self._columns
            or name not in other._columns
            or not _equal(self._columns[name], other._columns[name])
        ]

    def holds(self, new: Manifest) -> bool:
        """Whether a store holding this manifest holds `new`'s utterances: every column
        equal but the `LEGACY` and `DERIVED` ones only this one has."""
        own = (*LEGACY, *DERIVED)
        legacy = [n for n in own if n in self._columns and n not in new._columns]
        return all(name in legacy for name in self.differences(new))

    @property
    def groups(self) -> list[str]:
        """The corpus's group columns: every column beyond `COLUMNS`, the span and `DERIVED`."""
        own = {*COLUMNS, *SPAN, *DERIVED}
        return [name for name in self._columns if name not in own]

    def __repr__(self) -> str:
        return f"Manifest({len(self)} utterances, columns={list(self._columns)})"

    @property
    def names(self) -> list[str]:
        """Column names, `COLUMNS` first, extra columns after in sorted order."""
        return list(self._columns)

    @property
    def utt_ids(self) -> np.ndarray:
        return self.column("utt_id")

    def column(self, name: str) -> np.ndarray:
        """A read-only view of one column."""
        try:
            values = self._columns[name]
        except KeyError:
            raise StoreError(f"manifest has no column {name!r} (has {self.names})") from None
        view = values.view()
        view.flags.writeable = False
        return view

    def columns(self) -> dict[str, np.ndarray]:
        return {name: values.copy() for name, values in self._columns.items()}

    def index(self, utt_id: str) -> int:
        """Row of ``utt_id``; StoreError when the manifest lacks it."""
        try:
            return self._index[utt_id]
        except KeyError:
            raise StoreError(f"utterance {utt_id!r} is not in the manifest") from None

    def __contains__(self, utt_id: object) -> bool:
        return utt_id in self._index


def _group_columns(utterances: Sequence[Utterance]) -> dict[str, list[str | int]]:
    """A column per group of the utterances, its values' type (an integer group where an
    utterance lacks it becomes text, "" there)."""
    names = dict.fromkeys(name for u in utterances for name, _ in u.groups)
    clash = sorted(set(names) & {*COLUMNS, *SPAN})
    if clash:
        raise StoreError(f"corpus groups {', '.join(clash)} clash with the manifest's own columns")
    values = [dict(u.groups) for u in utterances]
    return {name: [v.get(name, "") for v in values] for name in names}


def _score_columns(utterances: Sequence[Utterance]) -> dict[str, list[float]]:
    """A float column per numeric label of the utterances (NaN where one lacks it)."""
    names = dict.fromkeys(name for u in utterances for name, _ in u.scores)
    groups = {name for u in utterances for name, _ in u.groups}
    clash = sorted(set(names) & {*COLUMNS, *SPAN, *groups})
    if clash:
        raise StoreError(f"corpus scores {', '.join(clash)} clash with other manifest columns")
    values = [dict(u.scores) for u in utterances]
    return {name: [float(v.get(name, np.nan)) for v in values] for name in names}


def _spans(utterances: Sequence[Utterance]) -> dict[str, list[float]]:
    """`SPAN`'s columns where some utterance is a part of its file, else none."""
    if all(u.span is None for u in utterances):
        return {}
    ends = [u.span or (float("nan"), float("nan")) for u in utterances]
    return {SPAN[0]: [s for s, _ in ends], SPAN[1]: [e for _, e in ends]}


def _validated(columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    missing = [name for name in COLUMNS if name not in columns]
    if missing:
        raise StoreError(f"manifest lacks columns: {', '.join(missing)}")
    extra = sorted(set(columns) - set(COLUMNS))
    out = {n: _as_column(n, np.asarray(columns[n]), COLUMNS.get(n)) for n in [*COLUMNS, *extra]}
    lengths = {name: len(values) for name, values in out.items()}
    if len(set(lengths.values())) > 1:
        raise StoreError(f"manifest columns differ in length: {lengths}")
    return out


def _as_column(name: str, values: np.ndarray, kind: str | None) -> np.ndarray:
    if values.ndim != 1:
        raise StoreError(f"manifest column {name!r} must be 1-D, got shape {values.shape}")
    if kind is None:
        kind = "str" if len(values) == 0 else _KINDS.get(values.dtype.kind)
        if kind is None:
            raise StoreError(f"manifest columns must be strings or numbers, got {values.dtype}")
    if kind == "str":
        return np.array([_text(v) for v in values.tolist()], dtype=np.str_)
    converted = values.astype(_DTYPES[kind])
    if kind == "int" and values.dtype.kind == "f" and not np.array_equal(converted, values):
        raise StoreError(f"manifest column {name!r} must hold integers")
    return converted


def _text(value: object) -> str:
    """A string cell as text: bytes are UTF-8 (how both backends store strings), and a
    file name's bytes that are not UTF-8 are written `\\xNN` (`ser.corpus.files`)."""
    return value.decode("utf-8") if isinstance(value, bytes) else shown(str(value))


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    kind = a.dtype.kind
    return kind == b.dtype.kind and bool(np.array_equal(a, b, equal_nan=kind == "f"))


def _relative_wav(wav: Path | None, root: str | Path | None) -> str:
    if wav is None:
        return ""
    if root is not None:
        # Compare absolute paths first, then with symlinks resolved (a root given through
        # a link still yields relative paths).
        for under, top in (
            (Path(wav).absolute(), Path(root).absolute()),
            (Path(wav).resolve(), Path(root).resolve()),
        ):
            if under.is_relative_to(top):
                return under.relative_to(top).as_posix()
    return str(wav)
