"""What a synthetic corpus holds, planned before `ser.synth.corpus` writes anything.

The dialogs and their turns (speaker, label, text, prosody, timing, id, with the real
corpus's naming and line-order quirks), drawn from generators seeded by (seed, purpose,
place), or read from a metadata CSV.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

import numpy as np

from ser.corpus.kinds.iemocap import clean_transcript
from ser.corpus.labels import LABEL_CODES
from ser.errors import ConfigError
from ser.synth import attributes, audio, text
from ser.synth.metadata import read_metadata

#: Label proportions close to the real corpus's, the rare codes a little more frequent.
PRIOR: dict[str, float] = {
    "xxx": 0.24,
    "fru": 0.17,
    "neu": 0.17,
    "ang": 0.11,
    "sad": 0.11,
    "exc": 0.10,
    "hap": 0.06,
    "sur": 0.02,
    "fea": 0.01,
    "dis": 0.005,
    "oth": 0.005,
}
#: A dialog's scenario makes one emotion (with its near kin) three times as likely; the
#: scenarios take turns, so that a small corpus is not short of any class.
MOODS = (("neu",), ("hap", "exc"), ("sad",), ("ang",), ("fru",))
_BLENDS = ("neu", "hap", "exc", "sad", "ang", "fru")  # what `xxx` annotators hesitate over
_IMPROS = [f"impro{n:02d}" for n in range(1, 9)]
_SCRIPTS = ["script01_1", "script01_2", "script01_3", "script02_1", "script02_2"]
_SCRIPTS += ["script03_1", "script03_2"]
#: Dialogs that come first in their session, so that one dialog per session already
#: shows the naming quirks (a/b parts, `_1b`); they replace the plain names.
_FIRST_DIALOGS = {3: ("Ses03M_impro05a", "Ses03M_impro05b"), 5: ("Ses05M_script01_1b",)}
_REPLACED = {"Ses03M_impro05", "Ses05M_script01_1"}
MAX_DIALOGS = 30
# What a generator is for: part of its seed, so that new draws in one place move no other.
_LABELS, _TURNS, _FORCE, AUDIO, _VOTES = range(5)  # audio.draw_voices uses 9


@dataclass(frozen=True)
class SynthConfig:
    """The defaults give the demo corpus (about 650 utterances, 400 of them in the 4-class
    set); `dialogs_per_session=1` gives about 170, the tests' corpus."""

    dialogs_per_session: int = 4
    seed: int = 0
    utterances_per_dialog: tuple[int, int] = (24, 40)  # labelled turns, inclusive range
    duration_range: tuple[float, float] = (1.0, 4.0)  # seconds per utterance

    def __post_init__(self) -> None:
        lo, hi = self.utterances_per_dialog
        shortest, longest = self.duration_range
        if not 1 <= self.dialogs_per_session <= MAX_DIALOGS:
            raise ConfigError(
                f"dialogs per session must be 1..{MAX_DIALOGS}, not {self.dialogs_per_session}"
            )
        if not 3 <= lo <= hi:
            raise ConfigError(
                f"utterances per dialog must be lo..hi with 3 <= lo <= hi: {lo}..{hi}"
            )
        if not 0.5 <= shortest <= longest:
            raise ConfigError(
                f"durations must be lo..hi s with 0.5 <= lo <= hi: {shortest}..{longest}"
            )


@dataclass
class Turn:
    """One planned turn: a labelled utterance, or an unlabelled `XX` turn."""

    gender: str
    code: str
    start: float = 0.0
    end: float = 0.0
    utt_id: str = ""
    clean: str = ""
    raw: str = ""
    seconds: float = 1.0
    blend: tuple[str, str] | None = None  # xxx: the two classes annotators hesitated over
    intensity: float = 1.0  # how far the emotion shows: 0 neutral .. 1 full profile
    annotation: text.Annotation = field(default_factory=lambda: text.Annotation([], [], (0, 0, 0)))
    prosody: audio.Prosody = audio.PROSODY["neu"]


@dataclass
class Dialog:
    name: str
    session: int
    index: int  # within its session
    turns: list[Turn]  # the labelled turns, in start order
    lines: list[Turn] = field(default_factory=list)  # transcription order, with XX turns
    speaker_only: list[tuple[int, str]] = field(default_factory=list)  # (before line k, text)


