"""What adding a model family costs: a config dataclass, a plain model class and one
registry line. The family (tests/families.py) is defined outside ser; registered, it trains
stacked through the library call `ser train` makes, its checkpoints load back, and
`ser train --help` lists its options."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from ser.cli import main
from ser.models import Family
from ser.train.checkpoint import load_run_checkpoints
from ser.train.option_table import train_config
from ser.train.recipe import train
from tests.families import MeanLogits, MeanLogitsConfig
from tests.train.spies import Groups


@pytest.fixture
def registered(new_family: Callable[..., Family]) -> Family:
    return new_family()


@pytest.fixture(scope="module")
def store_path(labelled_stores: Callable[..., Path]) -> Path:
    sets = {"is13": ("is13", "audio", "utterance", 7, "float32"),
            "bert-tiny": ("bert", "text", "token", 5, "float16")}  # fmt: skip
    return labelled_stores(sets)


def test_a_new_family_trains_stacked_through_the_library_call(
    registered: Family, store_path: Path, tmp_path: Path
) -> None:
    config = train_config(
        {
            "store": str(store_path),
            "features": "is13+bert-tiny",
            "fusion": "mean-logits",
            "hidden": "6",
            "protocol": "loso",
            "seeds": "2",
            "classes": "4",
            "device": "cpu",
            "out": str(tmp_path),
            "members_at_once": "64",  # all (the CPU's default: 1)
        }
    )
    assert config.model == MeanLogitsConfig(fusion="mean-logits", hidden=6)
    groups = Groups()
    record = train(config, groups)
    assert record.complete and len(record.folds) == 10  # 5 LOSO folds x 2 seeds
    assert {(f.seed, f.fold) for f in record.folds} == {
        (seed, f"fold{k}") for seed in (0, 1) for k in range(1, 6)
    }
    assert len(groups.started) <= 5  # the seeds of a fold at least train stacked
    assert any(f.stacked > 1 for f in record.folds)
    assert record.config["family"] == "mean_logits" and record.config["hidden"] == 6
    assert record.config["epochs"] == 3  # the family's training defaults
    assert record.summary["ua"] > 25.0  # 4 classes: above chance on learnable features
    ckpt = load_run_checkpoints(tmp_path / record.name)[0]  # read through the registry
    assert ckpt.model == config.model and isinstance(ckpt.build(), MeanLogits)


def test_ser_train_lists_and_takes_the_new_family(
    registered: Family, store_path: Path, tmp_path: Path
) -> None:
    help_text = CliRunner().invoke(main, ["train", "--help"]).output
    assert "mean_logits: An MLP per feature set" in help_text and "--hidden INTEGER" in help_text
    assert "mean-logits]" in help_text  # a --fusion choice
    train_is13 = ["train", "--store", str(store_path), "--features", "is13", "--hidden", "4"]
    asked = ["--fusion", "mean-logits", "--protocol", "session5", "--epochs", "1"]
    asked += ["--classes", "4", "--device", "cpu", "--out", str(tmp_path), "--json"]
    result = CliRunner().invoke(main, train_is13 + asked)
    assert result.exit_code == 0, result.output
    refused = CliRunner().invoke(main, [*train_is13, "--fusion", "mit"])
    assert refused.exit_code == 2 and "--hidden 4 does not apply to fusion 'mit'" in refused.output


def test_without_its_registry_line_the_family_is_unknown() -> None:
    help_text = CliRunner().invoke(main, ["train", "--help"]).output
    assert "mean-logits" not in help_text and "--hidden" not in help_text
