"""What a prediction cannot be, said where it applies.

- Dialog-level models (`unit == "dialog"`: the fusion study's sequence models) were
  trained and tested on whole conversations; `ser predict` gives each input alone, as a
  dialog of one utterance, so the context their test predictions had is lost.
- A fold checkpoint trained on every session but the one it tests: averaging the folds
  (`--checkpoint folds`) of a leave-one-session-out run, a recording from the corpus was
  in the training data of all folds but one. An input whose name is an IEMOCAP utterance
  id (``Ses03F_impro01_F000``) or that lies under a ``Session3`` folder is taken to be
  from that session, and the checkpoints that trained on it are named.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ser.train.checkpoint import FINAL, Checkpoint

DIALOG_CONTEXT = (
    "this run's models are dialog-level: each input is predicted as a dialog of one "
    "utterance, without the conversation around it that the run's own test predictions "
    "had, so expect them to differ from those"
)

_UTTERANCE = re.compile(r"^Ses(\d+)[FM]_")  # an IEMOCAP utterance id: its session
_SESSION_FOLDER = re.compile(r"^Session(\d+)$")
_HELD_OUT = re.compile(r"^(?:fold|session)(\d+)$")  # fold names by their test session


def run_notes(ckpts: Sequence[Checkpoint]) -> list[str]:
    """Notes about the whole prediction: dialog context lost, folds that saw the corpus."""
    notes = [DIALOG_CONTEXT] if dialog_level(ckpts) else []
    folds = sorted({f"{c.meta.get('fold')}" for c in ckpts if c.meta.get("fold") != FINAL})
    if len(folds) > 1:
        notes.append(
            f"the {len(ckpts)} checkpoints averaged are folds ({', '.join(folds)}), each "
            "trained on the other sessions of the corpus: an input from the corpus was in "
            "the training data of every fold but the one that tests its session, so its "
            "prediction is not a held-out one (give that fold with --checkpoint KEY)"
        )
    return notes


def dialog_level(ckpts: Sequence[Checkpoint]) -> bool:
    return any(c.unit == "dialog" for c in ckpts)


def corpus_session(path: Path) -> int | None:
    """The corpus session an input is recognisably from (its utterance id or a
    ``Session<N>`` folder), else None."""
    found = _UTTERANCE.match(path.stem)
    if found:
        return int(found.group(1))
    for part in reversed(path.parts[:-1]):
        folder = _SESSION_FOLDER.match(part)
        if folder:
            return int(folder.group(1))
    return None


def trained_on(session: int, ckpts: Sequence[Checkpoint]) -> list[str]:
    """Keys of the checkpoints whose training (or validation) side held `session`: all
    but the ones whose fold tests it (a random split or `final` holds every session)."""
    keys = []
    for ckpt in ckpts:
        held = _HELD_OUT.match(str(ckpt.meta.get("fold", "")))
        if held is None or int(held.group(1)) != session:
            keys.append(ckpt.key)
    return keys


def corpus_note(path: Path, ckpts: Sequence[Checkpoint]) -> str | None:
    """A note for an input recognisably from a corpus session that checkpoints saw."""
    session = corpus_session(path)
    if session is None:
        return None
    keys = trained_on(session, ckpts)
    if not keys:
        return None
    which = "every checkpoint" if len(keys) == len(ckpts) else ", ".join(keys)
    return (
        f"looks like an utterance of the corpus's session {session}: {which} trained on "
        "that session, so this is not a held-out prediction"
    )
