"""Transcripts of the synthetic corpus: sentences whose wording carries the emotion only
part of the time.

A sentence holds a phrase of its own class (`CUE_P`) or of a neighbour (`MISLEAD_P`) amid
neutral filler, so a text classifier errs on other utterances than an audio classifier,
whose errors follow the prosodic intensity, drawn independently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from ser.synth.attributes import Attributes, heard

#: Phrases that point to a class. `xxx` (no agreement) borrows from its two blends.
CUES: dict[str, tuple[str, ...]] = {
    "neu": (
        "the office opens at nine", "what is the address", "I usually take the bus",
        "maybe tomorrow then", "that is fine with me", "the forms are on the desk",
        "let me check the schedule", "okay",
    ),
    "hap": (
        "I am so glad you came", "I love it", "that is wonderful", "what a lovely day",
        "you look beautiful", "this is so nice", "we had so much fun", "it makes me smile",
    ),
    "exc": (
        "wow", "this is awesome", "that is amazing", "we won", "we are getting married",
        "this is incredible", "let us throw a party", "I am so excited",
    ),
    "sad": (
        "I am sorry", "I miss him so much", "I feel so alone", "she is gone",
        "it still hurts", "I lost everything", "he died last year", "I just want to cry",
    ),
    "ang": (
        "this is ridiculous", "I hate this", "you are a liar", "that is unacceptable",
        "shut up", "I am sick of you", "that is enough", "get out of my face",
    ),
    "fru": (
        "not again", "whatever", "I have been waiting for hours", "nobody ever listens",
        "this is pointless", "I already filled out the forms", "you are supposed to help me",
        "why is it always me",
    ),
    "sur": ("really", "I cannot believe it", "that is a surprise", "since when", "no way"),
    "fea": ("I am scared", "I am afraid of the dark", "I am worried about him", "I feel nervous"),
    "dis": ("that is gross", "it is disgusting", "what is that smell", "that is nasty"),
    "oth": ("hmm", "well"),
}  # fmt: skip

#: Neutral clauses that carry no emotion.
FILLER: tuple[str, ...] = (
    "I went to the store", "we talked about it yesterday", "she called me this morning",
    "you know what I mean", "the car is outside", "I will be there at six",
    "did you get the letter", "we need to talk", "I was thinking about the trip",
    "they moved to a new place", "it is on the table", "my brother said the same thing",
    "I do not know", "the train leaves at noon", "can you hold this for a second",
    "I saw your mother last week", "it is a long story", "we should go back now",
    "I have to work on monday", "there is a meeting after lunch", "do you want some coffee",
    "look at this", "I read it in the paper", "the kids are with my sister",
)  # fmt: skip

#: Words that open a sentence now and then.
OPENERS: tuple[str, ...] = ("oh", "well", "look", "yeah", "so", "no", "hey", "listen")

#: How often a sentence holds a phrase of its own class, and how often one of a neighbour.
CUE_P: dict[str, float] = {"neu": 0.6, "xxx": 0.5}
DEFAULT_CUE_P = 0.5
MISLEAD_P = 0.15
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "neu": ("fru", "sad", "hap"), "hap": ("exc", "neu"), "exc": ("hap", "sur"),
    "sad": ("fru", "neu"), "ang": ("fru", "dis"), "fru": ("ang", "sad", "neu"),
    "sur": ("exc", "fea"), "fea": ("sad", "sur"), "dis": ("ang", "fru"),
    "oth": ("neu",), "xxx": ("neu", "fru"),
}  # fmt: skip
_END: dict[str, str] = {"ang": "!", "exc": "!", "sur": "?"}

#: Lines written as speaker-only turns (`M: Yeah.`) and as unlabelled `XX` turns.
SPEAKER_ONLY: tuple[str, ...] = ("Yeah.", "Okay.", "Right.", "No.")
XX_TEXT: tuple[str, ...] = ("[LAUGHTER], That is what they say.", "[BREATHING] Hmm.", "Uh.")
#: Tags found in real transcriptions, in both cases.
TAGS: tuple[str, ...] = ("[LAUGHTER]", "[BREATHING]", "[GARBAGE]", "[laughter]", "[breathing]")


def compose(rng: np.random.Generator, code: str, blend: tuple[str, str] | None = None) -> str:
    """One tag-free sentence for `code`; `blend`: `xxx`'s two hesitated-over classes."""
    cue_class = code if blend is None else blend[int(rng.integers(2))]
    draw = rng.random()
    parts: list[str] = []
    if rng.random() < 0.2:
        parts.append(pick(rng, OPENERS))
    cue_p = CUE_P.get(code, DEFAULT_CUE_P)
    fillers = [pick(rng, FILLER) for _ in range(int(rng.choice(3, p=(0.45, 0.45, 0.1))))]
    if draw < cue_p:
        cue = pick(rng, CUES[cue_class])
    elif draw < cue_p + MISLEAD_P:
        cue = pick(rng, CUES[pick(rng, NEIGHBOURS[code])])
    else:
        cue = ""
    if not fillers and not cue:
        fillers = [pick(rng, FILLER)]
    position = int(rng.integers(len(fillers) + 1))
    parts += fillers[:position] + ([cue] if cue else []) + fillers[position:]
    end = _END.get(cue_class, ".") if cue else "?" if rng.random() < 0.15 else "."
    sentence = re.sub(r"\bi\b", "I", ", ".join(parts))
    return sentence[:1].upper() + sentence[1:] + end


