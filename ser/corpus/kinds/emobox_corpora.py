"""The 32 corpora EmoBox publishes folds for (`data/<name>/`): each one's title,
language and where its speakers are named (`CORPORA`), and what EmoBox ships about each
beside its JSONL (`label_map`, `stm_speakers`), for the `emobox` kind.

EmoBox's keys are `<name>-<the corpus's own id>`; most ids name the speaker
(`savee-JE-n23`: JE), read by a pattern (`FromKey`). Where they do not, EmoBox's
`data.seg.wrd.stm` beside the JSONL carries the speaker it took from the corpus's own
metadata (`FromStm`: MELD's characters, M3ED's, Emozionalmente's actors, MSP-Podcast's
SpkrID). Two corpora have one speaker (`OneSpeaker`). For three, no speaker is known
(None, with the reason): their utterances' speaker is `Unknown`, and folds are recorded
speaker-dependent.

Where EmoBox's own speaker ids are wrong, the patterns read the corpus's ids instead:
IEMOCAP's stm names the dialog's first speaker (`Ses01F` for `Ses01F_impro04_M000`), the
pattern the utterance's (`Ses01M`), as the iemocap kind does; eNTERFACE's `s_3_fe_5`
is subject 3 (EmoBox: `s`); JL-Corpus's stm holds a path.

>>> CORPORA["iemocap"].speaker_of("iemocap-Ses01F_impro04_M000")
'Ses01M'
>>> CORPORA["subesco"].speaker_of("subesco-F_10_FAHMEE_S_6_FEAR_5")
'F10'
>>> CORPORA["mer2023"].speaker_of("mer2023-sample_00002721") is None
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ser.corpus.labels import LabelSet
from ser.corpus.records import Problem
from ser.corpus.text import read_lines
from ser.errors import CorpusError

MAPS = ("label_map.json", "label_dict.json")  # EMOVO ships the second name
STM = "data.seg.wrd.stm"
UNKNOWN = "Unknown"  # the speaker of an utterance whose speaker no one names


@dataclass(frozen=True)
class FromKey:
    """The speaker is in the key less its `<name>-`: `pattern`'s groups, joined."""

    pattern: str
    compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", re.compile(self.pattern))


@dataclass(frozen=True)
class FromStm:
    """The speaker is the third field of EmoBox's `data.seg.wrd.stm` line of the key."""


@dataclass(frozen=True)
class OneSpeaker:
    """Every utterance is one speaker's."""

    name: str


Speakers = FromKey | FromStm | OneSpeaker | None


@dataclass(frozen=True)
class EmoBoxCorpus:
    """One corpus of EmoBox: `speakers` says where its speakers are named (None: nowhere,
    `unknown` says why)."""

    title: str
    language: str
    speakers: Speakers
    unknown: str = ""

    def speaker_of(self, key: str) -> str | None:
        """The speaker a key names (`FromKey`, `OneSpeaker`), None when it names none."""
        if isinstance(self.speakers, OneSpeaker):
            return self.speakers.name
        if not isinstance(self.speakers, FromKey):
            return None
        _, _, own = key.partition("-")
        match = self.speakers.compiled.match(own)
        return "".join(match.groups()) if match else None

    @property
    def source(self) -> str:
        """Where the speakers come from, as summaries say it."""
        if self.speakers is None:
            return f"unknown: {self.unknown}"
        return {
            FromKey: "the key",
            FromStm: "EmoBox's data.seg.wrd.stm",
            OneSpeaker: "one speaker",
        }[type(self.speakers)]


_NO_IDS = "EmoBox names none (its stm's speaker is each file's own name)"

