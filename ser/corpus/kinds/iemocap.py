"""IEMOCAP: an `IEMOCAP_full_release` folder -> utterance records.

Five sessions, each two actors (a woman and a man) in improvised and scripted dialogs;
`Session<N>/dialog/EmoEvaluation/<dialog>.txt` holds each labelled turn's times,
consensus code and [V, A, D] (1-5), each evaluator's categories (`C-E1:` lines) and
attributes (`A-E1:`), `dialog/transcriptions/` the words, `sentences/wav/<dialog>/` a wav
per turn. Every quirk of the format (docs/corpora.md, "IEMOCAP") is survived; what cannot be read
is reported as a `Problem` and the read goes on.

Groups: `session` (1-5: each holds two speakers of its own, so leaving one out is
speaker-independent) and `kind` (impro or script), stored in the manifest; `script`
(which improvisation or script a dialog performs, the same across sessions: `impro01`,
`script02_1`) derived from the dialog's name.

>>> from ser.synth.corpus import SynthConfig, write_corpus
>>> import tempfile
>>> root = Path(tempfile.mkdtemp()) / "IEMOCAP_full_release"
>>> _ = write_corpus(root, SynthConfig(dialogs_per_session=1, utterances_per_dialog=(4, 4)))
>>> reading = read(root, classes="all")
>>> len(reading.utterances), reading.problems
(20, ())
>>> reading.utterances[0].groups
(('kind', 'impro'), ('session', 1))
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ser.corpus.kind import CorpusKind, Origin, Synthetic, fixed, register
from ser.corpus.kinds.flat import LEGACY_IDENTITY
from ser.corpus.kinds.iemocap_files import (
    NUM,
    TURN_LINE,
    UTT_ID,
    dialog_files,
    eval_dir,
    file_names,
    numbered_lines,
    transcription_dir,
    unlabelled_dialogs,
)
from ser.corpus.kinds.iemocap_sessions import (
    LeaveOneSessionOut,
    ScriptFreeLoso,
    ScriptFreeSession5,
    SessionHeldOut,
    session_of_file,
    session_of_fold,
)
from ser.corpus.labels import LABEL_CODES, LABEL_SETS, get_label_set
from ser.corpus.records import CorpusReading, Problem, Utterance
from ser.errors import CorpusError

__all__ = ["LABEL_SETS", "UTT_ID", "detect", "read", "script_of", "signature", "summarize"]

SESSIONS = (1, 2, 3, 4, 5)
LAYOUT = "IEMOCAP_full_release/Session1..5/dialog/EmoEvaluation"

_LABEL_LINE = re.compile(
    rf"^\[\s*{NUM}\s*-\s*{NUM}\s*\]\s+(\S+)\s+(\S+)\s+\[\s*{NUM}\s*,\s*{NUM}\s*,\s*{NUM}\s*\]\s*$"
)
_XX_TURN = re.compile(r"^Ses\d\d[FM]_\w+_[FM]XX\d*$")
_SPEAKER_ONLY = re.compile(r"^[A-Za-z]{1,2}\s*:")  # `M: Yeah.`: a turn with no id or time
_TAG = re.compile(r"\[[^\[\]]*\]")
_VOTE_LINE = re.compile(r"^C-([A-Za-z]+\d*)\s*:(.*)$")  # `C-E2:\tNeutral; Anger;\t()`
#: The evaluators' category words (`C-` lines) and their codes ("Neutral state" in the
#: release, "Other: <free text>" for others).
CATEGORIES: dict[str, str] = {
    "neutral": "neu",
    "neutral state": "neu",
    "happiness": "hap",
    "excited": "exc",
    "sadness": "sad",
    "anger": "ang",
    "frustration": "fru",
    "surprise": "sur",
    "fear": "fea",
    "disgust": "dis",
    "other": "oth",
}


def detect(root: Path) -> bool:
    return any(eval_dir(root, s).is_dir() for s in SESSIONS)


def signature(root: Path) -> list[Path]:
    """The label and transcription files and the wav folders (`ser extract`'s receipts)."""
    texts = [*root.glob("Session*/dialog/EmoEvaluation/*.txt")]
    texts += root.glob("Session*/dialog/transcriptions/*.txt")
    # A wav folder's mtime changes when a file in it is added, removed or renamed.
    return [*texts, *(p for p in root.glob("Session*/sentences/wav/*") if p.is_dir())]


def script_of(dialog: str) -> str:
    """The improvisation or script a dialog performs: its name less the session part
    (`Ses01F_script02_1` -> `script02_1`); the same in every session.

    >>> script_of("Ses05M_impro03")
    'impro03'
    """
    return dialog.split("_", 1)[1] if "_" in dialog else dialog


def clean_transcript(raw: str) -> str:
    """The transcript without tags like `[LAUGHTER]` and the punctuation they leave
    dangling, whitespace collapsed.

    >>> clean_transcript("[LAUGHTER], That's what they say.")
    "That's what they say."
    >>> clean_transcript("Oh,  [breathing] okay [GARBAGE].")
    'Oh, okay.'
    >>> clean_transcript("[LAUGHTER]")
    ''
    """
    text = _TAG.sub("\0", raw.replace("\0", " "))
    text = re.sub(r"^[\s\0]*\0[\s,;:.]*", "", text)  # leading tags and the comma after them
    text = re.sub(r"\s*\0+\s*(?=[,.;:!?])", "", text)  # a tag right before punctuation
    return " ".join(text.replace("\0", " ").split())


@dataclass(frozen=True)
class _Label:
    utt_id: str
    session_folder: int
    start: float
    end: float
    code: str
    vad: tuple[float, float, float]
    votes: tuple[tuple[str, str], ...] = ()


def read(root: str | Path, classes: str = "all") -> CorpusReading:
    """The utterances of class set `classes`, keeping their consensus code (`exc` stays
    `exc` in the 4-class set); each absent session of a partial copy is a problem.
    Utterances outside the class set take their problems with them."""
    label_set = get_label_set(classes)
    root = Path(root).expanduser().resolve()
    sessions = _check_root(root)
    problems = [
        Problem(f"Session{s}", f"session missing: no {eval_dir(root, s)}")
        for s in SESSIONS
        if s not in sessions
    ]
    labels: dict[str, _Label] = {}
    for session in sessions:
        for path in dialog_files(eval_dir(root, session)):
            for label in _parse_evaluation(path, session, problems):
                if label.utt_id in labels:
                    problems.append(
                        Problem(label.utt_id, f"duplicate label line in {path}: kept the first")
                    )
                else:
                    labels[label.utt_id] = label
    unlabelled = {d for s in sessions for d in unlabelled_dialogs(root, s, problems)}
    turns = _read_transcriptions(root, sessions, labels, problems, unlabelled)
    utterances = _build_utterances(root, labels, turns, problems)
    kept = tuple(u for u in utterances if label_set.class_of(u.label) is not None)
    dropped = {u.utt_id for u in utterances} - {u.utt_id for u in kept}
    return CorpusReading(
        root=root,
        utterances=kept,
        problems=tuple(p for p in problems if p.utt_id not in dropped),
    )


def _check_root(root: Path) -> list[int]:
    """The sessions present; CorpusError naming what is missing when there are none."""
    if not root.exists():
        raise CorpusError(f"{root} is not an IEMOCAP root: it does not exist")
    if not root.is_dir():
        raise CorpusError(f"{root} is not an IEMOCAP root: it is a file, not a folder")
    sessions = [s for s in SESSIONS if eval_dir(root, s).is_dir()]
    if sessions:
        return sessions
    hint = ""
    nested = root / "IEMOCAP_full_release"
    if nested.is_dir():
        hint = f" (did you mean {nested}?)"
    elif re.fullmatch(r"Session[1-5]", root.name):
        hint = f" (did you mean {root.parent}?)"
    raise CorpusError(
        f"{root} is not an IEMOCAP root: no Session1..Session5 folders with "
        f"dialog/EmoEvaluation{hint}"
    )


def _parse_evaluation(path: Path, session: int, problems: list[Problem]) -> Iterator[_Label]:
    """The consensus label lines of one EmoEvaluation file, each with the evaluators'
    votes of the `C-` lines that follow it."""
    label: _Label | None = None
    for number, line in numbered_lines(path, problems):
        stripped = line.strip()
        vote = _VOTE_LINE.match(stripped)
        if vote is not None:
            if label is not None:
                label = replace(label, votes=label.votes + _votes(*vote.groups()))
            continue
        if not stripped or stripped.startswith(("%", "A-")):
            continue  # header, block separator, attribute lines
        if label is not None:
            yield label
        label = _label(stripped, f"{path}:{number}", session, path.name, problems)
    if label is not None:
        yield label


def _label(
    line: str, where: str, session: int, name: str, problems: list[Problem]
) -> _Label | None:
    match = _LABEL_LINE.match(line)
    if match is None:
        problems.append(Problem(name, f"{where}: unreadable line {line[:80]!r}"))
        return None
    # `NUM` matches only what float() reads (Unicode digits too).
    start_s, end_s, utt_id, code, *vad_s = match.groups()
    start, end = float(start_s), float(end_s)
    vad = (float(vad_s[0]), float(vad_s[1]), float(vad_s[2]))
    error = _label_error(utt_id, code, start, end, session)
    if error:
        problems.append(Problem(utt_id, f"{where}: {error}"))
        return None
    return _Label(utt_id, session, start, end, code, vad)


def _votes(annotator: str, words: str) -> tuple[tuple[str, str], ...]:
    """(annotator, code) per category of a `C-` line's `Neutral; Anger;\t(comment)`;
    words that name no category are left out."""
    chosen = words.split("(", 1)[0].split(";")
    codes = (CATEGORIES.get(w.split(":", 1)[0].strip().lower()) for w in chosen)
    return tuple((annotator, code) for code in codes if code is not None)


def _label_error(utt_id: str, code: str, start: float, end: float, session: int) -> str:
    id_match = UTT_ID.match(utt_id)
    if id_match is None:
        return f"not an utterance id: {utt_id!r}"
    if int(id_match.group(1)) != session:
        return f"utterance of session {id_match.group(1)} in Session{session}"
    if code not in LABEL_CODES:
        return f"unknown label code {code!r}"
    if not 0 <= start < end:
        return f"bad times [{start} - {end}]"
    return ""


def _read_transcriptions(
    root: Path,
    sessions: list[int],
    labels: dict[str, _Label],
    problems: list[Problem],
    unlabelled: set[str],
) -> dict[str, str]:
    """utt_id -> raw transcript, from the transcription files of the given sessions; the
    files of `unlabelled` dialogs are skipped (their missing label file is the problem)."""
    turns: dict[str, str] = {}
    for session in sessions:
        for path in dialog_files(transcription_dir(root, session)):
            if path.stem in unlabelled:
                continue
            for number, line in numbered_lines(path, problems):
                utt_id, problem = _parse_turn(line.strip(), labels, turns)
                if problem:
                    problems.append(Problem(utt_id or path.name, f"{path}:{number}: {problem}"))
    return turns


def _parse_turn(line: str, labels: dict[str, _Label], turns: dict[str, str]) -> tuple[str, str]:
    """Record a transcription line in `turns`; (utt_id or "", the problem) when not."""
    if not line or _SPEAKER_ONLY.match(line):
        return "", ""  # speaker-only lines carry no id: no utterance can be matched to them
    match = TURN_LINE.match(line)
    if match is None:
        return "", f"unreadable line {line[:80]!r}"
    utt_id, _, _, text = match.groups()  # EmoEvaluation's times are the ones kept
    if _XX_TURN.match(utt_id):
        return "", ""  # unlabelled turn with no wav, by design of the corpus
    if utt_id not in labels:
        return utt_id, "transcribed turn without a label"
    if utt_id in turns:
        return utt_id, "duplicate transcription line: kept the first"
    turns[utt_id] = text.strip()
    return "", ""


def _build_utterances(
    root: Path, labels: dict[str, _Label], turns: dict[str, str], problems: list[Problem]
) -> list[Utterance]:
    """All labelled utterances by (session, dialog, order): dialog names start "Ses0N"."""
    wav_names = functools.cache(file_names)  # a listing per dialog, not a stat per wav
    ranked = sorted(labels.values(), key=lambda lab: (lab.utt_id[:-5], lab.start, lab.utt_id))
    utterances = []
    for _, dialog in itertools.groupby(ranked, key=lambda lab: lab.utt_id[:-5]):
        for order, label in enumerate(dialog):
            utterance = _utterance(root, label, order, turns.get(label.utt_id), problems)
            wav = utterance.wav_path
            if wav is None or wav.name not in wav_names(wav.parent):
                problems.append(Problem(label.utt_id, f"wav missing: {wav}"))
                utterance = replace(utterance, wav_path=None)
            utterances.append(utterance)
    return utterances


def _utterance(
    root: Path, label: _Label, order: int, raw: str | None, problems: list[Problem]
) -> Utterance:
    utt_id, dialog = label.utt_id, label.utt_id[:-5]
    session_dir = root / f"Session{label.session_folder}"
    if raw is None:
        transcription = session_dir / "dialog" / "transcriptions" / f"{dialog}.txt"
        problems.append(Problem(utt_id, f"transcript missing: no line for it in {transcription}"))
        raw = ""
    gender = utt_id[-4]  # the speaker's, not the dialog's: the letter before the 3 digits
    kind = "impro" if dialog.split("_")[1].startswith("impro") else "script"
    return Utterance(
        utt_id=utt_id,
        dialog=dialog,
        speaker=f"Ses{label.session_folder:02d}{gender}",  # 10 in all
        gender=gender,
        groups=(("kind", kind), ("session", label.session_folder)),
        votes=label.votes,
        order=order,
        start=label.start,
        end=label.end,
        duration=round(label.end - label.start, 4),
        label=label.code,
        valence=label.vad[0],
        arousal=label.vad[1],
        dominance=label.vad[2],
        transcript_raw=raw,
        transcript=clean_transcript(raw),
        wav_path=session_dir / "sentences" / "wav" / dialog / f"{utt_id}.wav",
    )


def summarize(reading: CorpusReading, classes: str = "all") -> dict[str, Any]:
    """JSON-ready: `per_session` maps the session (a string) to counts of every class of
    `classes` (`exc` counts as `hap` in the 4-class set); the labels of a reading outside
    the class set are left out.

    >>> reading = CorpusReading(Path("."), (), (Problem("x", "wav missing"),))
    >>> summarize(reading, "4")["problems"]
    [{'utt_id': 'x', 'problem': 'wav missing'}]
    """
    label_set = get_label_set(classes)
    per_session: dict[str, dict[str, int]] = {}
    for utt in reading.utterances:
        session = str(utt.group("session"))
        counts = per_session.setdefault(session, dict.fromkeys(label_set.classes, 0))
        cls = label_set.class_of(utt.label)
        if cls is not None:
            counts[cls] += 1
    return {
        "utterances": len(reading.utterances),
        "per_session": dict(sorted(per_session.items())),
        "speakers": len({u.speaker for u in reading.utterances}),
        "hours": round(sum(u.duration for u in reading.utterances) / 3600, 4),
        "problems": [{"utt_id": p.utt_id, "problem": p.problem} for p in reading.problems],
    }


register(
    CorpusKind(
        "iemocap",
        "IEMOCAP",
        LAYOUT,
        read,
        detect,
        signature,
        fixed(LABEL_SETS),
        "loso",
        groups=("session", "kind", "script"),
        derived={"script": script_of},
        own=(LeaveOneSessionOut, SessionHeldOut, ScriptFreeLoso, ScriptFreeSession5),
        by=("session",),
        not_trained=("all",),
        summary=summarize,
        papers=True,
        votes=True,
        identity=LEGACY_IDENTITY,
        origin=Origin("session", session_of_file, session_of_fold),
        synthetic=Synthetic.in_toolkit(
            "iemocap",
            ("dialogs_per_session", "metadata"),
            small={"dialogs_per_session": 1, "utterances_per_dialog": 4},
        ),
    )
)
