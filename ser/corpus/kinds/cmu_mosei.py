"""CMU-MOSI and CMU-MOSEI as the CMU-MultimodalSDK publishes them (`cmu_sdk`: the files'
formats): opinion segments of YouTube monologues, each a span of its video's full wav
(`Raw/Audio/Full/WAV_16000/<video>.wav`, read after a seek, never cut to files), its
text the segmented transcript's line of the same span, its labels the `.csd` row:
the sentiment score in [-3, 3] and, for MOSEI, six emotion intensities in [0, 3], kept
as the manifest's float columns `sentiment`, `happy`, ... `fear` (`Utterance.scores`).

Quirks said: neither corpus names its speakers; a video is one speaker's monologue, so
the speaker and the dialog are the video (the video is the group any protocol keeps on
one side). Segments of one video in time order are its dialog. A label row with no
transcript line of its span keeps its audio and has no text: a problem naming the
transcript file; a video with no wav keeps its rows as problems (as every kind's missing
wavs). Videos labelled but in none of the SDK's standard folds are `unassigned`.

Class sets by the score's sign (the label code): `sentiment` (neg, neu: exactly 0, pos)
and `2` (neg, pos: zeros left out, the field's "non0" convention). Protocols: `standard`,
the SDK's folds (train trained, valid validating, test tested; the default), and every
kind's (`random` for quick checks). Targets: `--target sentiment` is the score's
regression (`ser.heads.sentiment_score`), `--target emotions` MOSEI's six intensities
(`ser.heads.emotion_intensities`), `sentiment+emotions` both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ser.corpus.kind import CorpusKind, Synthetic, fixed, register
from ser.corpus.kinds import cmu_sdk
from ser.corpus.kinds.flat import pick, read_records
from ser.corpus.kinds.official import Official
from ser.corpus.labels import LabelSet
from ser.corpus.records import CorpusReading, Problem, Utterance
from ser.errors import CorpusError

AUDIO_DIR = Path("Raw") / "Audio" / "Full" / "WAV_16000"
TRANSCRIPT_DIR = Path("Raw") / "Transcript" / "Segmented" / "Combined"
LAYOUT = (
    f"{AUDIO_DIR}/<video>.wav, {TRANSCRIPT_DIR}/<video>.txt "
    "(video___segment___start___end___text), labels: the SDK's *Labels*.csd or labels.csv"
)
#: Where the labels are looked for, in order (the SDK downloads them where it is told).
LABEL_PLACES = (Path("."), Path("Raw") / "Labels", Path("Labels"), Path("labels"))
#: The SDK's names of the label files (any `*Labels*.csd` is read).
SDK_LABELS = {"cmu-mosei": "CMU_MOSEI_Labels.csd", "cmu-mosi": "CMU_MOSI_Opinion_Labels.csd"}
#: Fold names as the manifest's `split` group spells them (what `official` reads).
SPLIT = {"train": "train", "valid": "dev", "test": "test"}
CORPORA = {"cmu-mosi": "CMU-MOSI", "cmu-mosei": "CMU-MOSEI"}
SENTIMENT_NAMES = {
    "neg": "negative sentiment",
    "neu": "neutral sentiment",
    "pos": "positive sentiment",
}
_SIGNS = ("neg", "neu", "pos")
#: `--target sentiment` here is the score in [-3, 3] the field trains (the head
#: `sentiment-score`), not MELD's three classes.
SPELLED = {"sentiment": "sentiment-score"}
LABEL_SETS: dict[str, LabelSet] = {
    "sentiment": LabelSet("sentiment", _SIGNS, {c: c for c in _SIGNS}, SENTIMENT_NAMES),
    "2": LabelSet("2", ("neg", "pos"), {"neg": "neg", "pos": "pos"}, SENTIMENT_NAMES),
    "all": LabelSet("all", _SIGNS, {c: c for c in _SIGNS}, SENTIMENT_NAMES),
}


@dataclass(frozen=True)
class Standard(Official):
    """`standard`: the SDK's standard folds, as the papers report on them."""

    name = "standard"
    usage = "standard"
    validations: ClassVar[Mapping[str, str]] = {
        **Official.validations,
        "next-group": "the standard valid fold; best validation epoch tested",
    }


def labels_file(root: Path) -> Path | None:
    """The label file under `root`: a `.csd` whose name holds "Labels", or labels.csv."""
    for place in LABEL_PLACES:
        folder = root / place
        found = sorted(folder.glob("*Labels*.csd")) + sorted(folder.glob("labels.csv"))
        if found:
            return found[0]
    return None


def detect_mosei(root: Path) -> bool:
    return _columns(root) == len(cmu_sdk.MOSEI_COLUMNS)


def detect_mosi(root: Path) -> bool:
    return _columns(root) == 1


