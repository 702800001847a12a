"""A corpus by a manifest: a CSV (header line) or JSONL file (one object a line) the user
writes, one utterance a row.

Columns: `utt_id`, `wav` (relative to the manifest's folder, or absolute), `label`,
`speaker` (required); `transcript`, `dialog` and `order` (an integer rank in its dialog;
given a dialog without it, the file's order), `split` (`train`, `dev` or `test`: the
official partitions), `gender`, `valence`, `arousal`, `dominance` (numbers), `start` and
`end` (seconds: the utterance is that part of its wav, which may hold several), `votes`
(the annotators' categories, `neu;hap;neu` or a JSON list) optional; any other column is
a group, kept as text in the store's manifest (what `logo:<column>` folds over).
Labels are free text: class set `all` is every label found, `4` the codes neu hap sad
ang. A bad file is one `CorpusError` naming it and its first problems by line: a CSV is
separated by commas (another separator is named), a quoted line break in a cell is read
as a space, and votes that are neither `;`-separated codes nor a JSON list of them are
refused here, where extraction and training both read them.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ser.corpus.files import FOLDER
from ser.corpus.kind import CorpusKind, Maker, Synthetic, Written, register
from ser.corpus.kinds.flat import (
    LEGACY_IDENTITY,
    csv_table,
    four_of,
    json_lines,
    pick,
    read_records,
)
from ser.corpus.kinds.official import Official
from ser.corpus.labels import LabelSet
from ser.corpus.records import CorpusReading, Utterance
from ser.corpus.text import LATIN1, TextLines, read_lines
from ser.errors import CorpusError

REQUIRED = ("utt_id", "wav", "label", "speaker")
OPTIONAL = (
    "transcript",
    "dialog",
    "order",
    "split",
    "gender",
    "valence",
    "arousal",
    "dominance",
    "start",
    "end",
    "votes",
)
RESERVED = ("duration", "transcript_raw")
SPLITS = ("train", "dev", "test")
SUFFIXES = (".csv", ".jsonl")
SHOWN = 10
#: Separators a CSV manifest may come with instead of commas, named as a message names them.
SEPARATORS = {";": "semicolons (;)", "\t": "tabs", "|": "bars (|)"}
#: How a votes value is written, as a message about one says it.
VOTES = 'write them as neu;hap;neu or as a JSON list, ["neu", "hap", "neu"]'


def detect(root: Path) -> bool:
    return root.is_file() and root.suffix.lower() in SUFFIXES


def signature(root: Path) -> list[Path]:
    return [root] if root.is_file() else []


def label_sets(labels: Sequence[str]) -> dict[str, LabelSet]:
    found = tuple(sorted(set(labels)))
    return {"4": four_of(found), "all": LabelSet("all", found, {c: c for c in found})}


def read(path: Path, classes: str) -> CorpusReading:
    if not detect(path):
        what = f"is not a {' or '.join(SUFFIXES)} file"
        what = f"is {FOLDER}" if path.is_dir() else what if path.exists() else "does not exist"
        raise CorpusError(f"{path} is not a manifest: it {what}")
    text = _text(path)
    rows = _rows(path, text.text)
    if not rows:
        raise CorpusError(f"{path}: no utterances in it (a header line and one row a file)")
    # A JSONL row may bring columns the first lacks: a reserved one is refused wherever.
    _check_columns(path, {column: None for _, row in rows for column in row})
    owners = _owners([n for n, _ in rows], len(text.lines))
    latin = {owners[bad.number] for bad in text.not_utf8 if bad.number in owners}
    records = _records(path, rows, latin)
    label_set = pick(label_sets([r.label for r in records]), classes, f"manifest {path}")
    # A line not UTF-8 is named with the utt_id of the row it is a line of.
    ids = {n: str(row.get("utt_id") or "") for n, row in rows}
    problems = text.problems({line: ids[first] for line, first in owners.items()})
    return read_records(path.parent, records, label_set, problems, source=path)


def _owners(firsts: list[int], lines: int) -> dict[int, int]:
    """Line number -> the first line of the row it is a line of (a quoted cell may span
    lines), for rows starting at lines `firsts` of a file of `lines` lines."""
    ends = [*firsts[1:], lines + 1]
    return {
        line: first for first, end in zip(firsts, ends, strict=True) for line in range(first, end)
    }


def _text(path: Path) -> TextLines:
    """The file's lines (`ser.corpus.text`: a line not UTF-8 read as Latin-1, said)."""
    try:
        return read_lines(path)
    except OSError as error:
        raise CorpusError(f"cannot read manifest {path}: {error.strerror or error}") from None


