"""A synthetic corpus in the exact IEMOCAP layout, for the tests and the demo.

`write_corpus` lays out what `plan.py` plans (5 sessions of improvised and scripted
dialogs between each session's two speakers, turns labelled in realistic-ish proportions)
as the corpus's files: EmoEvaluation and transcription files with the real corpus's
quirks, and a wav per utterance (`audio.py`) whose prosody follows its emotion, while
the transcripts (`text.py`) carry it only part of the time. It returns the ground truth
`ser.corpus.reader.read_corpus` must recover. `write_corpus_from_metadata` writes exactly
the utterances of a CSV. Every draw is seeded by (seed, purpose, place): a seed gives the
same bytes in every file.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp()) / "IEMOCAP_full_release"
>>> truth = write_corpus(root, SynthConfig(dialogs_per_session=1, utterances_per_dialog=(4, 4)))
>>> len(truth.utterances), len({u.speaker for u in truth.utterances})
(20, 10)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import soundfile

from ser.corpus.reader import Utterance
from ser.errors import CorpusError
from ser.synth import audio, plan, text
from ser.synth.plan import Dialog, SynthConfig, Turn

__all__ = ["SynthConfig", "SynthTruth", "write_corpus", "write_corpus_from_metadata"]


@dataclass(frozen=True)
class SynthTruth:
    """What was written: `utterances` is exactly what `read_corpus(root)` must return."""

    root: Path
    utterances: tuple[Utterance, ...]


def write_corpus(out: str | Path, config: SynthConfig | None = None) -> SynthTruth:
    """Write a synthetic IEMOCAP root at `out` (absent or empty) and return its truth.

    The corpus appears at once: it is built in a temporary sibling folder and renamed,
    so an interrupted run leaves nothing half-written at `out`.
    """
    config = config or SynthConfig()
    out = Path(out).expanduser().resolve()
    voices = audio.draw_voices(config.seed)

    def speech(path: Path, dialog: Dialog, k: int, turn: Turn) -> None:
        rng = plan.rng_for(config.seed, plan.AUDIO, dialog.session, dialog.index, k)
        voice = voices[dialog.session, turn.gender]
        samples = audio.synthesize(rng, turn.end - turn.start, voice, turn.prosody)
        soundfile.write(path, samples, audio.SAMPLE_RATE)

    return _lay_out(out, plan.plan_dialogs(config, voices), speech)


def write_corpus_from_metadata(out: str | Path, csv_path: str | Path, seed: int = 0) -> SynthTruth:
    """Write a corpus holding exactly the utterances of a metadata CSV, to check structure.

    Columns: utt_id, dialog, session, speaker_gender, kind, order, start, end, label, and
    optionally text (the raw transcript; composed from the label when the column is
    absent). `order` is the order of the transcription lines; the records' `order`
    follows the reader's rule (rank by start time). Every wav is the same 0.1 s tone.
    """
    out = Path(out).expanduser().resolve()
    tone = audio.tone_wav()
    dialogs = plan.dialogs_from_metadata(Path(csv_path), seed)
    return _lay_out(out, dialogs, lambda path, *_: path.write_bytes(tone))


# --- writing -------------------------------------------------------------------------


def _lay_out(
    out: Path, dialogs: list[Dialog], write_wav: Callable[[Path, Dialog, int, Turn], object]
) -> SynthTruth:
    """The dialogs' text files and one wav per turn (`write_wav(path, dialog, k, turn)`)."""
    with _staging(out) as stage:
        for dialog in dialogs:
            _write_texts(stage, dialog)
            folder = stage / f"Session{dialog.session}" / "sentences" / "wav" / dialog.name
            folder.mkdir(parents=True, exist_ok=True)
            for k, turn in enumerate(dialog.turns):
                write_wav(folder / f"{turn.utt_id}.wav", dialog, k, turn)
    return SynthTruth(out, _truth(out, dialogs))


@contextmanager
def _staging(out: Path) -> Iterator[Path]:
    """A temporary folder beside `out` that becomes `out` when the block succeeds."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CorpusError(
            f"{out} is not empty: a synthetic corpus is written only into a new or empty folder"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        stage.chmod(0o755)
        text.write_text_file(
            stage / "README.txt",
            "A synthetic corpus in the layout of IEMOCAP_full_release, written by ser.\n"
            "It holds no IEMOCAP data: the speech is synthesized, the text made up.\n",
        )
        yield stage
        if out.exists():
            out.rmdir()
        os.replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _write_texts(root: Path, dialog: Dialog) -> None:
    """EmoEvaluation (with per-annotator files), transcription, whole-dialog wav."""
    base = root / f"Session{dialog.session}" / "dialog"
    text.write_dialog_texts(base, dialog.name, dialog.turns, dialog.lines, dialog.speaker_only)
    if (dialog.session + dialog.index) % 2:  # the whole-dialog wav: a tiny stereo stub or none
        audio.write_stub(base / "wav" / f"{dialog.name}.wav")


def _truth(root: Path, dialogs: list[Dialog]) -> tuple[Utterance, ...]:
    utterances = []
    for dialog in dialogs:
        wav_dir = root / f"Session{dialog.session}" / "sentences" / "wav" / dialog.name
        ranked = sorted(dialog.turns, key=lambda t: (t.start, t.utt_id))
        for order, t in enumerate(ranked):
            valence, arousal, dominance = t.annotation.vad
            utterances.append(
                Utterance(
                    utt_id=t.utt_id,
                    session=dialog.session,
                    dialog=dialog.name,
                    speaker=f"Ses{dialog.session:02d}{t.gender}",
                    gender=t.gender,
                    kind=dialog.kind,
                    order=order,
                    start=t.start,
                    end=t.end,
                    duration=round(t.end - t.start, 4),
                    label=t.code,
                    valence=valence,
                    arousal=arousal,
                    dominance=dominance,
                    transcript_raw=t.raw,
                    transcript=t.clean,
                    wav_path=wav_dir / f"{t.utt_id}.wav",
                )
            )
    return tuple(sorted(utterances, key=lambda u: (u.session, u.dialog, u.order)))
