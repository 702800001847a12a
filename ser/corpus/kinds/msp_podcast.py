"""MSP-Podcast: `Labels/labels_consensus.csv` and `Audios/<FileName>` under the root
(release 1.11 and later; `Transcripts/<stem>.txt` optional).

The CSV's columns: `FileName` (`MSP-PODCAST_0001_0008.wav`; a name without `.wav` gets
it), `EmoClass` (the consensus primary emotion: A angry, S sad, H happy, U surprise, F
fear, D disgust, C contempt, N neutral, O other, X no agreement), `EmoAct`, `EmoVal`,
`EmoDom` (the 1-7 attribute means: the manifest's arousal, valence and dominance),
`SpkrID` (`Unknown` where the release does not know), `Gender` and `Split_Set` (Train,
Development, Test1, Test2, Test3; the manifest's `split`: train, dev, test for Test1,
test2, test3). A row without an `EmoClass` (an unlabelled partition) is a problem, not read.

The annotators' votes, where the release ships `Labels/labels_detailed.csv` (a row per
annotator and file), become each utterance's `votes`: (annotator, code), the primary
emotion an annotator chose, by name (`Angry`, `Neutral`, ...; another name, such as
`Other-Curious`, is `oth`). Two shapes of the file are read: columns `FileName`,
`EmoClass_Major` (and `WorkerID` where given), or `FileName` and one field
`worker; primary; secondary; A:a; V:v; D:d`. Without the file, no votes.

O and X are read (codes `oth`, `xxx`: class set `all` counts them) and no class set a
model trains on holds them: `8` (the primary emotions) and `4` leave them out. Speakers
the release calls `Unknown` stay one speaker named `Unknown`: a protocol cannot prove them
apart, so a fold with them on both sides is recorded speaker-dependent, naming them.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator
from pathlib import Path

from ser.corpus.kind import CorpusKind, Synthetic, fixed, register
from ser.corpus.kinds.flat import LEGACY_IDENTITY, csv_rows, four_of, pick, read_records
from ser.corpus.kinds.official import Official
from ser.corpus.labels import LabelSet
from ser.corpus.progress import TRANSCRIPTS, counted
from ser.corpus.records import CorpusReading, Problem, Utterance
from ser.corpus.text import TextLines, read_lines
from ser.errors import CorpusError

LABELS = Path("Labels") / "labels_consensus.csv"
DETAILED = Path("Labels") / "labels_detailed.csv"
AUDIO, TEXT = "Audios", "Transcripts"
EMOTIONS = {
    "A": "ang",
    "S": "sad",
    "H": "hap",
    "U": "sur",
    "F": "fea",
    "D": "dis",
    "C": "con",
    "N": "neu",
    "O": "oth",
    "X": "xxx",
}
PRIMARY = tuple(code for code in EMOTIONS.values() if code not in ("oth", "xxx"))
# The detailed file's emotion names (lower case) -> codes; any other name is `oth`.
VOTED = {
    "angry": "ang",
    "sad": "sad",
    "happy": "hap",
    "surprise": "sur",
    "fear": "fea",
    "disgust": "dis",
    "contempt": "con",
    "neutral": "neu",
}
SPLITS = {
    "Train": "train",
    "Development": "dev",
    "Test1": "test",
    "Test2": "test2",
    "Test3": "test3",
}
COLUMNS = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set")
ATTRIBUTES = ("EmoVal", "EmoAct", "EmoDom")  # valence, arousal, dominance: 1-7
UNKNOWN = "Unknown"
LAYOUT = f"{LABELS.as_posix()}, {AUDIO}/<FileName>"
LABEL_SETS: dict[str, LabelSet] = {
    "4": four_of(PRIMARY),
    "8": LabelSet("8", PRIMARY, {c: c for c in PRIMARY}),
    "all": LabelSet("all", tuple(EMOTIONS.values()), {c: c for c in EMOTIONS.values()}),
}


def detect(root: Path) -> bool:
    return (root / LABELS).is_file()


def signature(root: Path) -> list[Path]:
    return [p for p in (root / LABELS, root / AUDIO, root / TEXT) if p.exists()]


def read(root: Path, classes: str) -> CorpusReading:
    label_set = pick(LABEL_SETS, classes, "msp-podcast")
    path = root / LABELS
    if not path.is_file():
        hint = f" (did you mean {root.parent}?)" if root.name in ("Labels", AUDIO) else ""
        raise CorpusError(f"{root} is not an MSP-Podcast root: no {LABELS}{hint}")
    problems: list[Problem] = []
    utterances = []
    votes = read_votes(root / DETAILED, problems)
    for number, row in counted(_rows(path, problems), TRANSCRIPTS):  # a file per row
        if row["FileName"] and not row["EmoClass"]:  # Test3's labels are withheld
            stem = Path(row["FileName"]).stem
            problems.append(Problem(stem, f"{path}:{number}: no EmoClass (unlabelled)"))
        else:
            utterances.append(_utterance(root, path, number, row, votes, problems))
    return read_records(root, utterances, label_set, problems)


def read_votes(path: Path, problems: list[Problem]) -> dict[str, tuple[tuple[str, str], ...]]:
    """Each file's (annotator, code) votes in `path` (the module doc's two shapes), by
    stem; {} without the file; a `CorpusError` naming the file and line for a bad row,
    a problem for a line not UTF-8."""
    if not path.is_file():
        return {}
    try:
        text = read_lines(path)
        votes = _votes_in(path, csv.reader(text.lines))
    except (OSError, csv.Error) as error:
        raise CorpusError(f"cannot read {path}: {error}") from None
    problems.extend(text.problems(_first_cells(text)))
    return votes


def _votes_in(path: Path, rows: Iterator[list[str]]) -> dict[str, tuple[tuple[str, str], ...]]:
    header = [cell.strip() for cell in next(rows, [])]
    if "FileName" not in header[:1] or len(header) < 2:
        raise CorpusError(f"{path}: the first column must be FileName, got {header[:1]}")
    vote = _by_columns(header) if "EmoClass_Major" in header else _by_field
    votes: dict[str, list[tuple[str, str]]] = {}
    pairs: dict[tuple[str, str], tuple[str, str]] = {}  # one object a distinct vote: ~650k rows
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            annotator, name = vote(row)
        except (IndexError, ValueError):
            raise CorpusError(f"{path}:{number}: no annotator's primary emotion in {row}") from None
        mine = votes.setdefault(Path(row[0].strip()).stem, [])
        pair = (annotator or str(len(mine) + 1), VOTED.get(name.lower(), "oth"))
        mine.append(pairs.setdefault(pair, pair))
    return {stem: tuple(found) for stem, found in votes.items()}


def _by_columns(header: list[str]) -> Callable[[list[str]], tuple[str, str]]:
    """A vote from a row of the columnar shape (`EmoClass_Major`, `WorkerID`)."""
    emotion = header.index("EmoClass_Major")
    worker = next((header.index(c) for c in ("WorkerID", "Worker") if c in header), None)

    def vote(row: list[str]) -> tuple[str, str]:
        name = row[emotion].strip()
        if not name:
            raise ValueError(name)
        return ("" if worker is None else row[worker].strip()), name

    return vote


def _by_field(row: list[str]) -> tuple[str, str]:
    """`worker; primary; secondary; A:..; V:..; D:..` (the secondary may be absent)."""
    parts = [part.strip() for part in row[1].split(";")]
    if len(parts) < 2 or not parts[1] or ":" in parts[1]:
        raise ValueError(row[1])
    return parts[0], parts[1]


def _rows(path: Path, problems: list[Problem]) -> list[tuple[int, dict[str, str]]]:
    try:
        text = read_lines(path)
    except OSError as error:
        raise CorpusError(f"cannot read {path}: {error.strerror or error}") from None
    rows = csv_rows(path, text.text, COLUMNS)
    if not rows:
        raise CorpusError(f"{path}: no utterances in it")
    problems.extend(text.problems(_first_cells(text)))
    return rows


def _first_cells(text: TextLines) -> dict[int, str]:
    """Line number -> the utterance its first cell (FileName) names, for a line not UTF-8."""
    lines = (bad.number for bad in text.not_utf8)
    return {n: Path(text.lines[n - 1].split(",", 1)[0].strip()).stem for n in lines}


def _utterance(
    root: Path,
    path: Path,
    number: int,
    row: dict[str, str],
    votes: dict[str, tuple[tuple[str, str], ...]],
    problems: list[Problem],
) -> Utterance:
    name, emotion, split = row["FileName"], row["EmoClass"], row["Split_Set"]
    if not name or emotion not in EMOTIONS or split not in SPLITS:
        raise CorpusError(
            f"{path}:{number}: FileName {name!r}, EmoClass {emotion!r} (one of "
            f"{''.join(EMOTIONS)}), Split_Set {split!r} (one of {', '.join(SPLITS)})"
        )
    wav = root / AUDIO / (name if name.lower().endswith(".wav") else f"{name}.wav")
    valence, arousal, dominance = (_number(path, number, row, c) for c in ATTRIBUTES)
    return Utterance(
        utt_id=wav.stem,
        wav_path=wav,
        label=EMOTIONS[emotion],
        speaker=row["SpkrID"] or UNKNOWN,
        gender={"female": "F", "male": "M"}.get(row["Gender"].lower(), ""),
        transcript=_transcript(root / TEXT / f"{wav.stem}.txt", wav.stem, problems),
        valence=valence,
        arousal=arousal,
        dominance=dominance,
        votes=votes.get(wav.stem, ()),
        groups=(("split", SPLITS[split]),),
    )


def _number(path: Path, number: int, row: dict[str, str], column: str) -> float:
    value = row[column]
    try:
        return float(value) if value else math.nan
    except ValueError:
        raise CorpusError(f"{path}:{number}: {column} {value!r} is not a number") from None


def _transcript(path: Path, utt_id: str, problems: list[Problem]) -> str:
    """The shipped transcript, "" when there is none (the release lacks some)."""
    try:
        text = read_lines(path)
    except OSError:
        return ""
    problems.extend(text.problems(dict.fromkeys(range(1, len(text.lines) + 1), utt_id)))
    return text.text.strip()


register(
    CorpusKind(
        "msp-podcast",
        "MSP-Podcast",
        LAYOUT,
        read,
        detect,
        signature,
        fixed(LABEL_SETS),
        "official",
        groups=("split",),
        after=(Official,),
        by=("split", "speaker"),
        not_trained=("all",),
        votes=True,
        identity=LEGACY_IDENTITY,
        synthetic=Synthetic.in_toolkit("msp-podcast", ("utterances", "hours")),
    )
)
