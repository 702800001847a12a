"""How each of EmoBox's 32 corpora names its lines (made up in their shapes, not copied):
a few `emo` codes and their class names, the key (less `<name>-`) and wav path (under
`downloads/<name>/`) of speaker n's take t of a code, and the speaker ser must read from
them (`SHAPES`), for the synthetic EmoBox folders (`ser.synth.emobox`) and the tests of
every corpus's speaker rule.

Templates are `str.format`ted with `n` (the speaker's number from 1), `g` (F for odd n,
M for even; `gl` lower case, `gw` female/male, `gW` W/M), `L` (a two-letter name), `e`
(the code; `eu` upper case, `e1` its first letter upper case; `c` its number from 1),
`t` (the take from 0) and,
in `wav`, `key` (the key less `<name>-`). `speaker`: the speaker's template; "" for a
corpus whose speakers no one names (`Unknown`).

>>> key, wav, speaker = SHAPES["iemocap"].line(2, "exc", 1)
>>> key, speaker, wav.endswith("Ses02F_impro03/Ses02F_impro03_M001.wav")
('Ses02F_impro03_M001', 'Ses02M', True)
"""

from __future__ import annotations

from dataclasses import dataclass

LETTERS = ("DC", "JE", "JK", "KL", "AB", "CD", "EF", "GH")


@dataclass(frozen=True)
class Shape:
    """One corpus's lines (module doc); `stm`: its speakers are named only by EmoBox's
    stm (the writer writes it); `span`: its lines are parts of one file per code."""

    codes: dict[str, str]
    key: str
    wav: str
    speaker: str
    stm: bool = False
    span: bool = False

    def line(self, n: int, code: str, take: int) -> tuple[str, str, str]:
        """(key less `<name>-`, wav under downloads/, speaker) of speaker n's take."""
        g, c = ("F" if n % 2 else "M"), list(self.codes).index(code) + 1
        fields = {
            "n": n, "g": g, "gl": g.lower(), "gw": {"F": "female", "M": "male"}[g],
            "gW": {"F": "W", "M": "M"}[g], "L": letters(n),
            "c": c, "e": code, "eu": code.upper(), "e1": code[:1].upper(), "t": take,
        }  # fmt: skip
        key = self.key.format(**fields)
        return key, self.wav.format(key=key, **fields), self.speaker.format(**fields)


