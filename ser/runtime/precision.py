"""Numeric precision of model computations: fp32, or bf16/fp16 autocast.

"auto" means mixed precision where the hardware computes it natively and it is known to
cost nothing that matters: fp16 autocast on CUDA; for extraction also bf16 on CPUs with
native bf16 instructions (x86 AVX512-BF16 or AMX, Arm BF16), whose features agree with
float32 ones to a cosine of 0.9998. Training on the CPU stays float32 under "auto": bf16
autocast made the fusion study ~20 % faster here but scored lower test UA on 6 of 8
seeds (0.5 points on average; benchmarks/README.md), so it is opt-in (`ser train
--precision bf16`). The resolved precision is recorded with features and runs, so
results of different precision are never mixed up.
"""

from __future__ import annotations

import platform

import torch

from ser.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str) -> str:
    """`precision` if it is one of auto, fp32, bf16, fp16; else a `ConfigError`."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    return precision


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (x86 AVX512-BF16 or AMX, Arm BF16).

    Not `torch.ops.mkldnn._is_mkldnn_bf16_supported()` alone: on x86 it is also true for
    plain AVX512, where oneDNN emulates bf16 and runs slower than fp32.
    """
    for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        supported = getattr(torch.cpu, check, None)
        if supported is not None and supported():
            return True
    if platform.machine().lower() in ("arm64", "aarch64"):
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(precision: str, device: torch.device, cpu_bf16: bool = True) -> str:
    """The concrete precision "auto" means on `device`: fp16 on CUDA, bf16 on a CPU with
    native bf16 when `cpu_bf16` (extraction; training passes False), else fp32. Other
    values are returned as they are.

    >>> resolve_precision("fp32", torch.device("cuda"))
    'fp32'
    >>> resolve_precision("auto", torch.device("cpu"), cpu_bf16=False)
    'fp32'
    """
    if check_precision(precision) != "auto":
        return precision
    if device.type == "cuda":
        return "fp16"
    return "bf16" if cpu_bf16 and cpu_has_native_bf16() else "fp32"


def autocast(device: torch.device, precision: str = "fp32") -> torch.autocast:
    """Autocast to `precision` (resolved first if "auto") on `device`; fp32 is a
    disabled context.

    >>> autocast(torch.device("cpu"), "bf16").fast_dtype
    torch.bfloat16
    """
    dtype = AUTOCAST_DTYPES.get(resolve_precision(precision, device))
    if dtype is None:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=dtype)
