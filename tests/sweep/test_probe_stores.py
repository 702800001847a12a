"""`ser sweep probe --store A --store B`: every layer of each store's encoders probed on its
own store, on its corpus's default protocol, and the report's section per corpus with
EmoBox's numbers of that corpus beside an encoder whose checkpoint EmoBox benchmarks.

The stores are extracted from synthetic corpora of two kinds with tiny random encoders:
one saved in a folder named as EmoBox's WavLM large checkpoint (what its sets record as
their model, so it matches), the tiny HuBERT (which EmoBox has not)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ser.cli import main
from ser.sweep.cells import resolve_cells
from ser.sweep.spec import load_spec

TINY = ("--fix", "epochs=2", "--fix", "seeds=1", "--fix", "batch-size=16")


def ser(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def stores(
    synthetic_corpus: Any, crema_d_corpus: Any, tiny_models: Any, tmp_path_factory: Any
) -> tuple[Path, Path]:
    """An IEMOCAP and a CREMA-D store, each with every layer of both tiny encoders, pooled."""
    from ser.synth.tiny import save_tiny_speech

    tmp = tmp_path_factory.mktemp("probe_stores")
    wavlm = save_tiny_speech(tmp / "models" / "wavlm-large", "wavlm")
    paths = (tmp / "iemocap.zarr", tmp / "crema.zarr")
    for root, store in zip((synthetic_corpus[0], crema_d_corpus.root), paths, strict=True):
        result = ser("extract", root, "--store", store, "--features", "hubert,speech",
                     "--hubert-model", tiny_models.hubert, "--speech-model", wavlm,
                     "--layers", "all", "--pool", "mean", "--device", "cpu", "--quiet")  # fmt: skip
        # Synthetic CREMA-D's empty wav, as CREMA-D has one: the store is complete without it.
        empty = root == crema_d_corpus.root and "1 utterance(s) could not be extracted" in (
            result.output
        )
        assert result.exit_code == (1 if empty else 0), result.output
    return paths


@pytest.mark.slow
def test_each_store_s_rows_train_on_it_alone(stores: tuple[Path, Path], tmp_path: Path) -> None:
    iemocap, crema = (str(p) for p in stores)
    spec = load_spec("probe", store=[iemocap, crema], params={"weighted-sum": "no"})
    cells = resolve_cells(spec.cells, [iemocap, crema], tmp_path)
    assert len(cells) == len(spec.cells) == 2 * 2 * 3  # stores x encoders x layers 0-2
    on = {(c.cell.label, c.store.corpus) for c in cells}
    assert ("wavlm-large L2", "iemocap") in on and ("wavlm-large L2", "crema-d") in on
    assert all(c.store.path == c.cell.row.store for c in cells)
    protocols = {c.store.corpus: c.resolved["protocol"] for c in cells}
    assert protocols == {"iemocap": "loso", "crema-d": "speaker-kfold"}  # each corpus's own
    published = {(c.cell.label, c.store.corpus): dict(c.cell.row.published) for c in cells}
    assert published[("wavlm-large L0", "crema-d")] == {"ua": 74.50, "wa": 74.32, "f1": 74.39}
    assert published[("wavlm-large L0", "iemocap")]["superb_wa"] == 70.0
    assert published[("tiny-hubert L0", "iemocap")] == {}


@pytest.mark.slow
def test_the_report_puts_emobox_s_numbers_of_each_corpus_beside_ours(
    stores: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "probe"
    given = ("--store", stores[0], "--store", stores[1], "--out", out)
    args = ("sweep", "probe", *given, "--set", "weighted-sum=no", *TINY)
    dry = ser(*args, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "12 cells: 0 finished, 12 to train (dry run):" in dry.output
    assert "probe  wavlm-large L1  on CREMA-D (classes 4)" in dry.output
    result = ser(*args)
    assert result.exit_code == 0, result.output
    report = ser("report", out, "--plots", tmp_path / "plots")
    assert report.exit_code == 0, report.output
    sections = {part.split("\n")[0]: part for part in report.output.split("\n### ")[1:]}
    assert list(sections) == ["IEMOCAP", "CREMA-D"]
    iemocap, crema = sections["IEMOCAP"], sections["CREMA-D"]
    assert "Ours: loso (speaker-independent)" in iemocap
    assert "EmoBox: its iemocap numbers" in iemocap and "ours on loso: another split" in iemocap
    assert "| WavLM large | 70.00 | 69.47 | 69.07 | 69.29 |" in iemocap
    assert "Ours: speaker-kfold (speaker-independent)" in crema
    assert "EmoBox: its cremad numbers" in crema
    assert "| WavLM large | - | 74.50 | 74.32 | 74.39 |" in crema
    for section in (iemocap, crema):
        assert "| wavlm-large | 2 " in section and "| tiny-hubert | 0 " in section
        assert "| none (EmoBox has no " in section and "tiny-hubert) | - | - | - | - |" in section
        assert section.count(" (best) |") == 2  # one best layer per encoder
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert plots == ["probe_probe_CREMA-D.png", "probe_probe_IEMOCAP.png"]
    csv = ser("report", out, "--format", "csv").output.splitlines()
    assert any(line.endswith(",74.5,74.32,CREMA-D") for line in csv)  # its own numbers


@pytest.mark.slow
def test_an_emobox_store_is_probed_on_emobox_s_folds_and_class_set(
    tiny_models: Any, tmp_path: Path
) -> None:
    """The leaderboard's way: a store of an EmoBox corpus probes on its `emobox` folds and
    its whole class set, so EmoBox's numbers of that corpus stand beside ours as like for
    like ("ours on its folds too")."""
    from ser.synth.emobox import EmoBoxConfig, write_emobox
    from ser.synth.tiny import save_tiny_speech

    truth = write_emobox(tmp_path / "EmoBox", EmoBoxConfig(("savee",), speakers=4, track2=()))
    wavlm = save_tiny_speech(tmp_path / "models" / "wavlm-large", "wavlm")
    store = tmp_path / "savee.zarr"
    result = ser("extract", truth.folder("savee"), "--corpus", "emobox", "--store", store,
                 "--features", "speech", "--speech-model", wavlm, "--layers", "0,1",
                 "--pool", "mean", "--device", "cpu", "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    out = tmp_path / "probe"
    args = ("sweep", "probe", "--store", store, "--out", out, "--set", "weighted-sum=no", *TINY)
    run = ser(*args)
    assert run.exit_code == 0, run.output
    report = ser("report", out)
    assert report.exit_code == 0, report.output
    assert "Ours: emobox" in report.output and "ours on its folds too" in report.output
    assert "EmoBox: its savee numbers" in report.output
    assert "### savee (EmoBox)" in report.output  # the corpus, not the collection alone
    classes = sorted({name for name, _ in truth.files["savee"].values()})
    assert f"{len(classes)} classes ({', '.join(classes)})" in report.output  # EmoBox's set
