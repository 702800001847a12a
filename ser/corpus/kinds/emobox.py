"""EmoBox's folders as published (github.com/emo-box/EmoBox, `data/<name>/`), and its
track2 cross-corpus test sets.

A corpus folder `data/<name>/` holds `<name>.jsonl` (an object a line: `key`, `wav`
relative to the folder holding `downloads/`, `emo`, `length` in seconds, and for
PAVOQUE `start_time` / `end_time`: a part of a longer file), `label_map.json` (`emo` ->
EmoBox's class name; EMOVO's is `label_dict.json`), `data.seg.wrd.stm` (speakers) and
`fold_<k>/<name>_{train,test}_fold_<k>.jsonl` (`_valid_` where the corpus has an official
validation split). Other files there (`.json` twins, EmoDB's `_fold1` copies, MER2023's
`test1..3`) are not read: EmoBox's loader reads these.

Each line is an utterance: its id the `key`, its label EmoBox's class name after the map
(IEMOCAP's `exc` is `Happy`), its speaker by the corpus's rule (`emobox_corpora`), its
length the line's (the wav is not opened: EmoBox measured it; MELD's and others' audio is
video), and groups `dataset` (the name), `emo` (the code before the map) and `fold_<k>`
(`train`, `valid`, `test`, or "" where fold k's files do not list it), which the `emobox`
protocol folds by. Wav paths resolve against `--audio-root` (default: the EmoBox checkout
two folders above `data/<name>`); a wav missing there is a problem naming the path.

Refused, naming the file and line: a line that is not JSON or lacks `key`, `wav` or
`emo`; an `emo` the map lacks; a key twice; a fold file's key the corpus lacks, or listed
on two sides of a fold.

A track2 file (`<CORPUS>_selected_balenced.jsonl`: `wav_filename`, `label`, `speaker`),
one of EmoBox's four balanced cross-corpus test sets, reads alone: wavs relative to
--audio-root (default: the file's folder), no folds.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

from ser.corpus.audio import AudioError, audio_info
from ser.corpus.kind import CorpusKind, Optioned, Synthetic, register
from ser.corpus.kinds.emobox_corpora import (
    FOUR,
    MAPS,
    SIDES,
    STM,
    UNKNOWN,
    FromStm,
    code_of,
    corpus_of,
    label_map,
    label_sets,
    speaker_problems,
    stm_speakers,
)
from ser.corpus.kinds.emobox_summary import summarize
from ser.corpus.kinds.flat import LEGACY_IDENTITY, json_lines, pick
from ser.corpus.options import NO_OPTIONS, ReadOptions
from ser.corpus.progress import AUDIO_FILES, AUDIO_HEADERS, counted
from ser.corpus.protocols.emobox import EmoBoxFolds
from ser.corpus.records import CorpusReading, Problem, Utterance
from ser.corpus.text import read_lines
from ser.errors import CorpusError

# A track2 label (lower case) -> the class name EmoBox's label maps give it.
NAMES = {name.lower(): name for name in (*FOUR, "Fear", "Disgust", "Surprise", "Calm")}
TRACK2 = "_selected_balenced.jsonl"  # EmoBox's spelling
# What the audio root is, for a corpus folder and for a track2 file.
WHERE = {False: "the folder holding downloads/", True: "the folder wav_filename starts in"}
LAYOUT = (
    "data/<name>/<name>.jsonl, label_map.json, fold_<k>/<name>_{train,test}_fold_<k>.jsonl "
    f"(wavs under --audio-root); or a track2 <CORPUS>{TRACK2}"
)


def detect(root: Path) -> bool:
    if root.is_file():
        return root.name.endswith(TRACK2)
    return (root / f"{root.name}.jsonl").is_file() and any((root / m).is_file() for m in MAPS)


def signature(root: Path) -> list[Path]:
    """The files read (`ser extract`'s receipts; `files` adds the wav folders)."""
    if root.is_file():
        return [root]
    found = [root / f"{root.name}.jsonl", *(root / m for m in (*MAPS, STM))]
    found += [path for _, side in _fold_files(root) for path in side.values()]
    return [p for p in found if p.is_file()]


def files(root: Path, options: ReadOptions) -> list[Path]:
    """`signature` and the folders its wavs are in (a folder's mtime changes when a file
    in it is added, removed or renamed)."""
    lines = root if root.is_file() else _jsonl(root)
    if not lines.is_file():
        return signature(root)  # the read says what is wrong
    audio, field = audio_root(root, options), "wav_filename" if root.is_file() else "wav"
    rows = _lines(lines, [])  # what is wrong with it the read says
    folders = {(audio / str(row[field])).parent for _, row in rows if row.get(field)}
    return [*signature(root), *sorted(f for f in folders if f.is_dir())]


def audio_root(root: Path, options: ReadOptions) -> Path:
    """Where wav paths resolve: `--audio-root`, else the checkout two folders above
    `data/<name>` (a track2 file: its own folder)."""
    if options.audio_root is not None:
        return options.audio_root.expanduser().absolute()
    return root.parent if root.is_file() else root.parent.parent


def read(root: Path, classes: str) -> CorpusReading:
    return read_with(root, classes, NO_OPTIONS)


def read_with(root: Path, classes: str, options: ReadOptions) -> CorpusReading:
    if root.is_file():
        return _read_track2(root, classes, options)
    jsonl = _jsonl(root)
    if not jsonl.is_file():
        raise CorpusError(
            f"{root} is not an EmoBox corpus folder: no {jsonl.name} (point ser at "
            "<EmoBox>/data/<name>, or at a track2 file)"
        )
    name, audio = root.name, audio_root(root, options)
    problems: list[Problem] = []
    codes = label_map(root, problems)
    lines = [_line(jsonl, n, row, codes) for n, row in _lines(jsonl, problems)]
    _check_unique(jsonl, [line.key for line in lines])
    speakers = stm_speakers(root, problems) if isinstance(corpus_of(name).speakers, FromStm) else {}
    problems += speaker_problems(name, root, [line.key for line in lines], speakers)
    names = {x.emo: codes[code_of(x.emo, codes) or x.emo] for x in lines}
    problems += [
        Problem(jsonl.name, f"emo {emo!r} is not in the label map: read as {code_of(emo, codes)!r}")
        for emo in names if emo not in codes
    ]  # fmt: skip
    folds, sides = _fold_sides(root, jsonl, {line.key for line in lines}, problems)
    label_set = pick(label_sets(list(names.values())), classes, f"EmoBox {name}")
    kept = []
    chosen = [line for line in lines if label_set.class_of(names[line.emo]) is not None]
    for line in counted(chosen, AUDIO_FILES):  # a file looked for per line
        mine = sides.get(line.key, {})
        groups = (("dataset", name), ("emo", line.emo), *((f, mine.get(f, "")) for f in folds))
        speaker = corpus_of(name).speaker_of(line.key) or speakers.get(line.key, UNKNOWN)
        timing = (line.seconds, line.span)
        wav = audio / line.wav
        kept.append(_utterance(line.key, wav, names[line.emo], speaker, groups, timing, problems))
    return _reading(audio, root, kept, problems, options)


class _Line(NamedTuple):
    """What a line of `<name>.jsonl` gives, checked."""

    key: str
    wav: str
    emo: str
    seconds: float
    span: tuple[float, float] | None


def _reading(
    audio: Path, source: Path, kept: list[Utterance], problems: list[Problem],
    options: ReadOptions,
) -> CorpusReading:  # fmt: skip
    """The reading of `kept` (`_utterance`), sorted by id; when a wav is missing, a problem
    first naming the audio root (summaries show the first ones)."""
    kept = sorted(kept, key=lambda u: u.utt_id)
    missing = sum(u.wav_path is None for u in kept)
    if missing:
        how = "--audio-root" if options.audio_root is not None else "the default audio root"
        problems.insert(0, Problem(
            source.name, f"{missing} of {len(kept)} wavs missing under {how} {audio} "
            f"({WHERE[source.is_file()]}; give it with --audio-root)",
        ))  # fmt: skip
    return CorpusReading(audio, tuple(kept), tuple(problems), source=source)


def _jsonl(root: Path) -> Path:
    return root / f"{root.name}.jsonl"


def _lines(path: Path, problems: list[Problem]) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of a JSONL file; `CorpusError` naming file:line for a line
    that is not a JSON object; a line not UTF-8 read as Latin-1 and named in `problems`
    with its key."""
    try:
        text = read_lines(path)
    except OSError as error:
        raise CorpusError(f"cannot read {path}: {error.strerror or error}") from None
    rows = list(json_lines(path, text.lines))
    problems.extend(text.problems({n: str(row.get("key") or "") for n, row in rows}))
    return rows


def _line(path: Path, number: int, row: dict[str, Any], codes: dict[str, str]) -> _Line:
    missing = [f for f in ("key", "wav", "emo") if not row.get(f)]
    if missing:
        raise CorpusError(f"{path}:{number}: no {', '.join(missing)}")
    emo = str(row["emo"])
    if code_of(emo, codes) is None:
        raise CorpusError(
            f"{path}:{number}: emo {emo!r} is not in the label map ({', '.join(codes)})"
        )
    span = _span(path, number, row)
    return _Line(str(row["key"]), str(row["wav"]), emo, _seconds(path, number, row), span)


def _span(path: Path, number: int, row: dict[str, Any]) -> tuple[float, float] | None:
    """PAVOQUE's (start_time, end_time) in its long file; None for a whole file."""
    if "start_time" not in row and "end_time" not in row:
        return None
    try:
        start, end = float(row["start_time"]), float(row["end_time"])
    except (KeyError, TypeError, ValueError):
        raise CorpusError(f"{path}:{number}: start_time and end_time must be numbers") from None
    if not 0 <= start < end:
        raise CorpusError(f"{path}:{number}: start_time {start} and end_time {end}")
    return start, end


def _seconds(path: Path, number: int, row: dict[str, Any]) -> float:
    """The line's `length`, else num_frame / sample_rate, else 0 (unknown)."""
    try:
        if row.get("length") is not None:
            seconds = float(row["length"])
        elif row.get("num_frame") and row.get("sample_rate"):
            seconds = float(row["num_frame"]) / float(row["sample_rate"])
        else:
            return 0.0
    except (TypeError, ValueError):
        raise CorpusError(
            f"{path}:{number}: length {row.get('length')!r} is not a number"
        ) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise CorpusError(f"{path}:{number}: length {seconds} is not a duration")
    return seconds


def _check_unique(path: Path, keys: list[str], what: str = "key(s)") -> None:
    twice = sorted(key for key, n in Counter(keys).items() if n > 1)
    if twice:
        raise CorpusError(f"{path}: {what} on more than one line: {', '.join(twice[:10])}")


def _fold_files(root: Path) -> list[tuple[str, dict[str, Path]]]:
    """(fold group `fold_<k>`, side -> file) of each `fold_<k>` folder, by k; a side's
    file may be missing (checked by `_fold_sides`)."""
    folders = [p for p in root.glob("fold_*") if p.is_dir() and p.name[5:].isdigit()]
    out = []
    for folder in sorted(folders, key=lambda p: int(p.name[5:])):
        k = folder.name[5:]
        out.append((folder.name, {s: folder / f"{root.name}_{s}_fold_{k}.jsonl" for s in SIDES}))
    return out


def _fold_sides(
    root: Path, jsonl: Path, keys: set[str], problems: list[Problem]
) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The fold groups (`fold_<k>`, by k), and per key the side each fold's files list it
    on (train, valid, test; none: not listed)."""
    sides: dict[str, dict[str, str]] = {}
    folds = _fold_files(root)
    if not folds:
        problems.append(
            Problem(root.name, f"no fold_<k> folders in {root}: protocol emobox has none")
        )
    for group, paths in folds:
        for side, path in paths.items():
            if not path.is_file():
                if side != "valid":
                    raise CorpusError(f"{path.parent}: no {path.name} (fold {group} of EmoBox)")
                continue
            for number, row in _lines(path, problems):
                _place(path, number, row, (jsonl, keys), sides, group, side)
    return [group for group, _ in folds], sides


def _place(
    path: Path, number: int, row: dict[str, Any], corpus: tuple[Path, set[str]],
    sides: dict[str, dict[str, str]], group: str, side: str,
) -> None:  # fmt: skip
    key, (jsonl, keys) = row.get("key"), corpus
    if not key:
        raise CorpusError(f"{path}:{number}: no key")
    if key not in keys:
        raise CorpusError(f"{path}:{number}: key {key!r} is not in {jsonl}")
    mine = sides.setdefault(key, {})
    before = mine.get(group)
    if before is not None:
        where = f"twice on {side}" if before == side else f"on {before} and {side}"
        raise CorpusError(f"{path}:{number}: key {key!r} is {where} of {group}")
    mine[group] = side


def _utterance(
    key: str, wav: Path, label: str, speaker: str, groups: tuple[tuple[str, str], ...],
    timing: tuple[float, tuple[float, float] | None], problems: list[Problem],
) -> Utterance:  # fmt: skip
    """The utterance, its wav checked (missing: None and a problem saying where it was
    looked for), its times 0 to its length in seconds, or its span in the file."""
    found: Path | None = wav
    if not os.path.isfile(wav):
        problems.append(Problem(key, f"wav missing: no {wav}"))
        found = None
    seconds, span = timing
    start, end = span or (0.0, seconds)
    return Utterance(key, found, label, speaker, start=start, end=end,
                     duration=round(end - start, 4), groups=groups, span=span)  # fmt: skip


def _read_track2(path: Path, classes: str, options: ReadOptions) -> CorpusReading:
    """A track2 test set: `wav_filename` (relative to --audio-root), `label` (a class
    name in lower case: `happy` is `Happy`), `speaker`; the dataset is the file name's
    first part (`MELD_selected_balenced.jsonl`: meld), the id `<dataset>-<wav_filename
    less its suffix, / as ->` (SAVEE's `JK/sa09.wav`: `savee-JK-sa09`)."""
    dataset = path.name.removesuffix(TRACK2).lower()
    audio, rows = audio_root(path, options), []
    problems: list[Problem] = []
    for number, row in _lines(path, problems):
        missing = [f for f in ("wav_filename", "label", "speaker") if not row.get(f)]
        if missing:
            raise CorpusError(f"{path}:{number}: no {', '.join(missing)} (a track2 line)")
        if str(row["label"]).lower() not in NAMES:
            raise CorpusError(
                f"{path}:{number}: label {row['label']!r} is not one of {', '.join(NAMES)}"
            )
        rows.append(row)
    ids = [f"{dataset}-{Path(r['wav_filename']).with_suffix('').as_posix().replace('/', '-')}"
           for r in rows]  # fmt: skip
    _check_unique(path, ids, "the wav_filename of")
    labels = [NAMES[str(r["label"]).lower()] for r in rows]
    label_set = pick(label_sets(labels), classes, f"EmoBox track2 {path.name}")
    chosen = [(key, row, label) for key, row, label in zip(ids, rows, labels, strict=True)
              if label_set.class_of(label) is not None]  # fmt: skip
    kept = [
        _utterance(key, audio / row["wav_filename"], label, str(row["speaker"]),
                   (("dataset", dataset), ("emo", str(row["label"]))),
                   (_header_seconds(audio / row["wav_filename"]), None), problems)
        for key, row, label in counted(chosen, AUDIO_HEADERS)
    ]  # fmt: skip
    return _reading(audio, path, kept, problems, options)


def _header_seconds(wav: Path) -> float:
    """A track2 file's length from its header (its line has none), any container ser
    decodes; 0 when missing or unreadable (said by `_utterance` as a problem)."""
    try:
        return round(audio_info(wav).seconds, 4)
    except AudioError:
        return 0.0


register(CorpusKind(
    "emobox", "EmoBox", LAYOUT, read, detect, signature, label_sets, "emobox", classes="all",
    groups=("dataset", "emo"), own=(EmoBoxFolds,), summary=summarize,
    optioned=Optioned(read_with, files), identity=LEGACY_IDENTITY,
    synthetic=Synthetic.in_toolkit("emobox"),
))  # fmt: skip
