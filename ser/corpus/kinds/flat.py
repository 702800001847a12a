"""What the corpora of one utterance per file share: their `Utterance` records get
their length from the wav's header, class sets filter them, and the summary counts
classes per group (speaker, split).

A corpus without dialogs gives each utterance a dialog of its own (dialog = utt_id,
order 0); start 0, end = duration (or the span's ends, for a part of a longer file);
valence, arousal and dominance NaN unless the corpus has them.

>>> utterance = Utterance("a", None, "neu", "s1")
>>> reading = read_records(Path("."), [utterance], four_of(("neu",)), [])
>>> reading.utterances[0].dialog, [p.problem for p in reading.problems]
('a', ['wav missing: no file named for it'])
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ser.corpus.files import FOLDER, not_a_file, shown
from ser.corpus.labels import LabelSet
from ser.corpus.progress import AUDIO_HEADERS, counted
from ser.corpus.records import CorpusReading, Problem, Utterance
from ser.errors import ConfigError, CorpusError

#: The codes every kind but IEMOCAP writes (IEMOCAP's own, plus `cal`: RAVDESS's calm).
FOUR = ("neu", "hap", "sad", "ang")

#: The manifest columns the digest of a store of the kinds that predate
#: `CorpusKind.identity` hashes (those present), in that order: those kinds pin them, so
#: their stores keep the identity (`StoreCorpus.digest`) their sweep cells are keyed by.
LEGACY_IDENTITY = ("utt_id", "label", "session", "speaker", "dialog", "order", "split")
#: A CSV row by column (`csv_table`): None holds the cells beyond the header's columns.
CsvRow = dict[str | None, Any]


def label_sets(codes: Sequence[str], name: str) -> dict[str, LabelSet]:
    """A corpus's class sets: its own codes under `name` and `all`, and the 4 classes."""
    own = {code: code for code in codes}
    whole = tuple(codes)
    return {
        "4": four_of(codes),
        name: LabelSet(name, whole, own),
        "all": LabelSet("all", whole, own),
    }


def pick(sets: Mapping[str, LabelSet], name: str, corpus: str) -> LabelSet:
    """Class set `name` of a corpus; `ConfigError` naming the sets it has."""
    if name not in sets:
        raise ConfigError(f"{corpus} has no class set {name!r}: choose one of {', '.join(sets)}")
    return sets[name]


def four_of(codes: Sequence[str]) -> LabelSet:
    """The 4-class set (neu hap sad ang) of a corpus that has those codes."""
    return LabelSet("4", FOUR, {c: c for c in FOUR if c in codes})


def csv_table(path: Path, text: str) -> tuple[list[str], list[tuple[int, CsvRow]]]:
    """The header and rows of CSV `text` (the file `path`'s lines joined by newlines), each
    row with the number of its first line and as `csv.DictReader` gives it (a short row's
    missing cells None, a long row's extra cells a list under None), blank lines skipped.

    A quoted line break in a cell is a space: the cell's words stay apart, and a cell
    holds one line. `CorpusError` naming `path` and the line the csv module cannot read."""
    reader = csv.reader(io.StringIO(text, newline=""))  # line breaks in quotes kept
    rows = []
    try:
        header = [_one_line(cell) for cell in next(reader, [])]
        first = reader.line_num + 1
        for cells in reader:
            if cells:
                rows.append((first, _row(header, [_one_line(cell) for cell in cells])))
            first = reader.line_num + 1
    except csv.Error as error:
        raise CorpusError(f"cannot read {path}: line {reader.line_num + 1}: {error}") from None
    return header, rows


def _one_line(cell: str) -> str:
    return cell.replace("\n", " ")


def _row(header: Sequence[str], cells: list[str]) -> CsvRow:
    row: CsvRow = dict(zip(header, cells, strict=False))
    if len(cells) > len(header):
        row[None] = cells[len(header) :]
    row.update(dict.fromkeys(header[len(cells) :]))
    return row


