"""A new corpus kind is one file and one registration line, with a protocol and a
synthetic writer of its own: this file is that file, and edits no other. `studio` (a
made-up layout: `takes.csv` and `wav/<take>.wav`, each take recorded in a room) reads
into `Utterance` records with a `room` group, offers a `held-room:<ROOM>` protocol (that
room tested, the others trained, the next validating) as its default, and writes a
synthetic copy of itself with the toolkit `ser demo-corpus` hands it. Registered, it is
a `ser demo-corpus --layout`, summarised, extracted, trained on and reported end to end,
in `ser train --help`, and the docs check asks for its row in docs/corpora.md."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from ser.cache import FeatureStore
from ser.cli import main
from ser.corpus.kind import Synthetic, Toolkit, Written
from ser.corpus.kinds.flat import label_sets, pick, read_records
from ser.corpus.labels import LabelSet
from ser.corpus.protocols.folds import FoldData, Protocol, Split
from ser.corpus.records import CorpusReading, Problem, Utterance
from ser.corpus.registry import KINDS, CorpusKind, register
from ser.errors import ConfigError, CorpusError
from tests.test_docs import undocumented_kinds

# --- the kind's file ----------------------------------------------------------------

TAKES = "takes.csv"
SETS: dict[str, LabelSet] = label_sets(("neu", "hap", "sad", "ang"), "four")


def detect(root: Path) -> bool:
    return (root / TAKES).is_file()


def signature(root: Path) -> list[Path]:
    return [p for p in (root / TAKES, root / "wav") if p.exists()]


def read(root: Path, classes: str) -> CorpusReading:
    if not detect(root):
        raise CorpusError(f"{root} is not a studio root: no {TAKES}")
    with (root / TAKES).open(newline="") as file:
        rows = list(csv.DictReader(file))
    takes = [
        Utterance(r["take"], root / "wav" / f"{r['take']}.wav", r["emotion"], r["speaker"],
                  groups=(("room", r["room"]),))
        for r in rows
    ]  # fmt: skip
    problems: list[Problem] = []
    return read_records(root, takes, pick(SETS, classes, "studio"), problems)


@dataclass(frozen=True)
class HeldRoom(Protocol):
    """`held-room:<ROOM>`: ROOM's takes tested, the next room (in sorted order, cyclically)
    validates, the others train; speaker-independent when no speaker left a room."""

    spec: str
    room: str
    name = "held-room"
    usage = "held-room:<ROOM>"
    unit = "room"

    @classmethod
    def parse(cls, spec: str, options: str) -> HeldRoom:
        if not options:
            raise ConfigError(f"protocol {spec!r}: write {cls.usage}")
        return cls(spec, options)

    def fold_count(self, columns: Mapping[str, np.ndarray]) -> int:
        return 1

    def splits(self, data: FoldData, val: str, seed: int) -> list[Split]:
        rooms = data.group("room").astype(str)
        found = sorted(set(rooms.tolist()))
        if self.room not in found:
            raise ConfigError(f"protocol {self.spec!r}: no room {self.room}; rooms: {found}")
        held = found[(found.index(self.room) + 1) % len(found)]
        rows = np.arange(len(rooms))
        test, rest = rows[rooms == self.room], rows[rooms != self.room]
        validation = rest[rooms[rest] == held] if val == "next-group" else rest[:0]
        train = np.setdiff1d(rest, validation)
        alone = not set(data.speakers[test]) & set(data.speakers[rest])
        return [Split(f"room={self.room}", train, validation, test, (self.room,), (held,), alone)]


def write(root: Path, seed: int, kit: Toolkit, options: Mapping[str, Any]) -> Written:
    """3 rooms x 2 speakers of their own x 4 emotions x 3 takes of ~0.5 s, the speech
    `kit`'s (`ser.synth` passes it in: a kind's module may not import it)."""
    (kit.new_root(root) / "wav").mkdir()
    rng = np.random.default_rng(seed)
    rows: list[Sequence[str]] = [("take", "speaker", "room", "emotion")]
    for r, room in enumerate("abc"):
        for s in range(2):
            speaker, gender = f"{room}{s}", "FM"[s]
            voice = kit.voice(seed, 2 * r + s, gender)
            for emotion in ("neu", "hap", "sad", "ang"):
                for k in range(3):
                    take = f"{speaker}_{emotion}_{k}"
                    kit.write_wav(root / "wav" / f"{take}.wav", rng, voice, emotion, (0.4, 0.6))
                    rows.append((take, speaker, room, emotion))
    with (root / TAKES).open("w", newline="") as file:
        csv.writer(file).writerows(rows)
    return Written(root, len(rows) - 1, 6)


def kind() -> CorpusKind:
    return CorpusKind(
        "studio", "Studio", f"{TAKES}, wav/<take>.wav", read, detect, signature,
        lambda labels: SETS, "held-room:c", groups=("room",), own=(HeldRoom,), by=("room",),
        synthetic=Synthetic(write),
    )  # fmt: skip


# --- the test -----------------------------------------------------------------------


@pytest.fixture
def studio() -> Iterator[CorpusKind]:
    yield register(kind())  # the one registration line (a kind's module ends with it)
    del KINDS["studio"]


def ser(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.mark.slow
def test_a_new_kind_reads_extracts_trains_and_reports(studio: CorpusKind, tmp_path: Path) -> None:
    root, store = tmp_path / "studio", tmp_path / "f.zarr"
    code, shown = ser("demo-corpus", root, "--layout", "studio")
    assert code == 0 and "wrote 72 utterances of 6 speakers in the studio layout" in shown, shown
    code, shown = ser("corpus", "summary", root, "--classes", "4", "--json")
    assert code == 0, shown
    assert json.loads(shown)["per_room"] == {r: dict.fromkeys(("neu", "hap", "sad", "ang"), 6)
                                             for r in "abc"}  # fmt: skip
    code, shown = ser("extract", root, "--store", store, "--features", "logmel", "--quiet")
    assert code == 0, shown
    corpus = FeatureStore.open(store).corpus  # the store hands out its kind
    assert corpus.kind is studio and corpus.columns["room"].tolist().count("a") == 24
    assert corpus.fold_count("held-room:c") == 1
    out = tmp_path / "runs"
    code, shown = ser("train", "--store", store, "--features", "logmel", "--fusion", "none",
                      "--epochs", "2", "--batch-size", "8", "--out", out, "--json")  # fmt: skip
    assert code == 0, shown
    record = json.loads((out / "logmel_none_held-room:c_c4" / "run.json").read_text())
    (fold,) = record["folds"]
    assert record["protocol"] == "held-room:c" and record["speaker_independent"]
    assert (fold["fold"], fold["test_groups"], fold["val_groups"]) == ("room=c", ["c"], ["a"])
    assert fold["sizes"] == {"train": 24, "val": 24, "test": 24} and fold["group"] == "room"
    code, shown = ser("report", out / "logmel_none_held-room:c_c4")
    assert code == 0 and "held-room:c" in shown, shown
    # Its protocol is its own: another kind does not offer it, and it offers every kind's.
    code, shown = ser("train", "--store", store, "--features", "logmel", "--fusion", "none",
                      "--protocol", "loso", "--out", out)  # fmt: skip
    assert code == 2 and "Studio has no protocol 'loso': choose held-room:<ROOM>" in shown
    with pytest.raises(ConfigError, match="IEMOCAP has no protocol 'held-room:a'"):
        KINDS["iemocap"].parse_protocol("held-room:a")
    assert str(studio.parse_protocol("logo:room")) == "logo:room"


def test_a_new_kind_is_listed_wherever_kinds_are(studio: CorpusKind, tmp_path: Path) -> None:
    """Every list of kinds is made from the registry: the new one is in each, no file but
    this one edited; and the docs check finds the page has no row for it yet."""
    code, shown = ser("demo-corpus", "--help")
    assert code == 0 and "studio" in shown, shown
    code, shown = ser("corpus", "summary", "--help")
    assert code == 0 and "studio" in shown, shown  # --corpus's choices
    code, shown = ser("train", "--help")
    assert code == 0, shown
    unwrapped = "".join(shown.split())  # click wraps lines at spaces and hyphens
    assert "studioheld-room:<ROOM>" in unwrapped  # --protocol's own
    assert "studioheld-room:c" in unwrapped  # and its default
    code, shown = ser(
        "demo-corpus", tmp_path / "x", "--layout", "studio", "--dialogs-per-session", "2"
    )
    assert code == 2 and "--dialogs-per-session is IEMOCAP's: not for --layout studio" in shown
    page = (Path(__file__).parents[2] / "docs" / "corpora.md").read_text(encoding="utf-8")
    assert undocumented_kinds(page) == ["studio"]
