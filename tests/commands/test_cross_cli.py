"""`ser train --test-store` and `ser report` of a folder of runs with cross-corpus ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ser.cli import main
from tests.stores import corpus_store

SMALL = ["--features", "is13", "--fusion", "none", "--epochs", "2", "--seeds", "1",
         "--batch-size", "8", "--device", "cpu"]  # fmt: skip


@pytest.mark.slow
def test_train_across_and_report_the_folder(tmp_path: Path) -> None:
    a, b = tmp_path / "iemocap.zarr", tmp_path / "crema-d.zarr"
    corpus_store(a, "iemocap", ["neu", "hap", "sad", "ang"] * 10)
    corpus_store(b, "crema-d", ["neu", "hap", "sad", "ang", "fea"] * 8)
    runs = tmp_path / "runs"
    trained = CliRunner().invoke(
        main, ["train", "--store", str(a), "--test-store", str(b), "--out", str(runs), *SMALL]
    )
    assert trained.exit_code == 0, trained.output
    assert "cross-corpus: train IEMOCAP" in trained.output
    assert "dropped from CREMA-D, labels outside class set 4: fea 8" in trained.output
    own = CliRunner().invoke(main, ["train", "--store", str(a), "--out", str(runs), *SMALL])
    assert own.exit_code == 0, own.output
    plots = tmp_path / "plots"
    report = CliRunner().invoke(main, ["report", str(runs), "--plots", str(plots)])
    assert report.exit_code == 0, report.output
    assert "cross: IEMOCAP -> CREMA-D" in report.output  # the run's row
    assert "| train \\ test | IEMOCAP | CREMA-D |" in report.output  # the diagonal: its loso run
    assert (plots / "runs_cross.png").is_file()
    refused = CliRunner().invoke(main, ["train", "--store", str(a), "--test-store", str(a), *SMALL])
    assert refused.exit_code == 2 and "a corpus is tested on itself" in refused.output


def test_an_emobox_test_set_stands_beside_emobox_s_number(tmp_path: Path) -> None:
    """Trained on IEMOCAP, tested on a store of EmoBox's MELD track-2 set (class names,
    not codes), the features of the checkpoint EmoBox calls WavLM large: its Table 5
    accuracy stands beside ours."""
    wavlm = {"wavlm-large.L12.mean": ("speech", "audio", "utterance", 7, "float16")}
    a, b = tmp_path / "iemocap.zarr", tmp_path / "track2.zarr"
    corpus_store(a, "iemocap", ["neu", "hap", "exc", "sad", "ang"] * 8, sets=wavlm,
                 model="microsoft/wavlm-large")  # fmt: skip
    corpus_store(b, "emobox", ["Neutral", "Happy", "Sad", "Angry"] * 6, sets=wavlm,
                 model="microsoft/wavlm-large", dataset="meld")  # fmt: skip
    args = ["--features", "wavlm-large.L12.mean", *SMALL[2:]]
    runs = tmp_path / "runs"
    trained = CliRunner().invoke(
        main, ["train", "--store", str(a), "--test-store", str(b), "--out", str(runs), *args]
    )
    assert trained.exit_code == 0, trained.output
    assert "classes by emotion: neu=neutral, hap=happy, sad=sad, ang=angry" in trained.output
    report = CliRunner().invoke(main, ["report", str(runs)])
    assert "| IEMOCAP |" in report.output and "; EmoBox 39.06 |" in report.output


@pytest.mark.slow
def test_a_test_store_of_the_training_audio_is_refused_unless_allow_overlap(
    tmp_path: Path,
) -> None:
    """EmoBox's IEMOCAP folder holds IEMOCAP's recordings: its store's audio prints are
    the IEMOCAP store's, which the manifests' utterance ids and labels do not show."""
    from ser.cache import FeatureStore
    from ser.cache.manifest import AUDIO_PRINT

    a, b = tmp_path / "iemocap.zarr", tmp_path / "emobox.zarr"
    corpus_store(a, "iemocap", ["neu", "hap", "sad", "ang"] * 6)
    corpus_store(b, "emobox", ["Neutral", "Happy", "Sad", "Angry"] * 6, dataset="iemocap")
    for path in (a, b):
        FeatureStore.open(path, "a").add_derived_column(AUDIO_PRINT, [f"p{i}" for i in range(24)])
    runs = tmp_path / "runs"
    args = ["train", "--store", str(a), "--test-store", str(b), "--out", str(runs), *SMALL]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    (line,) = [x for x in refused.output.splitlines() if "--allow-overlap" in x]
    assert f"--test-store {b}: 24 of its 24 test utterances (100.0 %)" in line
    assert not runs.exists()
    allowed = CliRunner().invoke(main, [*args, "--allow-overlap"])
    assert allowed.exit_code == 0, allowed.output
    assert "test audio seen in training: 24 of 24 test utterances (100.0 %)" in allowed.output
    report = CliRunner().invoke(main, ["report", str(runs)])
    assert "test audio seen in training" in report.output
    assert "24/24 (100.0 %) allowed" in report.output
