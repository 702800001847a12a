"""Which published numbers a probe row gets (`ser.sweep.probe_published`): its encoder by
the checkpoint its sets record, its store's corpus by kind or `dataset` group."""

from __future__ import annotations

from pathlib import Path

from ser.cache.manifest import Manifest
from ser.cache.store import FeatureStore
from ser.corpus.registry import KINDS
from ser.sweep.probe_published import Match, match
from ser.synth.manifest import example_columns
from tests.stores import labelled_store


def dataset_store(path: Path, datasets: list[str]) -> FeatureStore:
    """A manifest-kind store whose utterances carry a `dataset` group, as EmoBox's do."""
    ids = [f"Ses01F_impro01_F{i:03d}" for i in range(len(datasets))]
    columns = {**example_columns(ids), "dataset": datasets}
    return FeatureStore.create(path, Manifest.from_columns(columns), KINDS["manifest"].attrs())


def test_a_store_s_corpus_by_its_kind_else_its_one_dataset(tmp_path: Path) -> None:
    assert labelled_store(tmp_path / "i.zarr", {}).corpus.emobox == "iemocap"
    crema = labelled_store(tmp_path / "c.zarr", {}, attrs=KINDS["crema-d"].attrs())
    assert crema.corpus.emobox == "cremad"
    assert dataset_store(tmp_path / "t.zarr", ["tess"] * 3).corpus.emobox == "tess"
    assert dataset_store(tmp_path / "m.zarr", ["tess", "esd"]).corpus.emobox is None  # two
    assert dataset_store(tmp_path / "x.zarr", ["mine"] * 2).corpus.emobox is None


def test_an_encoder_by_the_checkpoint_its_sets_record_else_its_stem(tmp_path: Path) -> None:
    store = labelled_store(tmp_path / "i.zarr", {})
    # The recorded hub id decides; a stem renamed with --name does not.
    assert match(store, "my-name", "microsoft/wavlm-large") == Match(
        "microsoft/wavlm-large", "WavLM large", "iemocap"
    )
    assert match(store, "wavlm-large", "microsoft/wavlm-base-plus").model is None
    assert match(store, "hubert-large-ll60k", None).model == "HuBERT large"  # no model recorded


def test_superb_s_numbers_on_iemocap_emobox_s_on_each_corpus() -> None:
    on_iemocap = Match("microsoft/wavlm-large", "WavLM large", "iemocap").published()
    assert on_iemocap == {"ua": 69.47, "wa": 69.07, "f1": 69.29, "superb_wa": 70.0}
    on_tess = Match("microsoft/wavlm-large", "WavLM large", "tess").published()
    assert on_tess == {"ua": 99.78, "wa": 99.78, "f1": 99.78}
    assert Match("x", None, "tess").published() == {}
    assert Match("openai/whisper-large-v3", "Whisper large v3", None).published() == {}
    assert Match("x", None, None).meta() == {
        "matched_by": "x",
        "emobox_model": None,
        "emobox_corpus": None,
    }
