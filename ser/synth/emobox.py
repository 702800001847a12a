"""A synthetic EmoBox checkout: `data/<name>/` as EmoBox publishes it (`<name>.jsonl`,
`label_map.json` (EMOVO's `label_dict.json`), `data.seg.wrd.stm`, `fold_<k>/` train and
test files, valid files where EmoBox has them) for the named corpora, in each one's key
and path shapes (`ser.synth.emobox_shapes`), their audio under `downloads/<name>/`
(speech-like, prosody by class: `ser.synth.acted.write_wav`; a video or webm path gets
none, as ser reads no video here), and track2 test files with their wavs. Made up, not
copied; a seed gives the same bytes.

Folds: a corpus with an official validation split (M3ED, MELD, MSP-Podcast) has one
fold: its last speaker tested, the one before validating, the others trained; any other
has one fold per speaker (`folds`: that many), each testing one speaker group. A corpus
whose speakers no one names, or that has one, folds by take instead.

>>> import tempfile
>>> truth = write_emobox(Path(tempfile.mkdtemp()), EmoBoxConfig(("savee",), speakers=2))
>>> sorted(truth.files["savee"].values())[:2], sorted(truth.folds["savee"])
([('Angry', 'DC'), ('Angry', 'DC')], ['fold_1', 'fold_2'])
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from ser.synth import audio
from ser.synth.acted import ActedTruth, new_root, speech, voice_of, write_wav
from ser.synth.emobox_shapes import SHAPES, Shape, letters

VALID = ("m3ed", "meld", "msppodcast")  # EmoBox's folds with a valid file
AUDIO = (".wav", ".flac")  # what the writer writes audio for
# A class name -> the generator's prosody code.
PROSODY = {
    "Neutral": "neu",
    "Happy": "hap",
    "Sad": "sad",
    "Angry": "ang",
    "Fear": "fea",
    "Calm": "cal",
    "Amused": "hap",
}
# Track2's four files: wav_filename and speaker of speaker n's take t of a label.
TRACK2 = {
    "IEMOCAP": ("{label}/Ses0{n}F_impro0{t}_{g}00{t}.wav", "0{n}{g}"),
    "MELD": ("audio/dia{n}{c}_utt{t}.wav", "Character-{n}"),
    "RAVDESS": ("Actor_{n:02d}/03-01-0{c}-01-01-0{t}-{n:02d}.wav", "{n:02d}"),
    "SAVEE": ("{L}/{e}{t:02d}.wav", "{L}"),
}
TRACK2_LABELS = {"neutral": "n", "happy": "h", "sad": "sa", "angry": "a"}
TRACK2_AUDIO = "track2_audio"  # under the checkout: the track2 files' --audio-root


@dataclass(frozen=True)
class EmoBoxConfig:
    """Which corpora (EmoBox's names) and track2 files; speakers, takes of each code per
    speaker, folds (0: the corpus's way, module doc), seconds, whether to write audio."""

    corpora: tuple[str, ...] = ("iemocap", "msppodcast", "savee")
    speakers: int = 4
    takes: int = 2
    folds: int = 0
    seed: int = 0
    seconds: tuple[float, float] = (0.5, 0.9)
    audio: bool = True
    track2: tuple[str, ...] = ("SAVEE",)


@dataclass(frozen=True)
class EmoBoxTruth:
    """What was written: per corpus, key -> (class name, speaker) and fold -> side ->
    keys; per track2 corpus its file; `root` the checkout (data/, downloads/)."""

    root: Path
    files: dict[str, dict[str, tuple[str, str]]]
    folds: dict[str, dict[str, dict[str, tuple[str, ...]]]]
    track2: dict[str, Path]

    def folder(self, name: str) -> Path:
        return self.root / "data" / name

    @property
    def track2_audio(self) -> Path:
        return self.root / TRACK2_AUDIO

    def acted(self) -> ActedTruth:
        """Every corpus's utterances as one `ActedTruth` (`ser demo-corpus`'s line)."""
        return ActedTruth(
            self.root, {k: v for files in self.files.values() for k, v in files.items()}
        )


def write_emobox(out: Path, config: EmoBoxConfig = EmoBoxConfig()) -> EmoBoxTruth:
    """Write the checkout into `out` (new or empty)."""
    root = new_root(out).resolve()
    files, folds = {}, {}
    for name in config.corpora:
        files[name], folds[name] = write_corpus_folder(root, name, config)
    track2 = {corpus: write_track2(root, corpus, config) for corpus in config.track2}
    return EmoBoxTruth(root, files, folds, track2)


def write_corpus_folder(
    root: Path, name: str, config: EmoBoxConfig
) -> tuple[dict[str, tuple[str, str]], dict[str, dict[str, tuple[str, ...]]]]:
    """`data/<name>/` and its audio: every code `takes` times per speaker."""
    shape = SHAPES[name]
    folder = root / "data" / name
    folder.mkdir(parents=True)
    rows: list[dict[str, Any]] = []
    units: list[int] = []
    truth: dict[str, tuple[str, str]] = {}
    for n in range(1, config.speakers + 1):
        for code in shape.codes:
            for t in range(config.takes):
                own, wav, speaker = shape.line(n, code, t)
                key = f"{name}-{own}"
                rows.append(
                    {
                        "key": key,
                        "dataset": name,
                        "wav": f"downloads/{wav}",
                        "type": "raw",
                        "sample_rate": audio.SAMPLE_RATE,
                        "task": "category",
                        "length": 0.0,
                        "emo": code,
                        "channel": 1,
                    }
                )
                units.append(n if "{" in shape.speaker else t)  # one speaker, or unnamed
                truth[key] = (shape.codes[code], speaker or "Unknown")
    _write_audio(root, name, shape, rows, config)
    for row in rows:  # EmoBox's lengths: num_frame / sample_rate
        row["num_frame"] = round(row["length"] * audio.SAMPLE_RATE)
    _write_lines(folder / f"{name}.jsonl", rows)
    map_name = "label_dict.json" if name == "emovo" else "label_map.json"
    (folder / map_name).write_text(json.dumps(shape.codes, indent=4), encoding="utf-8")
    _write_stm(folder, rows, truth)
    return truth, _write_folds(folder, name, rows, units, config)


def _write_audio(
    root: Path, name: str, shape: Shape, rows: list[dict[str, Any]], config: EmoBoxConfig
) -> None:
    """Each row's audio and length (a file per code of consecutive parts, for a corpus of
    spans); a row whose path is a video gets a drawn length and no file."""
    parts: dict[str, list[np.ndarray]] = {}
    for i, row in enumerate(rows):
        n = i // (len(shape.codes) * config.takes) + 1
        rng = np.random.default_rng([config.seed, sum(map(ord, name)), i])
        if not config.audio or Path(row["wav"]).suffix not in AUDIO:
            row["length"] = round(float(rng.uniform(*config.seconds)), 6)
            continue
        voice = voice_of(config.seed, n, "F" if n % 2 else "M")
        samples = speech(rng, voice, PROSODY.get(shape.codes[row["emo"]], "oth"), config.seconds)
        row["length"] = round(len(samples) / audio.SAMPLE_RATE, 6)
        if shape.span:
            done = sum(len(p) for p in parts.get(row["wav"], []))
            ends = (done / audio.SAMPLE_RATE, (done + len(samples)) / audio.SAMPLE_RATE)
            row["start_time"], row["end_time"] = ends
            parts.setdefault(row["wav"], []).append(samples)
        else:
            parts[row["wav"]] = [samples]
    for wav, pieces in parts.items():
        (root / wav).parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(root / wav, np.concatenate(pieces), audio.SAMPLE_RATE)


def _write_lines(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), "utf-8")


def _write_stm(folder: Path, rows: list[dict[str, Any]], truth: dict[str, tuple[str, str]]) -> None:
    """EmoBox's `data.seg.wrd.stm`: key, channel, speaker, start, end, meta, code."""
    lines = [
        f"{r['key']} 1 {truth[r['key']][1]} 0 {r['length']} "
        f"<id={r['key']},spk={truth[r['key']][1]},emotion={r['emo']}> {r['emo']}"
        for r in rows
    ]
    (folder / "data.seg.wrd.stm").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_folds(
    folder: Path, name: str, rows: list[dict[str, Any]], units: list[int], config: EmoBoxConfig
) -> dict[str, dict[str, tuple[str, ...]]]:
    """`fold_<k>/<name>_<side>_fold_<k>.jsonl` (module doc); fold -> side -> keys."""
    found = sorted(set(units))
    if name in VALID and len(found) < 3:
        raise ValueError(f"{name}'s official split needs 3 speakers (train, valid, test)")
    if name in VALID:
        plan = [{found[-1]: "test", found[-2]: "valid"}]
    else:
        k = config.folds or len(found)
        groups = [g.tolist() for g in np.array_split(np.array(found), k)]
        plan = [dict.fromkeys(g, "test") for g in groups]
    folds = {}
    for k, sides in enumerate(plan, start=1):
        group = f"fold_{k}"
        listed: dict[str, list[dict[str, Any]]] = {"train": [], "valid": [], "test": []}
        for row, unit in zip(rows, units, strict=True):
            listed[sides.get(unit, "train")].append(row)
        for side, chosen in listed.items():
            if chosen or side != "valid":
                _write_lines(folder / group / f"{name}_{side}_fold_{k}.jsonl", chosen)
        folds[group] = {s: tuple(r["key"] for r in c) for s, c in listed.items() if c}
    return folds


def write_track2(root: Path, corpus: str, config: EmoBoxConfig) -> Path:
    """`data/track2/<CORPUS>_selected_balenced.jsonl`, four labels `takes` times per
    speaker, and its wavs under `track2_audio/`."""
    wav_t, speaker_t = TRACK2[corpus]
    rows = []
    for n in range(1, config.speakers + 1):
        g = "F" if n % 2 else "M"
        for c, (label, code) in enumerate(TRACK2_LABELS.items(), start=1):
            for t in range(config.takes):
                fields = {
                    "n": n,
                    "g": g,
                    "t": t,
                    "c": c,
                    "label": label,
                    "e": code,
                    "L": letters(n),
                }
                wav = wav_t.format(**fields)
                rows.append(
                    {"wav_filename": wav, "label": label, "speaker": speaker_t.format(**fields)}
                )
                if config.audio:
                    path = root / TRACK2_AUDIO / wav
                    path.parent.mkdir(parents=True, exist_ok=True)
                    rng = np.random.default_rng([config.seed, 7, n, c, t])
                    voice = voice_of(config.seed, n, g)
                    write_wav(path, rng, voice, PROSODY[label.title()], config.seconds)
    path = root / "data" / "track2" / f"{corpus}_selected_balenced.jsonl"
    _write_lines(path, rows)
    return path
