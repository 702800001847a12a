"""CMU-MOSI and CMU-MOSEI files as the SDK publishes them: the standard folds shipped with
ser, the `.csd` labels and their CSV export, the segmented transcripts, and the label rows
matched to transcript segments, on the synthetic corpora."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ser.corpus.kinds import cmu_sdk
from ser.errors import CorpusError
from ser.synth.cmu import LABEL_FILES, TRANSCRIPT_DIR, CmuConfig, write_cmu


@pytest.mark.parametrize(
    ("corpus", "counts"), [("cmu-mosei", (2249, 300, 678)), ("cmu-mosi", (52, 10, 31))]
)
def test_the_standard_folds_are_the_sdks(corpus: str, counts: tuple[int, int, int]) -> None:
    folds = cmu_sdk.standard_folds(corpus)
    assert tuple(len(folds.videos[f]) for f in cmu_sdk.FOLDS) == counts
    assert len(folds.fold_of()) == sum(counts)  # no video in two folds
    assert "CMU-MultimodalSDK" in folds.source and folds.source.endswith("_std_folds.py")
    assert folds.licence.startswith("MIT")


@pytest.mark.parametrize("labels", ["csd", "csv"])
def test_mosei_labels_read_back_as_written(tmp_path: Path, labels: str) -> None:
    truth = write_cmu(tmp_path / "MOSEI", CmuConfig(videos=(2, 1, 1), labels=labels))
    path = truth.root / (LABEL_FILES["cmu-mosei"] if labels == "csd" else "labels.csv")
    read = cmu_sdk.read_labels(path, [])
    assert set(read) == set(truth.folds)
    got = {}
    for video, rows in read.items():
        assert rows.columns == cmu_sdk.MOSEI_COLUMNS
        segments = cmu_sdk.read_transcript(truth.root / TRANSCRIPT_DIR / f"{video}.txt", [])
        for segment, values in zip(cmu_sdk.match(rows, segments), rows.values, strict=True):
            if segment is not None:
                got[f"{video}_{segment.segment}"] = values
    assert set(got) == set(truth.scores) - set(truth.untranscribed)
    for utt_id, values in got.items():
        assert values[0] == pytest.approx(truth.scores[utt_id])
        np.testing.assert_allclose(values[1:], truth.intensities[utt_id])


def test_the_synthetic_corpus_uses_the_real_fold_ids(tmp_path: Path) -> None:
    truth = write_cmu(tmp_path / "MOSI", CmuConfig("cmu-mosi", videos=(3, 1, 2)))
    standard = cmu_sdk.standard_folds("cmu-mosi").fold_of()
    assert {v: standard[v] for v in truth.folds} == truth.folds
    assert sorted(truth.folds.values()) == ["test", "test", "train", "train", "train", "valid"]
    rows = cmu_sdk.read_labels(truth.root / LABEL_FILES["cmu-mosi"], [])
    assert {r.columns for r in rows.values()} == {("sentiment",)}


def test_a_label_row_without_its_transcript_line_matches_nothing(tmp_path: Path) -> None:
    truth = write_cmu(tmp_path / "MOSEI", CmuConfig(videos=(1, 0, 0)))
    (video,) = truth.folds
    rows = cmu_sdk.read_labels(truth.root / LABEL_FILES["cmu-mosei"], [])[video]
    matched = cmu_sdk.match(
        rows, cmu_sdk.read_transcript(truth.root / TRANSCRIPT_DIR / f"{video}.txt", [])
    )
    assert matched[-1] is None and all(s is not None for s in matched[:-1])
    assert truth.untranscribed == (f"{video}_{len(matched)}",)


def test_bad_files_are_one_error_naming_them(tmp_path: Path) -> None:
    bad_line = tmp_path / "v.txt"
    bad_line.write_text("v___1___0.0___1.0___fine\nv___2___x___2.0___oops\n")
    with pytest.raises(CorpusError, match=r"v\.txt, line 2: start/end are not seconds"):
        cmu_sdk.read_transcript(bad_line, [])
    backwards = tmp_path / "w.txt"
    backwards.write_text("w___1___3.0___1.0___text\n")
    with pytest.raises(CorpusError, match=r"w\.txt, line 1: segment 3\.0-1\.0 s is not a span"):
        cmu_sdk.read_transcript(backwards, [])
    not_hdf5 = tmp_path / "labels.csd"
    not_hdf5.write_bytes(b"not hdf5 at all")
    with pytest.raises(
        CorpusError, match=r"labels\.csd: the labels file is damaged \(not a readable HDF5"
    ):
        cmu_sdk.read_labels(not_hdf5, [])
    no_columns = tmp_path / "labels.csv"
    no_columns.write_text("video,begin,end,score\nv,0,1,2\n")
    with pytest.raises(CorpusError, match=r"labels\.csv: a label CSV needs the columns"):
        cmu_sdk.read_labels(no_columns, [])