def _rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) of the file's `text`; a line that does not parse is a CorpusError."""
    if path.suffix.lower() == ".csv":
        header, rows = csv_table(path, text)
        _check_separator(path, header, text.partition("\n")[0])
        bad = next((n for n, row in rows if None in row), None)
        if bad is not None:
            raise CorpusError(f"{path}:{bad}: more cells than the header has columns")
        return [(n, {str(k): v for k, v in row.items()}) for n, row in rows]
    return list(json_lines(path, text.splitlines()))


def _check_separator(path: Path, header: list[str], line: str) -> None:
    """`CorpusError` naming the separator of a header whose cells are not separated by
    commas (a spreadsheet's export in a locale that writes decimal commas uses `;`):
    read with commas, its rows would be refused for their cells' count or columns."""
    if all(column in header for column in REQUIRED):
        return
    counts = {sep: len(line.split(sep)) for sep in SEPARATORS}
    found = max(counts, key=lambda sep: counts[sep])
    if counts[found] > max(len(header), 1):
        raise CorpusError(
            f"{path}: its cells are separated by {SEPARATORS[found]}, not commas (header "
            f"{line[:60]!r}): ser reads a .csv manifest separated by commas; save it so "
            "(or as .jsonl)"
        )


def _check_columns(path: Path, row: dict[str, Any]) -> None:
    missing = [c for c in REQUIRED if c not in row]
    if missing:
        raise CorpusError(
            f"{path}: no column(s) {', '.join(missing)} (required: {', '.join(REQUIRED)}; "
            f"optional: {', '.join(OPTIONAL)})"
        )
    reserved = [c for c in row if c in RESERVED]
    if reserved:
        raise CorpusError(f"{path}: column(s) {', '.join(reserved)} are ser's own: rename them")


def _records(
    path: Path, rows: list[tuple[int, dict[str, Any]]], latin: set[int]
) -> list[Utterance]:
    """The rows' utterances (`latin`: the rows, by first line, read as Latin-1)."""
    errors: list[str] = []
    records = []
    ranks: Counter[str] = Counter()
    for number, row in rows:
        try:
            records.append(_record(path, row, ranks, number in latin))
        except ValueError as error:
            errors.append(f"line {number}: {error}")
    ids = Counter(r.utt_id for r in records)
    errors += [f"utt_id {u!r} on {n} rows" for u, n in ids.items() if n > 1]
    if errors:
        more = f" (and {len(errors) - SHOWN} more)" if len(errors) > SHOWN else ""
        raise CorpusError(f"manifest {path}: {'; '.join(errors[:SHOWN])}{more}")
    return records


def _record(path: Path, row: dict[str, Any], ranks: Counter[str], latin: bool) -> Utterance:
    votes = row.get("votes")
    text = {k: "" if v is None else str(v).strip() for k, v in row.items() if k != "votes"}
    empty = [c for c in REQUIRED if not text.get(c)]
    if empty:
        raise ValueError(f"empty {', '.join(empty)}")
    split = text.get("split", "")
    if split and split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    dialog = text.get("dialog", "")
    order = _integer(text.get("order", ""), "order") if text.get("order") else ranks[dialog]
    ranks[dialog] += 1
    groups = {k: v for k, v in text.items() if k not in (*REQUIRED, *OPTIONAL) or k == "split"}
    return Utterance(
        utt_id=text["utt_id"],
        wav_path=_wav(path, text["wav"], latin),
        label=text["label"],
        speaker=text["speaker"],
        gender=text.get("gender", ""),
        transcript=text.get("transcript", ""),
        dialog=dialog,
        order=order if dialog else 0,
        valence=_number(text, "valence"),
        arousal=_number(text, "arousal"),
        dominance=_number(text, "dominance"),
        votes=_votes(votes, text["utt_id"]),
        groups=tuple((k, v) for k, v in groups.items() if k != "split" or v),
        span=_span(text),
    )


