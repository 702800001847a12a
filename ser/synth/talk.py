"""Synthetic corpora in the layouts of the naturalistic corpora, MSP-Podcast and MELD:
the acted generator's speech-like audio (`ser.synth.acted.write_wav`, prosody by label)
with transcripts that carry label cues (`ser.synth.text.compose`). Tiny by default; a
seed gives the same bytes.

Quirks kept. MSP-Podcast: `FileName` with its `.wav`, speakers the release calls
`Unknown` in Train and Test1, O and X rows, a Test2 partition, one missing transcript.
MELD: dialogs of several speakers whose main characters recur in every split, dialog
ids that restart in each split's CSV, `Sr No.` and the release's other columns; wavs in
`train/`, `dev/`, `test/`, or (`clips=True`) the release's own .mp4 clips, 48 kHz stereo
AAC, in its folders.

>>> import tempfile
>>> truth = write_msp_podcast(Path(tempfile.mkdtemp()) / "MSP", TalkConfig(speakers=4))
>>> len(truth.files), sorted({s for _, s in truth.files.values()})[-1]
(50, 'Unknown')
"""

from __future__ import annotations

import csv
from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from ser.corpus.kinds import meld, msp_podcast
from ser.synth import attributes, audio, text
from ser.synth.acted import ActedTruth, new_root, speech, utterance, voice_of
from ser.synth.encode import write_encoded

#: MSP-Podcast's annotators a file, the first `AGREE` naming its class; the others name
#: what they hear in its audio (`ser.synth.attributes.heard`) among `HEARD`.
ANNOTATORS, AGREE = 5, 3
HEARD = ("ang", "sad", "hap", "sur", "fea", "dis", "neu")
RATER_SD = 0.7  # one annotator's rating about what the audio conveys, 1-7 scale
_PEOPLE = 12  # part of the seeds of how far a speaker shows the emotion and who rates it


@dataclass(frozen=True)
class TalkConfig:
    """How many speakers, rounds of every class per speaker, seconds; the seed of every draw."""

    speakers: int = 6
    rounds: int = 1
    seed: int = 0
    seconds: tuple[float, float] = (0.8, 1.4)
    dialogs: int = 2  # MELD: dev's and test's dialogs; train has three times as many
    turns: tuple[int, int] = (4, 7)  # MELD: utterances a dialog, at least and at most


