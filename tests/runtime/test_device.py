"""The device names a run may ask for (ser/runtime/device.py)."""

from __future__ import annotations

import pytest
import torch

from ser.errors import ConfigError
from ser.runtime.device import pick_device


def test_pick_device() -> None:
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize(("name", "problem"), [("gpu0", "unknown"), ("meta", "unsupported")])
def test_bad_names_are_config_errors(name: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=f"{problem} device '{name}': use auto, cpu, cuda"):
        pick_device(name)


def test_cuda_without_a_gpu_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            pick_device(name)


def test_doctests() -> None:
    import doctest

    import ser.runtime.device

    assert doctest.testmod(ser.runtime.device).failed == 0
