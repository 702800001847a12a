"""Precision names, what "auto" means per stage and device, and autocast
(ser/runtime/precision.py)."""

from __future__ import annotations

import pytest
import torch

from ser.errors import ConfigError
from ser.runtime.precision import AUTO, auto_help, autocast, check_precision, resolve_precision

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_check_precision_refuses_unknown_names() -> None:
    assert check_precision("bf16") == "bf16"
    with pytest.raises(ConfigError, match="unknown precision 'int8'"):
        check_precision("int8")


@pytest.mark.parametrize(
    ("stage", "device", "bf16_gpu", "expected"),
    [
        ("extract", CPU, True, "fp32"),
        ("extract", CUDA, True, "fp16"),
        ("extract", CUDA, False, "fp16"),
        ("train", CPU, True, "fp32"),
        ("train", CUDA, True, "bf16"),
        ("train", CUDA, False, "fp16"),
    ],
)
def test_auto_per_stage_and_device(
    stage: str, device: torch.device, bf16_gpu: bool, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whether the GPU has bf16 units is asked of torch only for CUDA; no GPU is needed.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *_, **__: bf16_gpu)
    assert resolve_precision("auto", device, stage) == expected
    given = ["fp32", "bf16", "fp16"]  # each as it is, whatever the stage and device
    assert [resolve_precision(p, device, stage) for p in given] == given


def test_the_table_covers_every_stage_and_device() -> None:
    assert set(AUTO) == {(s, d) for s in ("extract", "train") for d in ("cpu", "cuda")}


def test_bad_names_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown precision 'half'"):
        resolve_precision("half", CPU, "train")


def test_auto_help_states_the_table() -> None:
    assert auto_help("extract") == "auto: fp16 autocast on CUDA, fp32 on the CPU."
    assert auto_help("train").startswith("auto: bf16 autocast on CUDA (fp16 where")


@pytest.mark.parametrize(
    ("precision", "dtype"),
    [("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)],
)
def test_autocast_computes_in_the_precision(precision: str, dtype: torch.dtype) -> None:
    layer = torch.nn.Linear(4, 4)
    with autocast(CPU, precision):
        assert layer(torch.ones(2, 4)).dtype == dtype


def test_autocast_takes_a_resolved_precision() -> None:
    with pytest.raises(ValueError, match="resolved precision"):
        autocast(CPU, "auto")


@pytest.mark.parametrize(("command", "stage"), [("train", "train"), ("extract", "extract")])
def test_the_help_states_what_auto_means(command: str, stage: str) -> None:
    from click.testing import CliRunner

    from ser.cli import main

    shown = CliRunner().invoke(main, [command, "--help"]).output
    assert auto_help(stage) in " ".join(shown.split())  # as the table says, unwrapped


def test_doctests() -> None:
    import doctest

    import ser.runtime.precision

    assert doctest.testmod(ser.runtime.precision).failed == 0