def write_msp_podcast(out: Path, config: TalkConfig = TalkConfig()) -> ActedTruth:
    """`out/Labels/labels_consensus.csv`, `out/Labels/labels_detailed.csv` (each file's
    emotion shown at an intensity of its own, as in IEMOCAP's layout; 5 annotators
    a file, `_panel`: 3 name its class, 2 what they hear in its audio, X's five apart;
    the consensus attributes the mean of their ratings, which follow the audio's prosody),
    `out/Audios/*.wav`, `out/Transcripts/*.txt`:
    every class (O and X too) `config.rounds` times per speaker; the last speaker Test1,
    the one before Development, the one before that Test2 (with 5 or more), the rest
    Train; one `Unknown` speaker's utterances in Train and Test1."""
    root = new_root(out)
    for folder in ("Labels", msp_podcast.AUDIO, msp_podcast.TEXT):
        (root / folder).mkdir()
    split = _msp_splits(config.speakers)
    rows, files = [], {}
    details: dict[str, list[tuple[str, tuple[int, int, int]]]] = {}
    for s in range(config.speakers + 1):  # the last: Unknown
        speaker = str(s + 1) if s < config.speakers else msp_podcast.UNKNOWN
        voice = voice_of(config.seed, s, "FM"[s % 2])
        for r in range(config.rounds):
            for k, (letter, code) in enumerate(msp_podcast.EMOTIONS.items()):
                stem = f"MSP-PODCAST_{s + 1:04d}_{r * 10 + k + 1:04d}"
                rng = np.random.default_rng([config.seed, s, r, k])
                people = np.random.default_rng([config.seed, s, r, k, _PEOPLE])
                shown = float(np.clip(people.beta(2.5, 1.2), 0.1, 1.0))  # as IEMOCAP's
                prosody, samples = utterance(rng, voice, code, config.seconds, shown)
                soundfile.write(
                    root / msp_podcast.AUDIO / f"{stem}.wav", samples, audio.SAMPLE_RATE
                )
                if (s, r, k) != (0, 0, 0):  # the release lacks a few transcripts
                    words = text.compose(rng, _cued(code))
                    (root / msp_podcast.TEXT / f"{stem}.txt").write_text(words + "\n")
                where = split[s] if s < config.speakers else ("Train", "Test1")[k % 2]
                panel = _panel(people, code, prosody)
                rows.append(_msp_row(stem, letter, speaker, "FM"[s % 2], where, panel))
                details[stem] = panel
                files[stem] = (code, speaker)
    with (root / msp_podcast.LABELS).open("w", newline="") as file:
        writer = csv.DictWriter(file, msp_podcast.COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    with (root / msp_podcast.DETAILED).open("w", newline="") as file:
        lines = csv.writer(file)
        lines.writerow(["FileName", "Detailed"])
        for n, (stem, panel) in enumerate(details.items()):
            lines.writerows([f"{stem}.wav", vote] for vote in _msp_votes(n, panel))
    return ActedTruth(root.resolve(), files)


def _panel(
    rng: np.random.Generator, code: str, prosody: audio.Prosody
) -> list[tuple[str, tuple[int, int, int]]]:
    """Each annotator's primary emotion (a name of the detailed file) and (arousal,
    valence, dominance) ratings, 1-7, of a file of `code` spoken with `prosody`: the
    first `AGREE` name its class, the others what they hear (X's five all differ)."""
    names = {c: name.capitalize() for name, c in msp_podcast.VOTED.items()}
    names["oth"] = "Other-Curious"
    heard_as = attributes.conveyed(prosody)
    if code == "xxx":
        chosen = ["Angry", "Happy", "Sad", "Neutral", "Surprise"]
    else:
        chances = attributes.heard(heard_as, HEARD)
        picks = rng.choice(len(HEARD), ANNOTATORS - AGREE, p=list(chances.values()))
        chosen = [names[code]] * AGREE + [names[HEARD[int(p)]] for p in picks]
    mean = np.array(astuple(heard_as.on_scale(1.0, 7.0)))  # [3]: arousal, valence, dominance
    ratings = np.clip(np.rint(mean + rng.normal(0.0, RATER_SD, (ANNOTATORS, 3))), 1, 7)
    return [
        (name, (int(a), int(v), int(d))) for name, (a, v, d) in zip(chosen, ratings, strict=True)
    ]


def _msp_votes(n: int, panel: list[tuple[str, tuple[int, int, int]]]) -> list[str]:
    """The detailed file's field for each annotator (of 12) of the `n`th file."""
    workers = [f"WORKER{(n + j * 5) % 12 + 1:05d}" for j in range(len(panel))]
    return [
        f"{w}; {name}; ; A:{a:.1f}; V:{v:.1f}; D:{d:.1f}"
        for w, (name, (a, v, d)) in zip(workers, panel, strict=True)
    ]


def _msp_splits(speakers: int) -> list[str]:
    if speakers < 3:
        raise ValueError("a synthetic MSP-Podcast needs 3 speakers: Train, Development, Test1")
    split = ["Train"] * speakers
    split[-1], split[-2] = "Test1", "Development"
    if speakers >= 5:
        split[-3] = "Test2"
    return split


def _msp_row(
    stem: str,
    letter: str,
    speaker: str,
    gender: str,
    split: str,
    panel: list[tuple[str, tuple[int, int, int]]],
) -> dict:
    """A consensus row: the attributes are the mean of the panel's ratings."""
    arousal, valence, dominance = np.mean([rating for _, rating in panel], axis=0)
    return {
        "FileName": f"{stem}.wav",
        "EmoClass": letter,
        "EmoAct": f"{arousal:.1f}",
        "EmoVal": f"{valence:.1f}",
        "EmoDom": f"{dominance:.1f}",
        "SpkrID": speaker,
        "Gender": "Female" if gender == "F" else "Male",
        "Split_Set": split,
    }


def _cued(code: str) -> str:
    """The transcript cues of `code`: contempt speaks as disgust, X as neutral."""
    return {"con": "dis", "xxx": "neu"}.get(code, code)


#: MELD's recurring characters; a guest speaks in each test dialog.
CHARACTERS = ("Joey", "Rachel", "Ross", "Monica", "Chandler", "Phoebe")
CLIP_RATE = 48000  # MELD's clips' audio
MELD_COLUMNS = (
    "Sr No.",
    "Utterance",
    "Speaker",
    "Emotion",
    "Sentiment",
    "Dialogue_ID",
    "Utterance_ID",
    "Season",
    "Episode",
    "StartTime",
    "EndTime",
)


def write_meld(
    out: Path, config: TalkConfig = TalkConfig(speakers=4), clips: bool = False
) -> ActedTruth:
    """`out/{train,dev,test}_sent_emo.csv` and `out/{train,dev,test}/dia{D}_utt{U}.wav`
    (`clips`: the release's `dia{D}_utt{U}.mp4`, 48 kHz stereo AAC, in `train_splits/`,
    `dev_splits_complete/`, `output_repeated_splits_test/`): `3 x config.dialogs` train
    dialogs, `config.dialogs` dev and test ones, each of `config.turns` utterances by the
    first `config.speakers` characters taking turns (a guest's line closing each test
    dialog); emotions cycle through MELD's seven. Train's `dia0` has no audio for its last
    clip (the release lacks a few clips too): `empty`. The same seed and `clips`, the same
    bytes."""
    if not 2 <= config.speakers <= len(CHARACTERS):
        raise ValueError(f"a synthetic MELD has 2 to {len(CHARACTERS)} recurring characters")
    root = new_root(out)
    files: dict[str, tuple[str, str]] = {}
    missing = []
    for s, split in enumerate(meld.SPLITS):
        folder = root / (meld.RELEASE[split] if clips else split)
        folder.mkdir()
        rows: list[dict[str, str]] = []
        for d in range(config.dialogs * (3 if split == "train" else 1)):
            rng = np.random.default_rng([config.seed, s, d])
            turns = int(rng.integers(config.turns[0], config.turns[1] + 1))
            for u in range(turns):
                row = _meld_row(rng, config, split, d, u, turns)
                code = row.pop("code")
                if (split, d, u) == ("train", 0, turns - 1):
                    missing.append(f"{split}_dia{d}_utt{u}")
                else:
                    voice = voice_of(config.seed, _speaker_index(row["Speaker"]), "MF"[u % 2])
                    samples = speech(rng, voice, code.split(".")[0], config.seconds)
                    _write_meld_audio(folder / f"dia{d}_utt{u}", samples, clips)
                rows.append({"Sr No.": str(len(rows) + 1), **row})
                files[f"{split}_dia{d}_utt{u}"] = (code, row["Speaker"])
        with (root / f"{split}_sent_emo.csv").open("w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, MELD_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return ActedTruth(root.resolve(), files, tuple(missing))


def _write_meld_audio(stem: Path, samples: np.ndarray, clip: bool) -> None:
    """A 16 kHz mono wav, or the release's clip: 48 kHz, the right channel a little
    quieter than the left (the clips are stereo; a downmix averages them)."""
    if not clip:
        soundfile.write(stem.with_suffix(".wav"), samples, audio.SAMPLE_RATE)
        return
    left = soxr.resample(samples / np.float32(32768), audio.SAMPLE_RATE, CLIP_RATE)  # int16
    write_encoded(stem.with_suffix(".mp4"), np.stack([left, 0.8 * left], axis=1), CLIP_RATE)


def _meld_row(
    rng: np.random.Generator, config: TalkConfig, split: str, d: int, u: int, turns: int
) -> dict[str, str]:
    """One CSV row (and `code`: the label code ser reads, `<emotion>.<sentiment>`)."""
    emotion = list(meld.EMOTIONS)[(5 * d + u) % len(meld.EMOTIONS)]
    sentiment = SENTIMENT.get(emotion) or ("positive", "negative")[int(rng.integers(2))]
    guest = split == "test" and u == turns - 1
    speaker = f"Guest {d}" if guest else CHARACTERS[(d + u) % config.speakers]
    short = meld.EMOTIONS[emotion]
    return {
        "code": f"{short}.{meld.SENTIMENTS[sentiment]}",
        "Utterance": text.compose(rng, short).replace("'", "\u2019"),
        "Speaker": speaker,
        "Emotion": emotion,
        "Sentiment": sentiment,
        "Dialogue_ID": str(d),
        "Utterance_ID": str(u),
        "Season": "1",
        "Episode": str(d + 1),
        "StartTime": f"00:00:{2 * u:02d},000",
        "EndTime": f"00:00:{2 * u + 1:02d},500",
    }


#: The sentiment each emotion carries (surprise: either, drawn).
SENTIMENT = {
    "neutral": "neutral",
    "joy": "positive",
    "sadness": "negative",
    "anger": "negative",
    "fear": "negative",
    "disgust": "negative",
}


def _speaker_index(speaker: str) -> int:
    return CHARACTERS.index(speaker) if speaker in CHARACTERS else len(CHARACTERS)
