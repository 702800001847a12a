"""Numeric precision of model computations: fp32, or bf16/fp16 autocast, and the one
table of what "auto" means per stage and device (`AUTO`).

On the CPU "auto" is float32 for every stage, so every CPU computes the same numbers
(bf16 CPU training is opt-in: it scored lower, benchmarks/README.md). The resolved
precision is recorded with features and runs, so results of different precision never mix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ser.errors import ConfigError

if TYPE_CHECKING:  # torch is imported where it computes: `ser extract --help` stays torch-free
    import torch

Stage = Literal["extract", "train"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_SHOWN = {"cpu": "the CPU", "cuda": "CUDA"}  # device types in help texts
# (stage, device type) -> what "auto" means: the first precision the device computes.
# CUDA extraction: fp16 features agree with fp32 ones to a cosine of 0.9998; training:
# bf16 has float32's range, so no loss scaling.
AUTO: dict[tuple[str, str], tuple[str, ...]] = {
    ("extract", "cuda"): ("fp16",),
    ("extract", "cpu"): ("fp32",),
    ("train", "cuda"): ("bf16", "fp16"),
    ("train", "cpu"): ("fp32",),
}


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    return precision


def resolve_precision(precision: str, device: torch.device, stage: Stage) -> str:
    """fp32, bf16 or fp16: "auto" from `AUTO`, the others as they are.

    >>> import torch
    >>> resolve_precision("auto", torch.device("cpu"), "extract")
    'fp32'
    >>> resolve_precision("bf16", torch.device("cpu"), "train")
    'bf16'
    """
    if check_precision(precision) != "auto":
        return precision
    import torch

    choices = AUTO[stage, device.type]
    # GPUs before Ampere lack bf16 units.
    no_bf16 = device.type == "cuda" and not torch.cuda.is_bf16_supported()
    return next((p for p in choices if not (p == "bf16" and no_bf16)), choices[-1])


def auto_help(stage: Stage) -> str:
    """`--precision`'s help: what "auto" means for `stage`.

    >>> auto_help("train")
    'auto: bf16 autocast on CUDA (fp16 where the GPU lacks bf16), fp32 on the CPU.'
    """
    parts = []
    for (table_stage, device), (first, *fallback) in AUTO.items():
        if table_stage == stage:
            part = f"{first}{' autocast' if first != 'fp32' else ''} on {_SHOWN[device]}"
            if fallback:
                part += f" ({fallback[0]} where the GPU lacks {first})"
            parts.append(part)
    return f"auto: {', '.join(parts)}."


def autocast_dtype(precision: str) -> torch.dtype | None:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def autocast(device: torch.device, precision: str = "fp32", cache: bool = True) -> torch.autocast:
    """Autocast to a resolved `precision` on `device`; fp32 is a disabled context.
    `cache=False` inside a CUDA graph's capture, as torch's documentation asks.

    >>> import torch
    >>> autocast(torch.device("cpu"), "bf16").fast_dtype
    torch.bfloat16
    """
    import torch

    if check_precision(precision) == "auto":
        raise ValueError("autocast takes a resolved precision; see resolve_precision")
    dtype = autocast_dtype(precision)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None, cache_enabled=cache)
