"""A run's config as its record keeps it (ser.runs.config): the JSON object as written,
read only, and typed where a reader asks."""

from __future__ import annotations

import doctest

import pytest

import ser.runs.config
from ser.errors import ReportError
from ser.runs.config import RunConfig


def test_the_config_is_the_json_as_written_in_its_order() -> None:
    obj = {"store": "/data/a.zarr", "features": "hubert+mpnet", "family": "msmser",
           "queries": 10, "rmm": True, "eval_mask": None, "epochs": 40, "patience": None,
           "test": {"corpus": "meld", "manifest": "ab", "classes": "4"}}  # fmt: skip
    config = RunConfig.from_json(obj)
    assert (config["family"], config["epochs"], config.get("patience")) == ("msmser", 40, None)
    assert config["queries"] == 10 and config["test"] == obj["test"]  # as the JSON holds it
    assert list(config) == list(obj) and config.to_json() == obj  # null `patience` kept
    assert config.get("calibrate") is None  # a key older records lack reads as off
    assert RunConfig.from_json(config.to_json()) == config == obj


def test_a_value_of_another_type_is_refused_naming_the_file_and_key() -> None:
    config = RunConfig.from_json({"epochs": "forty", "finetune": 3}, "runs/r/run.json, config")
    with pytest.raises(ReportError, match=r"^runs/r/run\.json, config, 'epochs'"):
        config.typed("epochs", int)
    with pytest.raises(ReportError, match=r"^runs/r/run\.json, config, 'finetune'"):
        config.texts("finetune")
    with pytest.raises(ReportError, match="'config' must be a JSON object"):
        RunConfig.from_json(["not", "an", "object"])


def test_the_config_is_read_only() -> None:
    config = RunConfig.from_json({"epochs": 3})
    with pytest.raises(TypeError):
        config["epochs"] = 4  # type: ignore[index]


def test_docstring_examples_run() -> None:
    result = doctest.testmod(ser.runs.config)
    assert result.attempted > 0 and result.failed == 0
