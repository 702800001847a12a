"""A synthetic corpus in the exact IEMOCAP layout, for the tests and the demo.

Lays out what `plan.py` plans as the corpus's files, quirks included, and returns the
ground truth `ser.corpus.kinds.iemocap.read` must recover. A seed gives the same bytes.

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
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from ser.corpus.records import Utterance
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
    """Write a synthetic IEMOCAP root at `out` (absent or empty: built aside and renamed,
    so an interrupted run leaves nothing half-written)."""
    config = config or SynthConfig()
    voices = audio.draw_voices(config.seed)

    def speech(path: Path, dialog: Dialog, k: int, turn: Turn) -> None:
        rng = np.random.default_rng([config.seed, plan.AUDIO, dialog.session, dialog.index, k])
        voice = voices[dialog.session, turn.gender]
        samples = audio.synthesize(rng, turn.end - turn.start, voice, turn.prosody)
        soundfile.write(path, samples, audio.SAMPLE_RATE)

    return _lay_out(out, plan.plan_dialogs(config, voices), speech)


def write_corpus_from_metadata(out: str | Path, csv_path: str | Path, seed: int = 0) -> SynthTruth:
    """A corpus holding exactly the utterances of a metadata CSV (`metadata.py`), to check
    structure; every wav is the same 0.1 s 220 Hz tone."""
    tone = np.sin(2 * np.pi * 220 * np.arange(1600) / audio.SAMPLE_RATE) * np.hanning(1600)
    tone = (3000 * tone).astype(np.int16)
    dialogs = plan.dialogs_from_metadata(Path(csv_path), seed)
    return _lay_out(out, dialogs, lambda path, *_: soundfile.write(path, tone, audio.SAMPLE_RATE))


def _lay_out(
    out: str | Path, dialogs: list[Dialog], write_wav: Callable[[Path, Dialog, int, Turn], object]
) -> SynthTruth:
    """The dialogs' text files and one wav per turn (`write_wav(path, dialog, k, turn)`)."""
    out = Path(out).expanduser().resolve()
    utterances = []
    with _staging(out) as stage:
        for dialog in dialogs:
            _write_texts(stage, dialog)
            folder = Path(f"Session{dialog.session}", "sentences", "wav", dialog.name)
            (stage / folder).mkdir(parents=True, exist_ok=True)
            for k, turn in enumerate(dialog.turns):
                wav = folder / f"{turn.utt_id}.wav"
                write_wav(stage / wav, dialog, k, turn)
                utterances.append(_utterance(dialog, k, turn, out / wav))
    return SynthTruth(
        out, tuple(sorted(utterances, key=lambda u: (u.group("session"), u.dialog, u.order)))
    )


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
        _write_text_file(
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
    """A dialog's EmoEvaluation files, its transcription and its whole-dialog wav stub."""
    base = root / f"Session{dialog.session}" / "dialog"
    evaluation = base / "EmoEvaluation"
    for sub in ("Categorical", "Attribute", "Self-evaluation", "../transcriptions"):
        (evaluation / sub).mkdir(parents=True, exist_ok=True)
    blocks = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"]
    per_file = defaultdict(list)
    for t in dialog.turns:  # in start order
        blocks.append(_label_block(t))
        for suffix, line in _annotator_lines(t.utt_id, t.annotation).items():
            per_file[suffix].append(line)
    _write_text_file(evaluation / f"{dialog.name}.txt", "".join(blocks))
    for suffix, file_lines in per_file.items():
        folder, end = suffix.split("/")
        _write_text_file(evaluation / folder / f"{dialog.name}_{end}.txt", "".join(file_lines))
    # `Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.` (no trailing space)
    lines = [f"{t.utt_id} [{t.start:08.4f}-{t.end:08.4f}]: {t.raw}".rstrip() for t in dialog.lines]
    for before, line in sorted(dialog.speaker_only, reverse=True):
        lines.insert(before, line)
    _write_text_file(
        base / "transcriptions" / f"{dialog.name}.txt", "".join(f"{line}\n" for line in lines)
    )
    if (dialog.session + dialog.index) % 2:  # 10 ms of stereo silence for the whole dialog
        (base / "wav").mkdir(exist_ok=True)
        stub = np.zeros((160, 2), np.int16)
        soundfile.write(base / "wav" / f"{dialog.name}.wav", stub, audio.SAMPLE_RATE)


def _label_block(turn: Turn) -> str:
    (v, a, d), where = turn.annotation.vad, f"[{turn.start:.4f} - {turn.end:.4f}]"
    lines = [f"{where}\t{turn.utt_id}\t{turn.code}\t[{v:.4f}, {a:.4f}, {d:.4f}]"]
    for who, words in turn.annotation.categories:
        lines.append(f"C-{who}:\t{''.join(f'{w}; ' for w in words).rstrip()}\t()")
    for who, (val, act, dom) in turn.annotation.ratings:
        lines.append(f"A-{who}:\tval {val}; act {act}; dom  {dom};\t()")
    return "\n".join(lines) + "\n\n"


def _annotator_lines(utt_id: str, annotation: text.Annotation) -> dict[str, str]:
    """One line per per-annotator file, keyed `<subfolder>/<file name suffix>`."""
    lines = {}
    for who, words in annotation.categories:
        lines[f"Categorical/{who.lower()}_cat"] = f"{utt_id} :{'; '.join(words)}; ()\n"
    for who, (val, act, dom) in annotation.ratings:
        lines[f"Attribute/{who.lower()}_atr"] = f"{utt_id} :act {act}; val {val}; dom  {dom};  ()\n"
    lines["Self-evaluation/self"] = f"{utt_id} :{annotation.categories[0][1][0]}; ()\n"
    return lines


def _write_text_file(path: Path, content: str) -> None:
    """UTF-8 with LF line endings on every platform, like the corpus."""
    path.write_text(content, encoding="utf-8", newline="\n")


def _utterance(dialog: Dialog, order: int, t: Turn, wav_path: Path) -> Utterance:
    """What the IEMOCAP reader must find of a labelled turn, its wav at `wav_path`."""
    valence, arousal, dominance = t.annotation.vad
    codes = {word: code for code, word in text.CATEGORY_WORDS.items()}
    votes = tuple((who, codes[w]) for who, words in t.annotation.categories for w in words)
    kind = "impro" if "_impro" in dialog.name else "script"
    return Utterance(
        utt_id=t.utt_id,
        dialog=dialog.name,
        speaker=f"Ses{dialog.session:02d}{t.gender}",
        gender=t.gender,
        groups=(("kind", kind), ("session", dialog.session)),
        votes=votes,
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
        wav_path=wav_path,
    )
