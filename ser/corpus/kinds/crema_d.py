"""CREMA-D: `AudioWAV/<ActorID>_<Sentence>_<Emotion>_<Level>.wav` under the root (91
actors, 12 sentences, 6 emotions at levels LO, MD, HI or XX: unspecified).

Speakers are the actors (`1001`..`1091`); their sex comes from `VideoDemographics.csv`
beside `AudioWAV` when it is there. The transcript is the sentence the code names. A
file whose name does not parse is a problem, never skipped silently; so is the corpus's
one empty file (1076_MTI_SAD_XX.wav in the release).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from ser.corpus.kind import ActedConfig, CorpusKind, Maker, Synthetic, Written, fixed, register
from ser.corpus.kinds.flat import LEGACY_IDENTITY, label_sets, pick, read_records
from ser.corpus.labels import LabelSet
from ser.corpus.records import CorpusReading, Problem, Utterance
from ser.corpus.text import read_lines
from ser.errors import CorpusError

AUDIO = "AudioWAV"
EMOTIONS = {"ANG": "ang", "DIS": "dis", "FEA": "fea", "HAP": "hap", "NEU": "neu", "SAD": "sad"}
LEVELS = ("LO", "MD", "HI", "XX")
SENTENCES = {
    "IEO": "It's eleven o'clock.",
    "TIE": "That is exactly what happened.",
    "IOM": "I'm on my way to the meeting.",
    "IWW": "I wonder what this is about.",
    "TAI": "The airplane is almost full.",
    "MTI": "Maybe tomorrow it will be cold.",
    "IWL": "I would like a new alarm clock.",
    "ITH": "I think I have a doctor's appointment.",
    "DFA": "Don't forget a jacket.",
    "ITS": "I think I've seen this before.",
    "TSI": "The surface is slick.",
    "WSI": "We'll stop in a couple of minutes.",
}
LABEL_SETS: dict[str, LabelSet] = label_sets(tuple(EMOTIONS.values()), "6")
NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
LAYOUT = f"{AUDIO}/<ActorID>_<Sentence>_<Emotion>_<Level>.wav"


def detect(root: Path) -> bool:
    return (root / AUDIO).is_dir()


def signature(root: Path) -> list[Path]:
    """What says the copy changed: the wav folder (its mtime) and the demographics."""
    return [p for p in (root / AUDIO, root / "VideoDemographics.csv") if p.exists()]


def read(root: Path, classes: str) -> CorpusReading:
    label_set = pick(LABEL_SETS, classes, "crema-d")
    folder = root / AUDIO
    if not folder.is_dir():
        hint = f" (did you mean {root.parent}?)" if root.name == AUDIO else ""
        raise CorpusError(f"{root} is not a CREMA-D root: no {AUDIO} folder{hint}")
    wavs = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav")
    if not wavs:
        raise CorpusError(f"{folder} holds no .wav files: CREMA-D's are named {LAYOUT}")
    problems: list[Problem] = []
    sexes = _sexes(root / "VideoDemographics.csv", problems)
    utterances = [u for u in (_utterance(wav, sexes, problems) for wav in wavs) if u is not None]
    return read_records(root, utterances, label_set, problems)


def _utterance(wav: Path, sexes: dict[str, str], problems: list[Problem]) -> Utterance | None:
    match = NAME.match(wav.stem)
    if match is None or match.group(3) not in EMOTIONS or match.group(4) not in LEVELS:
        problems.append(Problem(wav.name, f"{wav}: not a CREMA-D file name ({LAYOUT})"))
        return None
    actor, sentence, emotion, level = match.groups()
    return Utterance(
        utt_id=wav.stem,
        wav_path=wav,
        label=EMOTIONS[emotion],
        speaker=actor,
        gender=sexes.get(actor, ""),
        transcript=SENTENCES.get(sentence, ""),
        groups=(("sentence", sentence), ("level", level)),
    )


def _sexes(path: Path, problems: list[Problem]) -> dict[str, str]:
    """ActorID -> "F" | "M" from VideoDemographics.csv (none when it is absent)."""
    if not path.is_file():
        return {}
    try:
        text = read_lines(path)
        rows = list(csv.DictReader(text.lines))
    except (OSError, csv.Error) as error:
        problems.append(Problem(path.name, f"cannot read {path}: {error}"))
        return {}
    problems.extend(text.problems())
    sexes = {}
    for row in rows:
        actor, sex = (row.get("ActorID") or "").strip(), (row.get("Sex") or "").strip().lower()
        if actor and sex in ("male", "female"):
            sexes[actor] = "M" if sex == "male" else "F"
    return sexes


def write_synthetic(
    out: Path, kit: Maker, config: ActedConfig
) -> tuple[dict[str, tuple[str, str]], str]:
    """`out/AudioWAV/<actor>_<sentence>_<EMO>_<level>.wav` of `kit`'s speech and
    `VideoDemographics.csv`, with the release's one empty file (its last actor's
    `MTI_SAD_XX`, as 1076's); per utterance id its (label code, speaker), and the empty
    one's id."""
    folder = kit.new_root(out) / AUDIO
    folder.mkdir()
    said = [s for s in SENTENCES if s != "MTI"][: config.sentences]
    files, rows = {}, []
    for a in range(config.actors):
        actor, gender = f"{1001 + a}", "FM"[a % 2]
        rows.append({"ActorID": actor, "Age": 30 + a, "Sex": "Female" if gender == "F" else "Male"})
        voice = kit.voice(config.seed, a, gender)
        for k, (emo, code) in enumerate(EMOTIONS.items()):
            for s, sentence in enumerate(said):
                level = ("HI", "MD", "LO", "XX")[(a + s) % 4]
                stem = f"{actor}_{sentence}_{emo}_{level}"
                rng = np.random.default_rng([config.seed, a, k, s])
                kit.write_wav(folder / f"{stem}.wav", rng, voice, code, config.seconds)
                files[stem] = (code, actor)
    empty = f"{1000 + config.actors}_MTI_SAD_XX"
    soundfile.write(folder / f"{empty}.wav", np.zeros(0, np.int16), kit.sample_rate)
    files[empty] = ("sad", empty[:4])
    with (out / "VideoDemographics.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, ["ActorID", "Age", "Sex"])
        writer.writeheader()
        writer.writerows(rows)
    return files, empty


def _synthetic(out: Path, seed: int, kit: Maker, options: Mapping[str, Any]) -> Written:
    files, _ = write_synthetic(out, kit, ActedConfig(seed=seed))
    return Written.of(out.resolve(), files)


register(
    CorpusKind(
        "crema-d",
        "CREMA-D",
        LAYOUT,
        read,
        detect,
        signature,
        fixed(LABEL_SETS),
        "speaker-kfold",
        groups=("sentence", "level"),
        identity=LEGACY_IDENTITY,
        synthetic=Synthetic(_synthetic),
    )
)