def _dialog_names(session: int, n: int) -> list[str]:
    """Improvised and scripted dialogs alternating, both dialog letters, quirks first."""
    pairs = list(zip(_IMPROS, [*_SCRIPTS, ""], strict=True))
    bases = [base for pair in pairs for base in (pair if session % 2 else pair[::-1]) if base]
    names = list(_FIRST_DIALOGS.get(session, ()))
    for flip in (0, 1):
        for i, base in enumerate(bases):
            name = f"Ses{session:02d}{'FM'[(i + session + flip) % 2]}_{base}"
            if name not in _REPLACED:
                names.append(name)
    return names[:n]


def plan_dialogs(config: SynthConfig, voices: dict[tuple[int, str], audio.Voice]) -> list[Dialog]:
    dialogs = []
    for session in range(1, 6):
        for index, name in enumerate(_dialog_names(session, config.dialogs_per_session)):
            rng = np.random.default_rng([config.seed, _LABELS, session, index])
            mood = MOODS[(session + index) % len(MOODS)]
            turns = _draw_labels(rng, config.utterances_per_dialog, mood)
            dialogs.append(Dialog(name, session, index, turns))
    _force_every_code(dialogs, np.random.default_rng([config.seed, _FORCE]))
    for dialog in dialogs:
        rng = np.random.default_rng([config.seed, _TURNS, dialog.session, dialog.index])
        votes = np.random.default_rng([config.seed, _VOTES, dialog.session, dialog.index])
        for turn in dialog.turns:
            _describe(rng, turn, voices[dialog.session, turn.gender], config.duration_range)
            heard_as = attributes.conveyed(turn.prosody)  # the ratings follow the audio
            turn.annotation = text.annotate(rng, turn.code, turn.blend, heard_as, votes)
        _time_and_name(rng, dialog)
        _add_quirks(rng, dialog)
    return dialogs


def _draw_labels(
    rng: np.random.Generator, size: tuple[int, int], mood: tuple[str, ...]
) -> list[Turn]:
    """Who speaks each turn and its label: a dialog mood, speakers keeping their mood."""
    weights = np.array([p * (3.0 if code in mood else 1.0) for code, p in PRIOR.items()])
    codes = list(PRIOR)
    gender = text.pick(rng, "FM")
    last: dict[str, str] = {}
    turns = []
    for k in range(int(rng.integers(size[0], size[1] + 1))):
        if k and rng.random() < 0.8:
            gender = "M" if gender == "F" else "F"
        code = last.get(gender) if rng.random() < 0.3 else None
        code = code or codes[int(rng.choice(len(codes), p=weights / weights.sum()))]
        last[gender] = code
        turns.append(Turn(gender, code))
    return turns


def _force_every_code(dialogs: list[Dialog], rng: np.random.Generator) -> None:
    """Relabel a few turns of the commonest code so that every code occurs somewhere."""
    turns = [t for d in dialogs for t in d.turns]
    counts = Counter(t.code for t in turns)
    for code in LABEL_CODES:
        donor, count = counts.most_common(1)[0]
        if counts[code] == 0 and count > 1:
            candidates = [t for t in turns if t.code == donor]
            candidates[int(rng.integers(len(candidates)))].code = code
            counts[donor] -= 1
            counts[code] += 1


def _draw_blend(rng: np.random.Generator, code: str) -> tuple[str, str] | None:
    """For `xxx`, the two classes the annotators hesitated between."""
    if code != "xxx":
        return None
    first, second = rng.choice(len(_BLENDS), 2, replace=False)
    return _BLENDS[first], _BLENDS[second]


def _describe(
    rng: np.random.Generator, turn: Turn, voice: audio.Voice, durations: tuple[float, float]
) -> None:
    """Text, prosody and length of a labelled turn."""
    turn.blend = _draw_blend(rng, turn.code)
    turn.intensity = float(np.clip(rng.beta(2.5, 1.2), 0.1, 1.0))
    turn.clean = text.compose(rng, turn.code, turn.blend)
    draw = rng.random()
    turn.raw = text.with_tag(rng, turn.clean) if draw < 0.08 else turn.clean
    if draw > 0.98:  # real transcripts hold a few empty or tag-only turns
        turn.clean, turn.raw = "", ("" if draw > 0.99 else text.TAGS[0])
    code, other = turn.blend or (turn.code, None)
    turn.prosody = audio.utterance_prosody(rng, code, turn.intensity, voice, other)
    syllables = text.syllables(turn.clean) or int(rng.integers(2, 6))
    seconds = audio.speech_seconds(syllables, voice, turn.prosody) * rng.uniform(0.9, 1.1)
    turn.seconds = float(np.clip(seconds, *durations))


