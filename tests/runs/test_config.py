"""A run's config as its record keeps it (ser.runs.config)."""

from __future__ import annotations

import doctest

import ser.runs.config
from ser.runs.config import CrossTestStore, RunConfig


def test_the_named_keys_are_fields_and_the_family_s_options_stay_by_name() -> None:
    obj = {"store": "/data/a.zarr", "features": "hubert+mpnet", "family": "msmser",
           "queries": 10, "rmm": True, "eval_mask": None, "epochs": 40, "patience": None,
           "test": {"corpus": "meld", "manifest": "ab", "classes": "4"}}  # fmt: skip
    config = RunConfig.from_json(obj)
    assert (config.family, config.epochs, config.patience) == ("msmser", 40, None)
    assert config.options == {"queries": 10, "rmm": True, "eval_mask": None}
    assert config.test == CrossTestStore(corpus="meld", manifest="ab", classes="4")
    assert config["queries"] == 10 and config["test"] == obj["test"]  # as the JSON holds it
    assert list(config) == list(obj) and config.to_json() == obj  # null `patience` kept


def test_a_config_made_here_is_in_the_trainer_s_order() -> None:
    config = RunConfig(name="r", epochs=3, features="is13", options={"d_model": 8})
    assert list(config) == ["features", "d_model", "epochs", "name"]
    assert RunConfig.from_json(config.to_json()) == config


def test_docstring_examples_run() -> None:
    result = doctest.testmod(ser.runs.config)
    assert result.attempted > 0 and result.failed == 0