def letters(n: int) -> str:
    """Speaker n's name of capitals (SAVEE's and TESS's shape)."""
    return LETTERS[(n - 1) % len(LETTERS)] + "X" * ((n - 1) // len(LETTERS))


def _shape(codes: str, key: str, wav: str, speaker: str, **flags: bool) -> Shape:
    """`codes`: `code=Name code=Name ...`."""
    pairs = dict(pair.split("=") for pair in codes.split())
    return Shape(pairs, key, wav, speaker, **flags)


SHAPES: dict[str, Shape] = {
    "aesdd": _shape("a=Angry h=Happy s=Sad", "{e}{t:02d}-{n}", "aesdd/{e}/{e}{t:02d} ({n}).wav",
                    "{n}"),
    "ased": _shape("n=Neutral h=Happy a=Angry", "{e}1-0{t}-01-01-{n:02d}", "ased/{e}/{key}.wav",
                   "{n:02d}"),
    "asvpesd": _shape("02=Neutral 03=Happy 05=Angry", "03-01-{e}-01-0{t}-{n:02d}-02-02-01-{t:02d}",
                      "asvpesd/Audio/actor_{n:02d}/{key}.wav", "{n:02d}"),
    "cafe": _shape("c=Angry j=Happy n=Neutral", "{n:02d}-{eu}-1-{t}",
                   "cafe/CaFE_48k/{e}/{n:02d}-{eu}-1-{t}.wav", "{n:02d}"),
    "casia": _shape("neutral=Neutral happy=Happy angry=Angry", "{t}-spk{n}-{e}",
                    "casia/spk{n}/{e}/{t}.wav", "spk{n}"),
    "cremad": _shape("NEU=Neutral HAP=Happy ANG=Angry", "10{n:02d}-S{t}-{e}-XX",
                     "cremad/AudioWAV/10{n:02d}_S{t}_{e}_XX.wav", "10{n:02d}"),
    "emns": _shape("Happy=Happy Sad=Sad Neutral=Neutral", "recorded_audio_{e}{n}x{t}",
                   "emns/cleaned_webm/{key}.webm", "emns"),
    "emodb": _shape("anger=Angry happy=Happy Neutral=Neutral", "{n:02d}a0{t}W{e1}",
                    "emodb/wav/{key}.wav", "{n:02d}"),
    "emovdb": _shape("Amused=Amused Angry=Angry Neutral=Neutral", "spk{n}-{e}-{t:04d}",
                     "emovdb/spk{n}_{e}/{e}_1-20_{t:04d}.wav", "spk{n}"),
    "emovo": _shape("gio=Happy neu=Neutral rab=Angry", "{e}-{gl}{n}-b{t}",
                    "emovo/{gl}{n}/{key}.wav", "{gl}{n}"),
    "emozionalmente": _shape("joy=Happy neutrality=Neutral anger=Angry", "1613{n:03d}{c}{t:04d}",
                             "emozionalmente/audio/{key}.wav", "actor{n}", stm=True),
    "enterface": _shape("an=Angry ha=Happy sa=Sad", "s{n}_{e}_{t}.avi",
                        "enterface/subject {n}/{e}/sentence {t}/{key}", "s{n}"),
    "esd": _shape("Neutral=Neutral Happy=Happy Angry=Angry", "{n:04d}-{c}{t:05d}",
                  "esd/{n:04d}/{e}/{n:04d}_{c}{t:05d}.wav", "{n:04d}"),
    "iemocap": _shape("neu=Neutral hap=Happy exc=Happy ang=Angry sad=Sad",
                      "Ses{n:02d}F_impro0{c}_{g}0{t:02d}",
                      "iemocap/Session{n}/sentences/wav/Ses{n:02d}F_impro0{c}/{key}.wav",
                      "Ses{n:02d}{g}"),
    "jlcorpus": _shape("angry=Angry happy=Happy neutral=Neutral", "{gw}{n}-{e}-{t}a-1",
                       "jlcorpus/Raw JL corpus/JL(wav+txt)/{gw}{n}_{e}_{t}a_1.wav", "{gw}{n}"),
    "m3ed": _shape("Neutral=Neutral Happy=Happy Anger=Angry", "show{n}_{c}_{t}",
                   "m3ed/modality_speech/A_show{n}_{c}_{t}.wav", "show_role{n}", stm=True),
    "mead": _shape("neutral=Neutral angry=Angry happy=Happy", "{gW}0{n:02d}-{e}-level-1-0{t:02d}",
                   "mead/{gW}0{n:02d}/audio/{e}/level_1/0{t:02d}.m4a", "{gW}0{n:02d}"),
    "meld": _shape("neutral=Neutral joy=Happy anger=Angry sadness=Sad", "dia{n}_utt{c}{t}-train",
                   "meld/train/train_splits/dia{n}_utt{c}{t}.mp4", "Character-{n}", stm=True),
    "mer2023": _shape("neutral=Neutral happy=Happy angry=Angry", "sample_0000{n}{c}{t:02d}",
                      "mer2023/mer2023train/train/{key}.avi", ""),
    "mesd": _shape("Anger=Angry Happiness=Happy Neutral=Neutral", "{e}_{g}_A_palabra{n}{t}",
                   "mesd/Mexican Emotional Speech Database (MESD)/{key}.wav", ""),
    "msppodcast": _shape("N=Neutral H=Happy A=Angry S=Sad", "MSP-PODCAST_{n:04d}_{c}{t:03d}",
                         "msppodcast/Audio/{key}.wav", "{n}", stm=True),
    "oreau": _shape("C=Angry J=Happy N=Neutral", "{n:02d}a0{t}{e}a",
                    "oreau/OreauFR_02/{gl}/sess{e}/{key}.wav", "{n:02d}"),
    "pavoque": _shape("angry=Angry neutral=Neutral happy=Happy", "{e}_n{n}{t:03d}-{e}",
                      "pavoque/pavoque-{e}.flac", "pavoque", span=True),
    "polish": _shape("a=Angry n=Neutral s=Fear", "{gl}{n}.{e}_slowo_{t}", "polish/{key}.wav",
                     "{gl}{n}"),
    "ravdess": _shape("Angry=Angry Happy=Happy Neutral=Neutral", "03-01-0{c}-01-01-0{t}-{n:02d}",
                      "ravdess/audio/Actor_{n:02d}/{key}.wav", "{n:02d}"),
    "resd": _shape("anger=Angry happiness=Happy neutral=Neutral", "{n}{t}_{e}_fear_x_{t:03d}.wav",
                   "resd/train/{e}_fear_{n}/{n}{t}_{e}_fear_x_{t:03d}.wav", ""),
    "savee": _shape("a=Angry h=Happy n=Neutral", "{L}-{e}{t:02d}", "savee/{L}_{e}{t:02d}.wav",
                    "{L}"),
    "shemo": _shape("angry=Angry happy=Happy neutral=Neutral", "{g}{n:02d}{e1}{t:02d}",
                    "shemo/{gw}/{key}.wav", "{g}{n:02d}"),
    "subesco": _shape("angry=Angry happy=Happy neutral=Neutral", "{g}_{n:02d}_NAME_S_{t}_{eu}_{t}",
                      "subesco/{key}.wav", "{g}{n:02d}"),
    "tess": _shape("angry=Angry happy=Happy neutral=Neutral", "{L}-word{t}-{e}",
                   "tess/{L}_word{t}_{e}.wav", "{L}"),
    "turevdb": _shape("Angry=Angry Happy=Happy Calm=Calm", "19{n:02d}_sk_kelime{c}{t}.wav",
                      "turevdb/Sound Source/{e}/{key}", "19{n:02d}"),
    "urdu": _shape("A=Angry H=Happy N=Neutral", "S{g}{n}_F{t}_{e}0{t:02d}",
                   "urdu/{e}/{key}.wav", "S{g}{n}"),
}  # fmt: skip