#: name -> the corpus; the names are EmoBox's `data/<name>` folders.
CORPORA: dict[str, EmoBoxCorpus] = {
    "aesdd": EmoBoxCorpus("AESDD", "Greek", FromKey(r"[a-z]\d+-0*(\d+)")),
    "ased": EmoBoxCorpus("ASED", "Amharic", FromKey(r".*-(\d+)$")),
    "asvpesd": EmoBoxCorpus("ASVP-ESD", "mixed", FromKey(r"(?:[^-]+-){5}([^-]+)")),
    "cafe": EmoBoxCorpus("CaFE", "French", FromKey(r"(\d+)-")),
    "casia": EmoBoxCorpus("CASIA", "Mandarin", FromKey(r"[^-]+-([^-]+)-")),
    "cremad": EmoBoxCorpus("CREMA-D", "English", FromKey(r"(\d+)-")),
    "emns": EmoBoxCorpus("EMNS", "English", OneSpeaker("emns")),
    "emodb": EmoBoxCorpus("EmoDB", "German", FromKey(r"(\d\d)")),
    "emovdb": EmoBoxCorpus("EmoV-DB", "English", FromKey(r"([^-]+)-")),
    "emovo": EmoBoxCorpus("EMOVO", "Italian", FromKey(r"[^-]+-([fm]\d+)-")),
    "emozionalmente": EmoBoxCorpus("Emozionalmente", "Italian", FromStm()),
    "enterface": EmoBoxCorpus("eNTERFACE", "English", FromKey(r"(s)_?(\d+)")),
    "esd": EmoBoxCorpus("ESD", "Mandarin and English", FromKey(r"(\d+)-")),
    "iemocap": EmoBoxCorpus("IEMOCAP", "English", FromKey(r"(Ses\d\d)[FM]_.*_([FM])\d+$")),
    "jlcorpus": EmoBoxCorpus("JL-Corpus", "English", FromKey(r"([a-z]+\d+)-")),
    "m3ed": EmoBoxCorpus("M3ED", "Mandarin", FromStm()),
    "mead": EmoBoxCorpus("MEAD", "English", FromKey(r"([MW]\d+)-")),
    "meld": EmoBoxCorpus("MELD", "English", FromStm()),
    "mer2023": EmoBoxCorpus("MER2023", "Mandarin", None, _NO_IDS),
    "mesd": EmoBoxCorpus(
        "MESD", "Spanish", None, "its file names give a voice group (female, male, child)"
    ),
    "msppodcast": EmoBoxCorpus("MSP-Podcast", "English", FromStm()),
    "oreau": EmoBoxCorpus("Oreau", "French", FromKey(r"(\d\d)")),
    "pavoque": EmoBoxCorpus("PAVOQUE", "German", OneSpeaker("pavoque")),
    "polish": EmoBoxCorpus("Polish", "Polish", FromKey(r"([a-z]\d+)\.")),
    "ravdess": EmoBoxCorpus("RAVDESS", "English", FromKey(r".*-(\d+)$")),
    "resd": EmoBoxCorpus("RESD", "Russian", None, _NO_IDS),
    "savee": EmoBoxCorpus("SAVEE", "English", FromKey(r"([A-Z]+)-")),
    "shemo": EmoBoxCorpus("ShEMO", "Persian", FromKey(r"([FM]\d+)")),
    "subesco": EmoBoxCorpus("SUBESCO", "Bangla", FromKey(r"([FM])_(\d+)_")),
    "tess": EmoBoxCorpus("TESS", "English", FromKey(r"([A-Z]+)-")),
    "turevdb": EmoBoxCorpus("TurEV-DB", "Turkish", FromKey(r"(\d+)_")),
    "urdu": EmoBoxCorpus("URDU", "Urdu", FromKey(r"(S[FM]\d+)_")),
}


def corpus_of(name: str) -> EmoBoxCorpus:
    """The corpus of folder `name`; one EmoBox does not list reads with the stm's
    speakers where it has one."""
    return CORPORA.get(name) or EmoBoxCorpus(name, "unknown", FromStm())


