"""RAVDESS: `Actor_XX/03-CC-EE-II-SS-RR-AA.wav` under the root (24 actors; the audio-only
speech and song releases unpacked side by side, or either alone).

The seven fields: modality (03 audio-only; 01 and 02 are the video files), vocal channel
(01 speech, 02 song), emotion (01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06
fearful, 07 disgust, 08 surprised), intensity (01 normal, 02 strong; neutral has no
strong), statement (01 "Kids are talking by the door", 02 "Dogs are sitting by the
door"), repetition and actor (odd male, even female). Speakers are the actors
(`Actor_01`..); a name that does not parse or names another actor than its folder is a
problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ser.corpus.kind import ActedConfig, CorpusKind, Maker, Synthetic, Written, fixed, register
from ser.corpus.kinds.flat import LEGACY_IDENTITY, label_sets, pick, read_records
from ser.corpus.labels import LabelSet
from ser.corpus.records import CorpusReading, Problem, Utterance
from ser.errors import CorpusError

EMOTIONS = ("neu", "cal", "hap", "sad", "ang", "fea", "dis", "sur")  # codes 01..08
STATEMENTS = {"01": "Kids are talking by the door.", "02": "Dogs are sitting by the door."}
CHANNELS = {"01": "speech", "02": "song"}
INTENSITIES = {"01": "normal", "02": "strong"}
LABEL_SETS: dict[str, LabelSet] = label_sets(EMOTIONS, "8")
ACTOR = re.compile(r"^Actor_(\d\d)$")
NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
LAYOUT = "Actor_XX/03-CC-EE-II-SS-RR-AA.wav"


def _actors(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and ACTOR.match(p.name))


def detect(root: Path) -> bool:
    return bool(_actors(root))


def signature(root: Path) -> list[Path]:
    return _actors(root)


def read(root: Path, classes: str) -> CorpusReading:
    label_set = pick(LABEL_SETS, classes, "ravdess")
    actors = _actors(root)
    if not actors:
        hint = f" (did you mean {root.parent}?)" if ACTOR.match(root.name) else ""
        raise CorpusError(f"{root} is not a RAVDESS root: no Actor_01..Actor_24 folders{hint}")
    problems: list[Problem] = []
    files = [(path, folder.name[-2:]) for folder in actors for path in sorted(folder.iterdir())]
    found = [_file(path, actor, problems) for path, actor in files]
    utterances = [utterance for utterance in found if utterance is not None]
    if not utterances and not problems:
        raise CorpusError(f"{root}: the Actor_XX folders hold no .wav files ({LAYOUT})")
    return read_records(root, utterances, label_set, problems)


def _file(path: Path, actor: str, problems: list[Problem]) -> Utterance | None:
    """A wav's utterance; a video file is a problem, any other file not the corpus's."""
    suffix = path.suffix.lower()
    if suffix == ".mp4":
        video = f"{path}: a video file; ser reads the audio-only (03-...) .wav release"
        problems.append(Problem(path.name, video))
    return _utterance(path, actor, problems) if suffix == ".wav" else None


def _utterance(wav: Path, actor: str, problems: list[Problem]) -> Utterance | None:
    match = NAME.match(wav.stem)
    fields = match.groups() if match else ()
    if (
        not fields
        or fields[0] != "03"
        or fields[1] not in CHANNELS
        or not "01" <= fields[2] <= "08"
    ):
        problems.append(Problem(wav.name, f"{wav}: not a RAVDESS audio file name ({LAYOUT})"))
        return None
    _, channel, emotion, intensity, statement, repetition, named = fields
    if named != actor:
        problems.append(Problem(wav.stem, f"{wav}: names actor {named} in folder Actor_{actor}"))
        return None
    return Utterance(
        utt_id=wav.stem,
        wav_path=wav,
        label=EMOTIONS[int(emotion) - 1],
        speaker=f"Actor_{actor}",
        gender="M" if int(actor) % 2 else "F",
        transcript=STATEMENTS.get(statement, ""),
        groups=(
            ("kind", CHANNELS[channel]),  # speech or song
            ("intensity", INTENSITIES.get(intensity, intensity)),
            ("statement", statement),
            ("repetition", repetition),
        ),
    )


def write_synthetic(out: Path, kit: Maker, config: ActedConfig) -> dict[str, tuple[str, str]]:
    """`out/Actor_XX/03-01-EE-II-SS-01-XX.wav` of `kit`'s speech: every emotion, both
    intensities (neutral: normal only), `config.sentences` statements (at most 2); per
    utterance id its (label code, speaker)."""
    root = kit.new_root(out)
    files = {}
    for a in range(config.actors):
        actor = f"{a + 1:02d}"
        folder = root / f"Actor_{actor}"
        folder.mkdir()
        voice = kit.voice(config.seed, a, "M" if (a + 1) % 2 else "F")
        for e, code in enumerate(EMOTIONS, start=1):
            for intensity in ("01",) if code == "neu" else ("01", "02"):
                for s in range(1, min(config.sentences, 2) + 1):
                    stem = f"03-01-{e:02d}-{intensity}-{s:02d}-01-{actor}"
                    rng = np.random.default_rng([config.seed, a, e, int(intensity), s])
                    kit.write_wav(folder / f"{stem}.wav", rng, voice, code, config.seconds)
                    files[stem] = (code, f"Actor_{actor}")
    return files


def _synthetic(out: Path, seed: int, kit: Maker, options: Mapping[str, Any]) -> Written:
    return Written.of(out.resolve(), write_synthetic(out, kit, ActedConfig(seed=seed)))


register(
    CorpusKind(
        "ravdess",
        "RAVDESS",
        LAYOUT,
        read,
        detect,
        signature,
        fixed(LABEL_SETS),
        "speaker-kfold",
        groups=("kind", "intensity", "statement", "repetition"),
        identity=LEGACY_IDENTITY,
        synthetic=Synthetic(_synthetic),
    )
)
