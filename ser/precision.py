"""Numeric precision of model computations: fp32, or bf16/fp16 autocast.

"auto" means mixed precision where the hardware computes it natively: fp16 on CUDA,
bf16 on CPUs with native bf16 instructions (x86 AVX512-BF16 or AMX, Arm BF16), fp32
elsewhere. Extraction (`ser extract --precision`) and training (`ser train --precision`)
resolve it the same way and record the result, so results of different precision are
never mixed up.
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


def resolve_precision(precision: str, device: torch.device) -> str:
    """The concrete precision "auto" means on `device`: fp16 on CUDA, bf16 on a CPU with
    native bf16, else fp32. Other values are returned as they are.

    >>> resolve_precision("fp32", torch.device("cuda"))
    'fp32'
    """
    if check_precision(precision) != "auto":
        return precision
    if device.type == "cuda":
        return "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"


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