def csv_rows(path: Path, text: str, columns: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of a release's CSV `text` read from `path`, cells stripped; a
    `CorpusError` naming `path` when a column of `columns` is missing or a line is bad."""
    header, rows = csv_table(path, text)
    missing = [c for c in columns if c not in header]
    if missing:
        raise CorpusError(f"{path}: no column(s) {', '.join(missing)} ({', '.join(columns)})")
    return [(n, {k: (v or "").strip() for k, v in row.items() if k}) for n, row in rows]


def json_lines(path: Path, lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of a JSONL file's `lines`, blank ones skipped; `CorpusError`
    naming `path`:line for a line that is not a JSON object."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise CorpusError(f"{path}:{number}: not JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise CorpusError(f"{path}:{number}: not a JSON object")
        yield number, row


def read_records(
    root: Path,
    utterances: Sequence[Utterance],
    label_set: LabelSet,
    problems: list[Problem],
    source: Path | None = None,
) -> CorpusReading:
    """The utterances of `label_set`'s classes, their lengths read, sorted by (dialog,
    order, id); a missing or unreadable wav is a problem (the utterance kept, as
    IEMOCAP's are). Transcripts are kept as given (`transcript_raw`) and with their
    whitespace collapsed. Each utterance measured is told to the read's hook
    (`ser.corpus.progress`)."""
    kept = [u for u in utterances if label_set.class_of(u.label) is not None]
    # A file holding many utterances (spans of one recording) is measured once.
    lengths: dict[Path, tuple[float, tuple[str, ...]]] = {}
    measured = [_measured(u, problems, lengths) for u in counted(kept, AUDIO_HEADERS)]
    measured.sort(key=lambda u: (u.dialog, u.order, u.utt_id))
    dropped = {u.utt_id for u in utterances} - {u.utt_id for u in kept}
    shown = [p for p in problems if p.utt_id not in dropped]  # theirs go with them
    return CorpusReading(root, tuple(measured), tuple(shown), source)


def _measured(
    utterance: Utterance,
    problems: list[Problem],
    lengths: dict[Path, tuple[float, tuple[str, ...]]],
) -> Utterance:
    wav, duration = utterance.wav_path, 0.0
    if wav is None or not_a_file(wav) is not None:
        problems.append(Problem(utterance.utt_id, _absent(wav)))
        wav = None
    else:
        if wav not in lengths:
            lengths[wav] = _seconds(wav)
        duration, said = lengths[wav]
        problems.extend(Problem(utterance.utt_id, text) for text in said)
    start, end = utterance.span or (0.0, duration)
    if utterance.span is not None and wav is not None and not 0 <= start < end <= duration:
        problems.append(
            Problem(
                utterance.utt_id, f"span {start}-{end} s is not within {shown(wav)} ({duration} s)"
            )
        )
        wav, start, end = None, 0.0, 0.0
    return replace(
        utterance,
        wav_path=wav,
        start=start,
        end=end,
        duration=round(end - start, 4),
        transcript_raw=utterance.transcript,
        transcript=" ".join(utterance.transcript.split()),
    )


def _absent(wav: Path | None) -> str:
    """The problem of an utterance without a file to read: none named, none there, or a
    folder where its file should be (named so: "missing" would send the user looking)."""
    if wav is None:
        return "wav missing: no file named for it"
    why = not_a_file(wav)
    return f"wav {shown(wav)} is {why}" if why == FOLDER else f"wav missing: no {shown(wav)}"


def _seconds(wav: Path) -> tuple[float, tuple[str, ...]]:
    """The audio's length by its header and what is wrong with it: 0 and a problem when
    it cannot be read or is empty, a problem too for a WAV cut short (whose extraction
    fails: `load_audio`)."""
    from ser.corpus.audio import AudioError, audio_info, cut_short

    try:
        info = audio_info(wav)
    except AudioError as error:
        return 0.0, (f"unreadable audio: {error}",)
    if info.frames == 0:
        return 0.0, (f"empty wav {wav}: no samples",)
    short = cut_short(wav)
    return round(info.seconds, 4), (() if short is None else (short,))


def column_of(utterance: Utterance, name: str) -> str:
    """An utterance's value of manifest column `name` (its own field, else a group)."""
    if name in Utterance.__dataclass_fields__:
        return str(getattr(utterance, name))
    value = utterance.group(name)
    return "" if value is None else str(value)


def summarize_by(reading: CorpusReading, label_set: LabelSet, by: str) -> dict[str, Any]:
    """`ser corpus summary`'s JSON for a corpus grouped by column `by`: `per_<by>`."""
    groups: dict[str, dict[str, int]] = {}
    for utt in reading.utterances:
        counts = groups.setdefault(column_of(utt, by), dict.fromkeys(label_set.classes, 0))
        cls = label_set.class_of(utt.label)
        if cls is not None:
            counts[cls] += 1
    return {
        "utterances": len(reading.utterances),
        f"per_{by}": dict(sorted(groups.items())),
        "speakers": len({u.speaker for u in reading.utterances}),
        "hours": round(sum(u.duration for u in reading.utterances) / 3600, 4),
        "problems": [{"utt_id": p.utt_id, "problem": p.problem} for p in reading.problems],
    }
