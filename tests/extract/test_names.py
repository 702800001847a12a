"""Feature set names come from the model's own id, never a cache hash; a load says one line
and refuses a checkpoint that lacks weights the encoder needs."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from ser.cache import FeatureStore
from ser.cache.model_names import set_stem
from ser.errors import ConfigError, ModelError
from ser.extract.registry import build_extractor

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("model", "stem"),
    [  # hub ids keep the names they always had
        ("facebook/hubert-base-ls960", "hubert-base-ls960"),
        ("microsoft/mpnet-base", "mpnet-base"),
        ("bert-base-uncased", "bert-base-uncased"),
    ],
)
def test_hub_ids_keep_their_last_part(model: str, stem: str) -> None:
    assert set_stem(model) == stem


def _copy(model: Path, to: Path) -> Path:
    shutil.copytree(model, to)
    return to


def _record(folder: Path, **entries: str) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **entries}))


def test_a_cache_snapshot_is_named_after_its_repo(tiny_models: Any, tmp_path: Path) -> None:
    cache = tmp_path / "hub" / "models--some-org--tiny-bert-v2" / "snapshots"
    snapshot = _copy(tiny_models.bert, cache / "2f1d4e0c9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d")
    extractor = build_extractor("bert", model=str(snapshot))
    assert [spec.name for spec in extractor.specs()] == ["tiny-bert-v2"]


def test_a_misleading_name_or_path_never_names_a_folder(tiny_models: Any, tmp_path: Path) -> None:
    # A fine-tuned model records the checkpoint it started from: naming it so would give
    # the base model and its descendant one name (all-mpnet-base-v2 as `mpnet-base`).
    folder = _copy(tiny_models.hubert, tmp_path / "hubert-emo-ft")
    _record(folder, _name_or_path="facebook/hubert-large-ll60k", name_or_path="org/other")
    extractor = build_extractor("hubert", model=str(folder), layers="1,2")
    assert [spec.name for spec in extractor.specs()] == ["hubert-emo-ft.L1", "hubert-emo-ft.L2"]


@pytest.mark.parametrize(
    ("path", "stem"),
    [
        ("all-MiniLM-L6-v2/model", "all-MiniLM-L6-v2"),  # a sentence-transformers package
        ("wavlm-emo/checkpoint-500", "wavlm-emo"),
        ("runs/roberta-iemocap/best_model/final", "roberta-iemocap"),
        ("my-bert/0_Transformer", "my-bert"),
        ("exports/3f9c2a1e77d0", "exports"),  # a hash gives way; "exports" is a name
        ("a3f9c2", "a3f9c2"),  # too short to be a hash
        ("model", "model"),  # nothing above it names it: its own name
    ],
)
def test_a_generic_folder_gives_way_to_its_nearest_named_parent(
    path: str, stem: str, tmp_path: Path
) -> None:
    root = tmp_path / "m" if path != "model" else Path("/")
    folder = root / path
    if path != "model":
        folder.mkdir(parents=True)
    assert set_stem(str(folder)) == stem


def test_a_plain_folder_keeps_its_name(tiny_models: Any) -> None:
    assert set_stem(str(tiny_models.mpnet)) == "tiny-mpnet"


def test_name_overrides_and_is_checked(tiny_models: Any) -> None:
    hubert = build_extractor("hubert", model=str(tiny_models.hubert), layers="all", name="ours")
    assert [spec.name for spec in hubert.specs()] == ["ours.L0", "ours.L1", "ours.L2"]
    bert = build_extractor("bert", model=str(tiny_models.bert), name="bert-ft")
    assert [spec.name for spec in bert.specs()] == ["bert-ft"]
    with pytest.raises(ConfigError, match="--name 'a/b'"):
        build_extractor("mpnet", model=str(tiny_models.mpnet), name="a/b")


def _edit_weights(folder: Path, edit: Any) -> None:
    path = folder / "model.safetensors"
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path, metadata={"format": "pt"})


def test_a_missing_encoder_weight_is_an_error_naming_it(tiny_models: Any, tmp_path: Path) -> None:
    folder = _copy(tiny_models.bert, tmp_path / "broken-bert")
    key = "encoder.layer.0.attention.self.query.weight"
    _edit_weights(folder, lambda tensors: tensors.pop(key))
    with pytest.raises(ModelError, match=rf"broken-bert.*lacks 1 weight.*{key}"):
        build_extractor("bert", model=str(folder)).specs()


def test_loading_says_one_line_and_hides_transformers_report(
    tiny_models: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: Any
) -> None:
    # An unexpected pooler weight: transformers would log a multi-line load report.
    folder = _copy(tiny_models.bert, tmp_path / "bert-with-pooler")
    _edit_weights(folder, lambda tensors: tensors.update(p=torch.zeros(2)))
    capsys.readouterr()
    with caplog.at_level(logging.INFO):
        extractor = build_extractor("bert", model=str(folder), precision="fp32")
        extractor.specs()
        extractor.load(CPU)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert not [r for r in caplog.records if r.name.startswith("transformers")]
    line = extractor.loaded()
    assert line == f"loaded bert-with-pooler (last layer, fp32 on cpu) from {folder.resolve()}"


def test_predict_rebuilds_a_renamed_set_by_its_provenance(tiny_models: Any) -> None:
    from ser.predict.features import check_reproduces, options_from_attrs

    hubert = build_extractor("hubert", model=str(tiny_models.hubert), layers="2", name="ours")
    (spec,) = hubert.specs()
    again = build_extractor("hubert", **options_from_attrs(spec.attrs))
    assert (
        spec.name == "ours.L2"
        and check_reproduces(spec.name, spec.attrs, again) == "tiny-hubert.L2"
    )


def test_doctests() -> None:
    import doctest

    import ser.cache.model_names
    import ser.extract.loading
    import ser.runtime.progress

    for module in (ser.cache.model_names, ser.extract.loading, ser.runtime.progress):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_a_failed_load_restores_transformers_logging(tmp_path: Path) -> None:
    from transformers.utils import logging as hf_logging

    from ser.extract.base import load_pretrained

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_warning()
    try:
        with pytest.raises(ConfigError, match="holds no loadable model"):
            from transformers import AutoModel

            load_pretrained(AutoModel.from_pretrained, str(tmp_path), "model")
        assert hf_logging.get_verbosity() == logging.WARNING
    finally:
        hf_logging.set_verbosity(before)


@pytest.mark.slow
def test_a_set_an_older_ser_named_otherwise_is_found_by_fingerprint(
    synthetic_corpus: tuple[Path, Any], tiny_models: Any, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from ser.cli import main
    from ser.extract.run import ExtractConfig, extract_features

    root, _ = synthetic_corpus
    store = tmp_path / "f.zarr"
    hubert = {"model": str(tiny_models.hubert), "layers": "2"}
    # As ser named a folder by config.json's `_name_or_path` before: another stem.
    before = {"hubert": {**hubert, "name": "hubert-large-ll60k"}}
    extract_features(root, store, ExtractConfig(("hubert",), options=before, progress=False))
    again = extract_features(
        root, store, ExtractConfig(("hubert",), options={"hubert": hubert}, progress=False)
    )
    assert again.nothing_to_do and again.found == (("tiny-hubert.L2", "hubert-large-ll60k.L2"),)
    assert [s.name for s in again.sets] == ["hubert-large-ll60k.L2"]
    assert FeatureStore.open(store).feature_sets() == ["hubert-large-ll60k.L2"]

    args = ["extract", str(root), "--store", str(store), "--features", "hubert", "--quiet",
            "--layers", "2", "--hubert-model", str(tiny_models.hubert)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.output
    assert "tiny-hubert.L2: found in the store as hubert-large-ll60k.L2" in result.output
