"""Precision names, their resolution per device, and autocast (ser/runtime/precision.py)."""

from __future__ import annotations

import pytest
import torch

from ser.errors import ConfigError
from ser.runtime.precision import autocast, check_precision, cpu_has_native_bf16, resolve_precision


def test_check_precision_refuses_unknown_names() -> None:
    assert check_precision("bf16") == "bf16"
    with pytest.raises(ConfigError, match="unknown precision 'int8'"):
        check_precision("int8")


def test_resolve_precision() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cuda) == "fp16"
    assert resolve_precision("auto", cpu) == ("bf16" if cpu_has_native_bf16() else "fp32")
    assert [resolve_precision(p, d) for p in ("fp32", "bf16", "fp16") for d in (cpu, cuda)] == [
        "fp32", "fp32", "bf16", "bf16", "fp16", "fp16"
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="unknown precision 'half'"):
        resolve_precision("half", cpu)


def test_cpu_without_bf16_instructions_resolves_auto_to_fp32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, check, lambda: False, raising=False)
    assert not cpu_has_native_bf16()
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert resolve_precision("auto", torch.device("cpu")) == "bf16"


@pytest.mark.parametrize(
    ("precision", "dtype"),
    [("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)],
)
def test_autocast_computes_in_the_precision(precision: str, dtype: torch.dtype) -> None:
    layer = torch.nn.Linear(4, 4)
    with autocast(torch.device("cpu"), precision):
        assert layer(torch.ones(2, 4)).dtype == dtype


def test_doctests() -> None:
    import doctest

    import ser.runtime.precision

    assert doctest.testmod(ser.runtime.precision).failed == 0