def _wav(path: Path, cell: str, latin: bool) -> Path:
    """The file a `wav` cell of manifest `path` names (relative to its folder, or absolute).
    A cell on a line that is not UTF-8 (read as Latin-1) names the file whose name is the
    line's own bytes where the name as read is not there: a manifest saved in Latin-1 names
    a file of a Latin-1 disk by a name that is not UTF-8 either."""
    wav = _placed(path, cell)
    if latin and not wav.exists():
        as_written = _placed(path, os.fsdecode(cell.encode(LATIN1)))
        return as_written if as_written.exists() else wav
    return wav


def _placed(path: Path, cell: str) -> Path:
    wav = Path(cell).expanduser()
    return wav if wav.is_absolute() else path.parent / wav


def _span(text: dict[str, str]) -> tuple[float, float] | None:
    """(start, end) of the utterance in its wav; None for the whole file."""
    given = [text.get("start", ""), text.get("end", "")]
    if not any(given):
        return None
    if not all(given):
        raise ValueError("start and end go together (seconds within the wav)")
    start, end = _number(text, "start"), _number(text, "end")
    if not 0 <= start < end:
        raise ValueError(f"start {start} and end {end}: 0 <= start < end, in seconds")
    return start, end


def _votes(value: object, utt_id: str) -> tuple[tuple[str, str], ...]:
    """The annotators' categories, (annotator number, code) each: `neu;hap` text, or a
    list (a JSONL row's, or a cell's JSON list); ValueError naming the utterance for any
    other value, so that extraction refuses what training (which reads the votes again
    through here) would."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        cell = value
        try:
            value = json.loads(cell)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"votes of {utt_id!r} are not JSON ({error.msg} at character {error.pos + 1} "
                f"of {_short(cell)!r}): {VOTES}"
            ) from None
    codes: Sequence[object]
    if value is None or _is_code(value):
        codes = ("" if value is None else str(value)).split(";")
    elif isinstance(value, list):
        codes = value
    else:
        raise ValueError(f"votes of {utt_id!r} are {_short(json.dumps(value))}: {VOTES}")
    wrong = [c for c in codes if not _is_code(c)]
    if wrong:
        raise ValueError(f"votes of {utt_id!r}: {_short(json.dumps(wrong[0]))} is not a category")
    kept = [str(c).strip() for c in codes if str(c).strip()]
    return tuple((str(k), code) for k, code in enumerate(kept, 1))


def _is_code(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _short(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:37]}..."


def _integer(value: str, column: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{column} {value!r} is not an integer") from None


def _number(text: dict[str, str], column: str) -> float:
    value = text.get(column, "")
    if not value:
        return math.nan
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{column} {value!r} is not a number") from None


def write_synthetic(out: Path, seed: int, kit: Maker, options: Mapping[str, Any]) -> Written:
    """`out/corpus.csv`, the manifest of `out/wav/<speaker>_<code>_<take>.wav` in `kit`'s
    speech: 5 speakers x 4 emotions x 2 takes, the last speaker the test split, the one
    before it dev, the rest train (`official`)."""
    folder = kit.new_root(out) / "wav"
    folder.mkdir()
    rows: list[Sequence[str]] = [(*REQUIRED, "split")]
    for s in range(5):
        speaker, split = f"s{s + 1}", ("train", "train", "train", "dev", "test")[s]
        voice = kit.voice(seed, s, "FM"[s % 2])
        for k, code in enumerate(("neu", "hap", "sad", "ang")):
            for take in range(2):
                stem = f"{speaker}_{code}_{take}"
                rng = np.random.default_rng([seed, s, k, take])
                kit.write_wav(folder / f"{stem}.wav", rng, voice, code, (0.5, 0.9))
                rows.append((stem, f"wav/{stem}.wav", code, speaker, split))
    listed = out / "corpus.csv"
    with listed.open("w", newline="") as file:
        csv.writer(file).writerows(rows)
    return Written(listed, len(rows) - 1, 5)


register(
    CorpusKind(
        "manifest",
        "a manifest",
        "a .csv or .jsonl file (utt_id, wav, label, speaker, ...)",
        read,
        detect,
        signature,
        label_sets,
        "speaker-kfold",
        groups=("split",),
        after=(Official,),
        by=("split", "speaker"),
        votes=True,
        identity=LEGACY_IDENTITY,
        synthetic=Synthetic(write_synthetic),
    )
)
