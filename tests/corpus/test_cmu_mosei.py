"""CMU-MOSI and CMU-MOSEI read as corpus kinds from the SDK's layout (the synthetic
corpora): segments as spans of the full-video wavs, their scores as manifest columns, the
standard folds, problems that name their file, and features of a span equal to those of
the same samples cut to a file."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from ser.cache import FeatureStore
from ser.cli import main
from ser.corpus.kinds import cmu_sdk
from ser.corpus.kinds.cmu_mosei import AUDIO_DIR
from ser.corpus.protocols.folds import FoldData
from ser.corpus.registry import KINDS, read_corpus
from ser.synth.cmu import CmuConfig, CmuTruth, write_cmu


@pytest.fixture(scope="module")
def mosei(tmp_path_factory: pytest.TempPathFactory) -> CmuTruth:
    return write_cmu(tmp_path_factory.mktemp("cmu") / "MOSEI", CmuConfig(videos=(3, 1, 2)))


def test_a_mosei_root_reads_as_its_segments(mosei: CmuTruth) -> None:
    kind, reading = read_corpus(mosei.root)
    assert kind.name == "cmu-mosei"
    by_id = {u.utt_id: u for u in reading.utterances}
    (missing,) = mosei.untranscribed
    video = missing.rsplit("_", 1)[0]
    kept = {i for i in by_id if not i.startswith(f"{video}_row")}
    assert kept == set(mosei.scores) - {missing}
    (problem,) = reading.problems
    assert "no transcript line" in problem.problem and f"{video}.txt" in problem.problem
    for utt_id in kept:
        u = by_id[utt_id]
        assert u.speaker == u.dialog == utt_id.rsplit("_", 1)[0]
        assert u.wav_path == mosei.root / AUDIO_DIR / f"{u.dialog}.wav"
        assert u.span is not None and u.duration == pytest.approx(u.span[1] - u.span[0], abs=1e-3)
        scores = dict(u.scores)
        assert scores["sentiment"] == pytest.approx(mosei.scores[utt_id])
        assert tuple(scores[e] for e in cmu_sdk.EMOTIONS) == pytest.approx(
            mosei.intensities[utt_id]
        )
        assert u.transcript  # its line's text
    orders = [u.order for u in reading.utterances if u.dialog == video]
    assert sorted(orders) == list(range(len(orders)))


def test_a_mosi_root_is_told_from_a_mosei_one(tmp_path: Path) -> None:
    truth = write_cmu(tmp_path / "MOSI", CmuConfig("cmu-mosi", videos=(2, 1, 1), labels="csv"))
    kind, reading = read_corpus(truth.root)
    assert kind.name == "cmu-mosi"
    assert {n for u in reading.utterances for n, _ in u.scores} == {"sentiment"}


def test_the_standard_folds_keep_each_video_on_one_side(mosei: CmuTruth) -> None:
    kind, reading = read_corpus(mosei.root)
    protocol = kind.parse_protocol(kind.protocol)
    assert protocol.name == "standard"
    columns = {
        "speaker": np.array([u.speaker for u in reading.utterances]),
        "split": np.array([u.group("split") for u in reading.utterances]),
    }
    data = FoldData(np.zeros(len(videos := columns["speaker"]), np.int64), videos,
                    {"split": columns["split"]})  # fmt: skip
    (split,) = protocol.splits(data, "session", 0)
    sides = [set(videos[rows].tolist()) for rows in (split.train, split.val, split.test)]
    assert sides[0].isdisjoint(sides[1]) and sides[0].isdisjoint(sides[2])
    want = {fold: {v for v, f in mosei.folds.items() if f == fold} for fold in cmu_sdk.FOLDS}
    assert sides == [want["train"], want["valid"], want["test"]]


def test_a_missing_video_wav_is_a_problem_naming_it(tmp_path: Path) -> None:
    truth = write_cmu(tmp_path / "M", CmuConfig(videos=(2, 0, 1)))
    gone = next(iter(truth.folds))
    (truth.root / AUDIO_DIR / f"{gone}.wav").unlink()
    _, reading = read_corpus(truth.root, "cmu-mosei")
    mine = [p.problem for p in reading.problems if p.utt_id.startswith(gone)]
    assert mine and all(f"{gone}.wav" in p for p in mine if "wav missing" in p)
    assert sum("wav missing" in p for p in mine) == sum(s.startswith(gone) for s in truth.scores)


@pytest.mark.slow
def test_a_span_extracts_as_the_same_samples_cut_to_a_file(tmp_path: Path, mosei: CmuTruth) -> None:
    runner = CliRunner()
    spans = tmp_path / "spans.zarr"
    result = runner.invoke(main, ["extract", str(mosei.root), "--store", str(spans),
                                  "--features", "logmel", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    store = FeatureStore.open(spans)
    manifest = store.manifest.columns()
    assert np.allclose(manifest["sentiment"][:3], [mosei.scores.get(u, np.nan) for u in
                       manifest["utt_id"][:3].tolist()], equal_nan=True)  # fmt: skip
    cut = tmp_path / "cut"
    cut.mkdir()
    rows = []
    for n, utt_id in enumerate(manifest["utt_id"][:4].tolist()):
        first, last = (round(manifest[c][n] * 16000) for c in ("span_start", "span_end"))
        wav = mosei.root / str(manifest["wav"][n])
        samples, rate = soundfile.read(wav, start=first, stop=last, dtype="float32")
        soundfile.write(cut / f"{utt_id}.wav", samples, rate)
        rows.append({"utt_id": utt_id, "wav": f"{utt_id}.wav", "label": "neu", "speaker": "s"})
    with (cut / "manifest.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, ["utt_id", "wav", "label", "speaker"])
        writer.writeheader()
        writer.writerows(rows)
    files = tmp_path / "files.zarr"
    result = runner.invoke(main, ["extract", str(cut / "manifest.csv"), "--store", str(files),
                                  "--features", "logmel", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    a, b = FeatureStore.open(spans), FeatureStore.open(files)
    (name,) = a.feature_sets()
    sets = a.read(name), b.read(name)
    for row in rows:
        got = [
            s.utterance(st.manifest.index(row["utt_id"]))
            for s, st in zip(sets, (a, b), strict=True)
        ]
        assert len(got[0]) > 0
        np.testing.assert_array_equal(got[0], got[1])
    assert "cmu-mosei" in KINDS


def test_sentiment_names_the_score_on_cmu_corpora_and_the_classes_elsewhere() -> None:
    for kind in ("cmu-mosi", "cmu-mosei"):
        assert KINDS[kind].target("sentiment+emotions") == "sentiment-score+emotions"
    assert KINDS["meld"].target("emotion+sentiment") == "emotion+sentiment"
