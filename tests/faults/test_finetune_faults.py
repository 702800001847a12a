"""Faults of `ser train --finetune` a user meets: a key out of its bounds (refused where
it is read, naming the key and its bounds, so a run never records one thing and trains
another), a divergence its encoder's rate caused (said with that rate), and a model
folder that moved, changed or holds a pickle (one line saying what to do)."""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import extract_tiny
from tests.refused import one_line, ser

LOW = "tiny-hubert.L1"
TRAIN = (
    "train", "--features", LOW, "--fusion", "none", "--classes", "4", "--epochs", "1",
    "--protocol", "session5", "--batch-size", "8", "--seeds", "1", "--device", "cpu",
)  # fmt: skip


@pytest.fixture(scope="module")
def own_model(short_corpus, tiny_models, tmp_path_factory) -> tuple[Path, Path]:
    """(a store of every layer of a tiny HuBERT, the folder it was extracted from): a copy
    of the session's model, which a test may move or change (`model_folder` puts it back).
    The short corpus: each test is refused before a step trains."""
    root = tmp_path_factory.mktemp("own-model")
    folder = root / "models" / "tiny-hubert"
    shutil.copytree(tiny_models.hubert, folder)
    store = root / "f.zarr"
    extract_tiny(short_corpus[0], store, replace(tiny_models, hubert=folder), {"layers": "all"})
    return store, folder


@pytest.fixture
def model_folder(own_model, tiny_models) -> Iterator[tuple[Path, Path]]:
    yield own_model
    _, folder = own_model
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(tiny_models.hubert, folder)


def _train(store: Path, out: Path, finetune: str, *more: str) -> Any:
    return ser(*TRAIN, "--store", store, "--out", out, "--finetune", finetune, *more)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("top=1.5", "top must be a whole number of layers (1 or more)"),
        ("top=1,lora=2,alpha=0", "alpha must be a whole number (LoRA's scale, 1 or more"),
        ("top=1,lora=2,alpha=-8", "alpha must be a whole number (LoRA's scale, 1 or more"),
        ("top=1,lr=inf", "lr must be a finite number above 0"),
        ("top=1,warmup=nan", "warmup must be a share of the steps, 0 or more and under 1"),
        ("top=2", "top must be within the encoder's layers above the set"),
    ],
)
def test_a_key_out_of_its_bounds_is_refused_naming_it(
    layered_store: Path, tmp_path: Path, value: str, says: str
) -> None:
    line = one_line(_train(layered_store, tmp_path, f"{LOW}:{value}"))
    assert f"error: --finetune {LOW}:{value}: {says}" in line
    assert not any(tmp_path.iterdir())  # refused before a run's folder


def test_a_divergence_names_the_encoders_rate(layered_store: Path, tmp_path: Path) -> None:
    line = one_line(_train(layered_store, tmp_path, f"{LOW}:top=1,lr=1e30"))
    assert "training diverged" in line
    assert f"a lower lr= in --finetune ({LOW} at lr 1e+30)" in line


def test_a_moved_model_folder_says_what_to_do(model_folder, tmp_path: Path) -> None:
    store, folder = model_folder
    folder.rename(folder.with_name("moved"))
    line = one_line(_train(store, tmp_path, f"{LOW}:top=1"))
    assert f"the model folder {folder} that wrote {LOW} is not there" in line
    assert f"put the folder back (or a link to it: ln -s NEW_FOLDER {folder})" in line
    assert "--hubert-model NEW_FOLDER --hubert-layers 1 --name hubert=NEW_NAME" in line
    assert line.endswith("and fine-tune NEW_NAME.L1")
    assert "give the folder that holds it" not in line  # train has no option for it
    sweep = ser(
        "sweep", "finetune", "--store", store, "--out", tmp_path / "sweep",
        "--set", "encoder=tiny-hubert", "--fix", "epochs=1", "--fix", "device=cpu",
    )  # fmt: skip
    assert f"the model folder {folder} that wrote" in one_line(sweep)


def test_a_changed_model_folder_no_longer_matches_the_set(model_folder, tmp_path: Path) -> None:
    store, folder = model_folder
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 1}))
    line = one_line(_train(store, tmp_path, f"{LOW}:top=1"))
    assert f"the model folder {folder} no longer matches the set {LOW}" in line
    assert f"--hubert-model {folder} --hubert-layers 1 --name hubert=tiny-hubert" in line
    assert "layers" not in line.partition("no longer matches")[0]


def test_a_pickled_checkpoint_is_refused_naming_it(model_folder, tmp_path: Path) -> None:
    """torch refuses it, and its advice to load it with weights_only=False never shows."""
    store, folder = model_folder
    state: dict[str, Any] = dict(load_file(folder / "model.safetensors"))
    torch.save({**state, "args": argparse.Namespace(lr=1)}, folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    line = one_line(_train(store, tmp_path, f"{LOW}:top=1"))
    assert f"{folder / 'pytorch_model.bin'} is a pickle of more than tensors" in line
    assert "argparse.Namespace" in line
    assert "weights_only" not in line
