"""MELD: the release's `train_sent_emo.csv`, `dev_sent_emo.csv`, `test_sent_emo.csv`
under the root, and each row's clip beside them, as the release ships it: `dia{D}_utt{U}.mp4`
(48 kHz AAC, often stereo; its audio decoded, the video never) in `train_splits/`,
`dev_splits_complete/`, `output_repeated_splits_test/`.

Wavs cut from the clips are read too, at `<split>/dia{D}_utt{U}.wav` (`train/`, `dev/`,
`test/`): where both exist the wav wins, since the user cut it on purpose (a clip mended,
say). A row with neither is a `Problem` naming the clip the release should have (the wav
when only the wavs' folder exists), its utterance kept; a split with neither folder is a
`CorpusError`. A clip that exists but does not decode (the release has a few) is that
utterance's problem when read and its failure, with the reason, when extracted.

The CSVs' columns: `Sr No.`, `Utterance` (the transcript), `Speaker`, `Emotion` (neutral,
joy, sadness, anger, surprise, fear, disgust), `Sentiment` (positive, negative, neutral),
`Dialogue_ID`, `Utterance_ID`, `Season`, `Episode`, ... Dialog ids restart in each CSV,
so a dialog is `<split>_dia{D}` and an utterance `<split>_dia{D}_utt{U}`, its order the
`Utterance_ID` (what the fusion study's dialog-context model reads, as IEMOCAP's). A label
code holds both annotations, `<emotion>.<sentiment>` (`hap.pos`): class sets `7` (and
`all`) and `4` read the emotion, `sentiment` (neg neu pos) the sentiment. The manifest's
`split` is the CSV's (train, dev, test); `sentiment`, `season`, `episode` are kept.
Speakers (the six main characters above all) recur across the splits: the official
protocol is recorded speaker-dependent, naming them.
"""

from __future__ import annotations

from pathlib import Path

from ser.corpus.kind import CorpusKind, Synthetic, fixed, register
from ser.corpus.kinds.flat import LEGACY_IDENTITY, csv_rows, pick, read_records
from ser.corpus.kinds.official import Official
from ser.corpus.labels import LabelSet
from ser.corpus.records import CorpusReading, Problem, Utterance
from ser.corpus.text import read_lines
from ser.errors import CorpusError

SPLITS = ("train", "dev", "test")
RELEASE = {
    "train": "train_splits",
    "dev": "dev_splits_complete",
    "test": "output_repeated_splits_test",
}
EMOTIONS = {
    "neutral": "neu",
    "joy": "hap",
    "sadness": "sad",
    "anger": "ang",
    "surprise": "sur",
    "fear": "fea",
    "disgust": "dis",
}
SENTIMENTS = {"negative": "neg", "neutral": "neu", "positive": "pos"}
COLUMNS = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")
LAYOUT = (
    "{train,dev,test}_sent_emo.csv; clips {train_splits,dev_splits_complete,"
    "output_repeated_splits_test}/dia{D}_utt{U}.mp4 or wavs {train,dev,test}/dia{D}_utt{U}.wav"
)
# Neutral is ~47 % of MELD's training utterances (7 classes), fear and disgust ~3 % each:
# unweighted, a model learns to say neutral. `ser train` weighs the classes by default here
# (--class-weights none turns it off).
CLASS_WEIGHTS = "balanced"
CODES = tuple(f"{e}.{s}" for e in EMOTIONS.values() for s in SENTIMENTS.values())


# Sentiment classes are not emotions: no class of another corpus's set shares their name.
SENTIMENT_NAMES = {
    "neg": "negative sentiment",
    "neu": "neutral sentiment",
    "pos": "positive sentiment",
}


def _set(name: str, classes: tuple[str, ...], part: int) -> LabelSet:
    mapping = {c: c.split(".")[part] for c in CODES if c.split(".")[part] in classes}
    return LabelSet(name, classes, mapping, SENTIMENT_NAMES if part == 1 else {})


LABEL_SETS: dict[str, LabelSet] = {
    "4": _set("4", ("neu", "hap", "sad", "ang"), 0),
    "7": _set("7", tuple(EMOTIONS.values()), 0),
    "sentiment": _set("sentiment", tuple(SENTIMENTS.values()), 1),
    "all": _set("all", tuple(EMOTIONS.values()), 0),
}


