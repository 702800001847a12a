"""A fold's curves (ser.runs.curves)."""

from __future__ import annotations

import doctest
import math

import pytest

import ser.runs.curves
from ser.errors import ReportError
from ser.runs.curves import Curves


def test_curves_with_heads_and_nan_read_and_write_back() -> None:
    obj = {"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_loss": [math.nan, math.nan],
           "val_heads": {"val_sentiment": [40.0, 50.0]}}  # fmt: skip
    curves = Curves.from_json(obj)
    assert curves.val_heads == {"val_sentiment": (40.0, 50.0)} and curves.val_ua is None
    assert curves["val_heads"] == obj["val_heads"] and list(curves) == list(obj)
    assert curves.to_json()["epoch"] == [1, 2]
    with pytest.raises(ReportError, match="'epoch'"):
        Curves.from_json({"epoch": "1, 2"})


def test_docstring_examples_run() -> None:
    result = doctest.testmod(ser.runs.curves)
    assert result.attempted > 0 and result.failed == 0