def with_tag(rng: np.random.Generator, sentence: str) -> str:
    """`sentence` with one tag put where real transcripts have them.
    `ser.corpus.kinds.iemocap.clean_transcript` of the result gives `sentence` back."""
    tag = pick(rng, TAGS)
    words = sentence.split(" ")
    where = int(rng.integers(4))
    if where == 0:
        return f"{tag} {sentence}"
    if where == 1:
        return f"{tag}, {sentence}"
    if where == 2 or len(words) < 2:
        return f"{sentence[:-1]} {tag}{sentence[-1]}"  # before the final punctuation
    cut = int(rng.integers(1, len(words)))
    return " ".join([*words[:cut], tag, *words[cut:]])


def syllables(text: str) -> int:
    """A rough syllable count (vowel groups), to time a sentence."""
    return sum(max(1, len(re.findall(r"[aeiouy]+", w))) for w in _words(text))


def pick(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", _TAG_RE.sub(" ", text).lower())


_TAG_RE = re.compile(r"\[[^\[\]]*\]")


_WRITTEN = [*FILLER, *OPENERS, *SPEAKER_ONLY, *XX_TEXT, *chain.from_iterable(CUES.values())]
#: Every lower-cased word the generator can write in a transcript (tags excluded).
VOCABULARY: tuple[str, ...] = tuple(sorted({word for text in _WRITTEN for word in _words(text)}))


#: The category word annotators use for each label code (C- lines).
CATEGORY_WORDS: dict[str, str] = {
    "neu": "Neutral", "hap": "Happiness", "exc": "Excited", "sad": "Sadness", "ang": "Anger",
    "fru": "Frustration", "sur": "Surprise", "fea": "Fear", "dis": "Disgust", "oth": "Other",
}  # fmt: skip
#: How far one rating strays from what the utterance conveys (before rounding), scale points.
RATER_SD = 0.45
_EVALUATORS = ("E1", "E2", "E3", "E4", "E5", "E6")


@dataclass(frozen=True)
class Annotation:
    """What the annotators of one utterance wrote, and the consensus V/A/D."""

    categories: list[tuple[str, list[str]]]  # (annotator, category words): C- lines
    ratings: list[tuple[str, tuple[int, int, int]]]  # (annotator, (val, act, dom)): A- lines
    vad: tuple[float, float, float]  # mean of the ratings, rounded like the files


def annotate(
    rng: np.random.Generator,
    code: str,
    blend: tuple[str, str] | None,
    heard_as: Attributes,
    votes: np.random.Generator,
) -> Annotation:
    """Annotator lines for an utterance of consensus `code` (`xxx`: hesitating over
    `blend`) whose audio conveys `heard_as`: 2-3 ratings scattered about it, rounded; two
    annotators name `code` and the third what it hears (`ser.synth.attributes.heard`;
    now and then a stray pick), the second adding the class heard next to `code` the more
    likely the nearer the utterance lies to it. `votes` draws the categories, `rng`
    everything else (as many draws as ever, so that the text and audio drawn after an
    annotation stay the same)."""
    who = sorted(str(w) for w in rng.choice(_EVALUATORS, 3, replace=False))
    raw = rng.normal(0.0, RATER_SD, (int(rng.integers(2, 4)), 3))
    values = np.clip(np.rint(np.array(heard_as.vad()) + raw), 1, 5).astype(int)  # [raters, 3]
    ratings = [(w, (int(v[0]), int(v[1]), int(v[2]))) for w, v in zip(who, values, strict=False)]
    vad = tuple(float(f"{x:.4f}") for x in values.mean(axis=0))
    other = list(CATEGORY_WORDS.values())[int(rng.integers(len(CATEGORY_WORDS)))]
    if blend:  # no agreement: one annotator names both classes, the others differ
        first, second = CATEGORY_WORDS[blend[0]], CATEGORY_WORDS[blend[1]]
        words = [[first, second], [second], [other]]
    else:
        mixed = code in ("ang", "fru") and rng.random() < 0.3
        words = _categories(votes, code, heard_as, other, mixed)
    return Annotation(list(zip(who, words, strict=True)), ratings, (vad[0], vad[1], vad[2]))


#: The classes annotators hear in an utterance (`oth` only as a stray pick).
HEARD: tuple[str, ...] = tuple(c for c in CATEGORY_WORDS if c != "oth")
#: How often the third annotator's pick is a stray one, whatever the utterance conveys.
STRAY_P = 0.15


def _categories(
    votes: np.random.Generator, code: str, heard_as: Attributes, other: str, mixed: bool
) -> list[list[str]]:
    """The three annotators' category words of an utterance of a class of its own."""
    chances = heard(heard_as, HEARD)
    nearest = max((c for c in HEARD if c != code), key=chances.__getitem__)
    doubt = chances[nearest] / (chances[nearest] + chances.get(code, 0.0))  # 0 sure .. 1
    word = CATEGORY_WORDS[code]
    second = [word, CATEGORY_WORDS[nearest]] if votes.random() < 2 * doubt else [word]
    if mixed:
        third = ["Frustration", "Anger"]
    elif votes.random() < STRAY_P:
        third = [other]
    else:
        third = [CATEGORY_WORDS[HEARD[int(votes.choice(len(HEARD), p=list(chances.values())))]]]
    return [[word], second, third]
