"""IEMOCAP's files: where each dialog's label file, transcription and wavs are, and how
their lines are read (`numbered_lines`: line by line, a line that is not UTF-8 named with
its utterance); a dialog with wavs or a transcription but no label file is a problem
(`unlabelled_dialogs`), since none of its utterances can be read without it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from ser.corpus.records import Problem
from ser.corpus.text import TextLines, read_lines

#: `<dialog>_{F|M}{NNN}` with dialog `Ses{SS}{G}_{impro|script}...`; the XX turns of the
#: transcriptions (no wav, no label) do not match.
UTT_ID = re.compile(r"^Ses0([1-5])[FM]_(impro|script)[0-9A-Za-z_]*_([FM])\d{3}$")

NUM = r"([-+]?\d+(?:\.\d*)?)"
TURN_LINE = re.compile(rf"^(\S+)\s+\[\s*{NUM}\s*-\s*{NUM}\s*\]:(.*)$")
UTT_IN_LINE = re.compile(r"\bSes0[1-5][FM]_\w+?_[FM]\d{3}\b")


def eval_dir(root: Path, session: int) -> Path:
    return root / f"Session{session}" / "dialog" / "EmoEvaluation"


def dialog_files(folder: Path) -> list[Path]:
    """The per-dialog .txt files of a folder, sorted; dot files are skipped (copies made
    on macOS carry `._<name>.txt` resource forks)."""
    return sorted(p for p in folder.glob("*.txt") if p.is_file() and not p.name.startswith("."))


def numbered_lines(path: Path, problems: list[Problem]) -> Iterator[tuple[int, str]]:
    """(line number, line) of a text file; a line that is not UTF-8 is read as Latin-1
    and named in a problem with the utterance it belongs to (`line_ids`)."""
    try:
        text = read_lines(path)
    except OSError as error:
        problems.append(Problem(path.name, f"cannot read {path}: {error.strerror or error}"))
        return
    problems.extend(text.problems(line_ids(text)) if text.not_utf8 else ())
    yield from text.numbered()


def line_ids(text: TextLines) -> dict[int, str]:
    """Line number -> the utterance id the line names or, for an evaluator's line (`C-`,
    `A-`), that of the label line above it."""
    ids: dict[int, str] = {}
    last = ""
    for number, line in text.numbered():
        found = UTT_IN_LINE.search(line)
        if found is not None:
            last = found.group(0)
        elif not line.startswith(("C-", "A-")):
            last = ""
        ids[number] = last
    return ids


def unlabelled_dialogs(root: Path, session: int, problems: list[Problem]) -> list[str]:
    """The dialogs of a session that have wavs or a transcription but no label file, each
    a problem counting its utterances: none can be read without it."""
    found = []
    labelled = {p.stem for p in dialog_files(eval_dir(root, session))}
    transcribed = {p.stem: p for p in dialog_files(transcription_dir(root, session))}
    recorded = {p.name: p for p in subfolders(wav_dir(root, session))}
    for dialog in sorted((transcribed.keys() | recorded.keys()) - labelled):
        ids = {name.removesuffix(".wav") for name in file_names(wav_dir(root, session) / dialog)}
        if dialog in transcribed:
            ids |= transcribed_ids(transcribed[dialog])
        ids = {utt_id for utt_id in ids if UTT_ID.match(utt_id)}
        path = eval_dir(root, session) / f"{dialog}.txt"
        said = (
            f"label file missing: no {path}, so the dialog's {len(ids)} utterances (its "
            "wavs and transcription lines) are left out; restore the file from the release"
        )
        problems.append(Problem(dialog, said))
        found.append(dialog)
    return found


def transcribed_ids(path: Path) -> set[str]:
    """The utterance ids of a transcription file's turns (unreadable lines skipped: the
    file is not read for its dialog's text, only counted)."""
    try:
        lines = read_lines(path).lines
    except OSError:
        return set()
    return {m.group(1) for m in map(TURN_LINE.match, (line.strip() for line in lines)) if m}


def transcription_dir(root: Path, session: int) -> Path:
    return root / f"Session{session}" / "dialog" / "transcriptions"


def wav_dir(root: Path, session: int) -> Path:
    return root / f"Session{session}" / "sentences" / "wav"


def subfolders(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []


def file_names(folder: Path) -> set[str]:
    try:
        return {e.name for e in os.scandir(folder) if e.is_file()}
    except OSError:
        return set()