def _csv(root: Path, split: str) -> Path:
    return root / f"{split}_sent_emo.csv"


def detect(root: Path) -> bool:
    return root.is_dir() and any(_csv(root, s).is_file() for s in SPLITS)


def signature(root: Path) -> list[Path]:
    return [p for s in SPLITS for p in (_csv(root, s), root / s, root / RELEASE[s]) if p.exists()]


def read(root: Path, classes: str) -> CorpusReading:
    label_set = pick(LABEL_SETS, classes, "meld")
    splits = [s for s in SPLITS if _csv(root, s).is_file()]
    if not splits:
        raise CorpusError(
            f"{root} is not a MELD root: no {', '.join(_csv(root, s).name for s in SPLITS)}"
        )
    problems = [
        Problem(_csv(root, s).name, f"no {_csv(root, s)}: MELD's {s} split is not read")
        for s in SPLITS
        if s not in splits
    ]
    utterances = [u for s in splits for u in _split_utterances(root, s, problems)]
    return read_records(root, utterances, label_set, problems)


def _split_utterances(root: Path, split: str, problems: list[Problem]) -> list[Utterance]:
    path = _csv(root, split)
    cut, release = root / split, root / RELEASE[split]
    if not (cut.is_dir() or release.is_dir()):
        raise CorpusError(
            f"{path}: its clips are in neither {release} (the release's .mp4 clips, unpacked) "
            f"nor {cut} (wavs cut from them)"
        )
    text = read_lines(path, fallback="cp1252")  # copies re-saved on Windows are cp1252
    rows = csv_rows(path, text.text, COLUMNS)
    utterances = [_utterance(path, root, split, number, row) for number, row in rows]
    lines = {number: u.utt_id for (number, _), u in zip(rows, utterances, strict=True)}
    problems.extend(text.problems(lines))
    seen: set[str] = set()
    for utterance in utterances:
        if utterance.utt_id in seen:
            raise CorpusError(f"{path}: {utterance.utt_id} (dialog and utterance id) on two rows")
        seen.add(utterance.utt_id)
    return utterances


def _utterance(path: Path, root: Path, split: str, number: int, row: dict[str, str]) -> Utterance:
    emotion, sentiment = row["Emotion"].lower(), row["Sentiment"].lower()
    dialog, utterance = row["Dialogue_ID"], row["Utterance_ID"]
    if emotion not in EMOTIONS or sentiment not in SENTIMENTS:
        raise CorpusError(
            f"{path}:{number}: Emotion {row['Emotion']!r} (one of {', '.join(EMOTIONS)}), "
            f"Sentiment {row['Sentiment']!r} (one of {', '.join(SENTIMENTS)})"
        )
    if not (dialog.isdigit() and utterance.isdigit()):
        raise CorpusError(
            f"{path}:{number}: Dialogue_ID {dialog!r} and Utterance_ID {utterance!r} "
            "must be whole numbers"
        )
    stem = f"dia{int(dialog)}_utt{int(utterance)}"
    return Utterance(
        utt_id=f"{split}_{stem}",
        wav_path=_audio(root, split, stem),
        label=f"{EMOTIONS[emotion]}.{SENTIMENTS[sentiment]}",
        speaker=row["Speaker"],
        transcript=row["Utterance"],
        dialog=f"{split}_dia{int(dialog)}",
        order=int(utterance),
        groups=(
            ("split", split),
            ("sentiment", sentiment),
            ("season", row.get("Season", "")),
            ("episode", row.get("Episode", "")),
        ),
    )


def _audio(root: Path, split: str, stem: str) -> Path:
    """The row's wav if the user cut one, else the release's clip; when neither exists,
    the clip (the wav without the release's folder), which the reader names missing."""
    wav, clip = root / split / f"{stem}.wav", root / RELEASE[split] / f"{stem}.mp4"
    if wav.is_file():
        return wav
    return clip if clip.is_file() or clip.parent.is_dir() else wav


register(
    CorpusKind(
        "meld",
        "MELD",
        LAYOUT,
        read,
        detect,
        signature,
        fixed(LABEL_SETS),
        "official",
        groups=("split", "sentiment", "season", "episode"),
        after=(Official,),
        by=("split", "speaker"),
        class_weights=CLASS_WEIGHTS,
        identity=LEGACY_IDENTITY,
        synthetic=Synthetic.in_toolkit("meld"),
    )
)