def _columns(root: Path) -> int:
    """The label columns of a root in the SDK's layout (0: not one, or unreadable)."""
    path = labels_file(root) if (root / TRANSCRIPT_DIR).is_dir() else None
    if path is None:
        return 0
    try:
        return len(cmu_sdk.label_columns(path))
    except CorpusError:
        return 0


def near(root: Path) -> str:
    """Why a root with the SDK's transcripts folder is neither corpus (its labels file
    missing or damaged), for the guess of a root no kind claims; "" for any other root."""
    if not (root / TRANSCRIPT_DIR).is_dir():
        return ""
    path = labels_file(root)
    if path is None:
        expected = " or ".join(f"{n} ({CORPORA[c]})" for c, n in SDK_LABELS.items())
        layout = f"{root} has the layout of CMU-MOSI and CMU-MOSEI ({TRANSCRIPT_DIR})"
        return f"{layout} but {_no_labels(expected)}"
    try:
        cmu_sdk.label_columns(path)
    except CorpusError as error:
        return str(error)
    return ""


def _no_labels(expected: str) -> str:
    *others, last = (p.as_posix() for p in LABEL_PLACES[1:])
    places = f"{', '.join(others)} or {last}"
    return (
        f"no labels file: expected {expected} (or any *Labels*.csd, or labels.csv) "
        f"in it or in its {places} folder; download it with the CMU-MultimodalSDK"
    )


def signature(root: Path) -> list[Path]:
    found = [labels_file(root), root / AUDIO_DIR, root / TRANSCRIPT_DIR]
    return [p for p in found if p is not None and p.exists()]


def read_mosei(root: Path, classes: str) -> CorpusReading:
    return read(root, classes, "cmu-mosei")


def read_mosi(root: Path, classes: str) -> CorpusReading:
    return read(root, classes, "cmu-mosi")


def read(root: Path, classes: str, corpus: str) -> CorpusReading:
    """Every labelled segment of `root`, in class set `classes`."""
    path = labels_file(root)
    if not (root / TRANSCRIPT_DIR).is_dir():
        raise CorpusError(f"{root} is not a {CORPORA[corpus]} root: {LAYOUT}")
    if path is None:
        raise CorpusError(
            f"{root} is not a {CORPORA[corpus]} root: {_no_labels(SDK_LABELS[corpus])}"
        )
    folds = cmu_sdk.standard_folds(corpus).fold_of()
    problems: list[Problem] = []
    utterances = [
        u
        for video, rows in sorted(cmu_sdk.read_labels(path, problems).items())
        for u in _segments(
            root, video, rows, SPLIT.get(folds.get(video, ""), "unassigned"), problems
        )
    ]
    return read_records(root, utterances, pick(LABEL_SETS, classes, corpus), problems)


def _segments(
    root: Path, video: str, rows: cmu_sdk.LabelRows, split: str, problems: list[Problem]
) -> list[Utterance]:
    transcript = root / TRANSCRIPT_DIR / f"{video}.txt"
    lines = cmu_sdk.read_transcript(transcript, problems) if transcript.is_file() else []
    matched = cmu_sdk.match(rows, lines)
    wav = root / AUDIO_DIR / f"{video}.wav"
    order = np.argsort(rows.intervals[:, 0], kind="stable")
    out = []
    for rank, i in enumerate(order):
        (start, end), line = rows.intervals[i], matched[i]
        utt_id = f"{video}_{line.segment}" if line else f"{video}_row{i + 1}"
        if line is None:
            where = transcript if transcript.is_file() else f"no {transcript}"
            problems.append(Problem(utt_id, f"no transcript line for {start:g}-{end:g} s: {where}"))
        scores = tuple(zip(rows.columns, map(float, rows.values[i]), strict=True))
        out.append(
            Utterance(
                utt_id,
                wav,
                _sign(scores[0][1]),
                video,
                dialog=video,
                order=rank,
                transcript=line.text if line else "",
                groups=(("split", split),),
                scores=scores,
                span=(float(start), float(end)),
            )
        )
    return out


def _sign(score: float) -> str:
    return "neg" if score < 0 else "pos" if score > 0 else "neu"


# CMU-MOSEI and CMU-MOSI: one layout, one reader, each its own labels file and name.
for _name, _title, _read, _detect in (
    ("cmu-mosei", "CMU-MOSEI", read_mosei, detect_mosei),
    ("cmu-mosi", "CMU-MOSI", read_mosi, detect_mosi),
):
    register(
        CorpusKind(
            _name,
            _title,
            LAYOUT,
            _read,
            _detect,
            signature,
            fixed(LABEL_SETS),
            "standard",
            classes="sentiment",
            groups=("split",),
            own=(Standard,),
            by=("split", "speaker"),
            synthetic=Synthetic.in_toolkit(_name),
            spelled=SPELLED,
            near=near,
        )
    )