def label_map(root: Path, problems: list[Problem]) -> dict[str, str]:
    """`emo` code -> class name: the folder's label map; `CorpusError` when it has none or
    it is not a JSON object of strings; a line not UTF-8 read as Latin-1, in `problems`."""
    path = next((root / m for m in MAPS if (root / m).is_file()), None)
    if path is None:
        raise CorpusError(f"{root}: no {' or '.join(MAPS)} (EmoBox's code -> class name)")
    try:
        text = read_lines(path)
        codes = json.loads(text.text)
    except (OSError, json.JSONDecodeError) as error:
        raise CorpusError(f"cannot read {path}: {error}") from None
    problems.extend(text.problems())
    if not isinstance(codes, dict) or not all(isinstance(v, str) for v in codes.values()):
        raise CorpusError(f"{path}: not a JSON object of code -> class name")
    return {str(k): v.strip() for k, v in codes.items()}


def code_of(emo: str, codes: dict[str, str]) -> str | None:
    """The label map's code of a line's `emo`: itself, else the one code that differs
    from it in case alone (EmoDB's lines say `neutral`, its map `Neutral`); None."""
    if emo in codes:
        return emo
    found = [code for code in codes if code.lower() == emo.lower()]
    return found[0] if len(found) == 1 else None


def stm_speakers(root: Path, problems: list[Problem]) -> dict[str, str]:
    """key -> speaker of EmoBox's stm (`key channel speaker start end <meta> label`);
    {} without the file; a line not UTF-8 read as Latin-1 and named with its key."""
    path = root / STM
    if not path.is_file():
        return {}
    try:
        text = read_lines(path)
    except OSError as error:
        raise CorpusError(f"cannot read {path}: {error.strerror or error}") from None
    fields = {n: line.split(maxsplit=3) for n, line in text.numbered() if line.strip()}
    problems.extend(text.problems({n: f[0] for n, f in fields.items()}))
    return {f[0]: f[2] for f in fields.values() if len(f) >= 3}


def speaker_problems(
    name: str, root: Path, keys: list[str], speakers: dict[str, str]
) -> list[Problem]:
    """One problem for speakers the stm should name and does not; keys of a corpus whose
    keys name speakers are checked by the tests of its pattern, not here."""
    corpus = corpus_of(name)
    if not isinstance(corpus.speakers, FromStm):
        return []
    if not speakers:
        return [Problem(name, f"no {root / STM}: the speakers of {corpus.title} are unknown")]
    unnamed = [key for key in keys if key not in speakers]
    if not unnamed:
        return []
    shown = ", ".join(unnamed[:5]) + (f" and {len(unnamed) - 5} more" if len(unnamed) > 5 else "")
    return [Problem(name, f"{root / STM} names no speaker for {shown}: {UNKNOWN}")]


SIDES = ("train", "valid", "test")
FOUR = ("Neutral", "Happy", "Sad", "Angry")


def label_sets(labels: Sequence[str]) -> dict[str, LabelSet]:
    """`all`: the class names found; `4`: Neutral, Happy, Sad, Angry (track2's four)."""
    found = tuple(sorted(set(labels)))
    return {
        "all": LabelSet("all", found, {c: c for c in found}),
        "4": LabelSet("4", FOUR, {c: c for c in FOUR if c in found}),
    }


def emobox_corpus(name: str) -> str | None:
    """EmoBox's name of a corpus (its data folder's, a key of `CORPORA`): a ser corpus
    kind ("crema-d"), a table title ("MSP-Podcast"), EmoBox's own ("cremad") or an EmoBox
    store's ("emobox:cremad", "emobox-cremad"); None for a corpus EmoBox lacks.

    >>> emobox_corpus("crema-d"), emobox_corpus("msp-podcast"), emobox_corpus("emobox:esd")
    ('cremad', 'msppodcast', 'esd')
    >>> emobox_corpus("manifest") is None
    True
    """
    folded = re.sub(r"[^a-z0-9]", "", name.lower())  # "CREMA-D" and "crema-d": "cremad"
    if folded in CORPORA:
        return folded
    rest = folded.removeprefix("emobox")
    return rest if rest != folded and rest in CORPORA else None