def _time_and_name(rng: np.random.Generator, dialog: Dialog) -> None:
    """Start/end times (turns may overlap) and ids numbered per speaker in start order."""
    t, previous = rng.uniform(1.5, 8.0), -1.0
    counters = {"F": 0, "M": 0}
    for turn in dialog.turns:
        start = max(t, previous + 0.1)
        turn.start, turn.end = round(start, 4), round(start + turn.seconds, 4)
        previous = start
        t = turn.end + rng.uniform(-0.6, 1.5)
        turn.utt_id = f"{dialog.name}_{turn.gender}{counters[turn.gender]:03d}"
        counters[turn.gender] += 1


def _add_quirks(rng: np.random.Generator, dialog: Dialog) -> None:
    """XX turns, speaker-only lines, out-of-order lines, empty and tagged text; sure in the
    first dialog of each session, so that one dialog per session shows them all."""
    first, session, turns = dialog.index == 0, dialog.session, dialog.turns
    extra = []
    if session in (3, 5):  # where the real corpus has them
        for k in range(max(int(rng.integers(0, 3)), int(first))):
            gender, anchor = text.pick(rng, "FM"), turns[int(rng.integers(len(turns)))]
            start = round(anchor.end + 0.05, 4)
            xx = Turn(gender, "", start, round(start + rng.uniform(0.5, 2.0), 4))
            xx.utt_id, xx.raw = f"{dialog.name}_{gender}XX{k}", text.pick(rng, text.XX_TEXT)
            extra.append(xx)
    dialog.lines = sorted(turns + extra, key=lambda t: (t.start, t.utt_id))
    if rng.random() < 0.3 or (first and session == 2):  # lines not in time order
        k = int(rng.integers(len(dialog.lines) - 1))
        dialog.lines[k : k + 2] = dialog.lines[k : k + 2][::-1]
    for _ in range(max(int(rng.integers(0, 2)), int(first and session == 1))):
        line = f"{text.pick(rng, 'FM')}: {text.pick(rng, text.SPEAKER_ONLY)}"
        dialog.speaker_only.append((int(rng.integers(1, len(dialog.lines) + 1)), line))
    if first and session == 2 and turns[0].clean:
        turns[0].raw = text.with_tag(rng, turns[0].clean)
    if first and session == 4:
        turns[1].clean, turns[1].raw = "", ""
        turns[2].clean, turns[2].raw = "", "[LAUGHTER]"


def dialogs_from_metadata(path: Path, seed: int) -> list[Dialog]:
    """Dialogs holding exactly the CSV's utterances; CorpusError naming a bad line."""
    ordered = sorted(read_metadata(path), key=lambda r: (r["dialog"], int(r["order"])))
    dialogs = []
    for index, (name, group) in enumerate(groupby(ordered, key=lambda r: r["dialog"])):
        rows = list(group)  # in transcription order
        rng = np.random.default_rng([seed, _TURNS, index])
        votes = np.random.default_rng([seed, _VOTES, index])
        lines = []
        for row in rows:
            start, end = round(float(row["start"]), 4), round(float(row["end"]), 4)
            turn = Turn(row["utt_id"][-4], row["label"], start, end, row["utt_id"])
            turn.blend = _draw_blend(rng, turn.code)
            raw = (row["text"] or "") if "text" in row else text.compose(rng, turn.code, turn.blend)
            turn.raw, turn.clean = raw.strip(), clean_transcript(raw)
            heard_as = attributes.conveyed(_profile(turn))  # a tone's wav conveys nothing
            turn.annotation = text.annotate(rng, turn.code, turn.blend, heard_as, votes)
            lines.append(turn)
        turns = sorted(lines, key=lambda t: (t.start, t.utt_id))
        dialogs.append(Dialog(name, int(rows[0]["session"]), index, turns, lines))
    return dialogs


def _profile(turn: Turn) -> audio.Prosody:
    """The full profile of a turn's class (`xxx`: halfway between its blend's)."""
    if turn.blend is None:
        return audio.PROSODY[turn.code]
    first, second = turn.blend
    return audio.blend(audio.PROSODY[first], audio.PROSODY[second], 0.5)
