"""What a prediction cannot be, said where it applies: dialog-level models given one
utterance each lose their conversation, and a fold ensemble of a leave-one-group-out
run trained on every group of a corpus but one (an input a corpus kind recognises as its
own, `CorpusKind.origin`: IEMOCAP's by its utterance id or session folder, is taken to
be from that group).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ser.corpus.registry import KINDS
from ser.train.checkpoint import FINAL, Checkpoint

DIALOG_CONTEXT = (
    "this run's models are dialog-level: each input is predicted as a dialog of one "
    "utterance, without the conversation around it that the run's own test predictions "
    "had, so expect them to differ from those (a CSV list with dialog and order columns "
    "gives whole conversations)"
)
SOME_ALONE = (
    "this run's models are dialog-level: {alone} input(s) without a dialog are each "
    "predicted as a dialog of one utterance, without a conversation around them"
)
NOT_USED = "the dialog and order columns are not used: this run's models see one utterance"
FAILED_TURNS = (
    "dialog(s) {dialogs}: turns that could not be predicted are missing from the context "
    "of the others"
)
SEGMENT_TURNS = (
    "this run's models are dialog-level: each recording's segments are predicted as one "
    "conversation's turns in time order (a recording of over {segments} segments or "
    "about {minutes} minutes as consecutive conversations: 'FILE #2' ...); there is no speaker "
    "diarization: each segment is a turn whoever speaks, and one holding two speakers is "
    "one turn"
)


def run_notes(
    ckpts: Sequence[Checkpoint],
    dialogs: Sequence[str | None] = (),
    failed: Sequence[str] = (),
    averaged: bool = True,
) -> list[str]:
    """Notes about the whole prediction: dialog context lost or unused (`dialogs`: each
    input's dialog, None: alone; `failed`: dialogs missing a failed turn), folds that saw
    the corpus (`averaged`: every input by all of `ckpts`; not so held out)."""
    notes = _context_notes(dialog_level(ckpts), dialogs, failed)
    folds = sorted({f"{c.meta.get('fold')}" for c in ckpts if c.meta.get("fold") != FINAL})
    if len(folds) > 1 and averaged:
        notes.append(
            f"the {len(ckpts)} checkpoints averaged are folds ({', '.join(folds)}), each "
            "trained on the other sessions of the corpus: an input from the corpus was in "
            "the training data of every fold but the one that tests its session, so its "
            "prediction is not a held-out one (--checkpoint=held-out predicts each of the "
            "run's own utterances with the folds that tested it alone)"
        )
    return notes


def dialog_level(ckpts: Sequence[Checkpoint]) -> bool:
    return any(c.unit == "dialog" for c in ckpts)


def context_lost(ckpts: Sequence[Checkpoint], dialogs: Sequence[str | None]) -> bool:
    """Whether a dialog-level run predicts some input without its conversation."""
    return dialog_level(ckpts) and (not dialogs or None in dialogs)


def _context_notes(
    dialog_run: bool, dialogs: Sequence[str | None], failed: Sequence[str]
) -> list[str]:
    given = [d for d in dialogs if d is not None]
    if not dialog_run:
        return [NOT_USED] if given else []
    alone = len(dialogs) - len(given)
    notes = []
    if not given:
        notes.append(DIALOG_CONTEXT)
    elif alone:
        notes.append(SOME_ALONE.format(alone=alone))
    if failed:
        notes.append(FAILED_TURNS.format(dialogs=", ".join(sorted(set(failed)))))
    return notes


def corpus_note(path: Path, ckpts: Sequence[Checkpoint]) -> str | None:
    """A note for an input recognisably from a corpus group that checkpoints saw (all
    but the folds that test it: a random split or `final` holds every group); where the
    run's store knows the input, `ser.predict.held_out.Origin.note` says it exactly."""
    origins = [kind.origin for kind in KINDS.values() if kind.origin is not None]
    found = next(((o, g) for o in origins if (g := o.of_file(path)) is not None), None)
    if found is None:
        return None
    origin, group = found
    keys = [c.key for c in ckpts if origin.of_fold(str(c.meta.get("fold", ""))) != group]
    if not keys:
        return None
    which = "every checkpoint" if len(keys) == len(ckpts) else ", ".join(keys)
    return (
        f"looks like an utterance of the corpus's {origin.group} {group}: {which} trained on "
        f"that {origin.group}, so this is not a held-out prediction"
    )
