"""Numeric precision of model computations: fp32, or bf16/fp16 autocast, and the one
table of what "auto" means per stage and device (`AUTO`).

On the CPU "auto" is float32 for every stage, so every CPU computes the same numbers.
On CUDA, extraction autocasts to fp16: its features agree with float32 ones to a cosine
of 0.9998. Training autocasts to bf16 where the GPU has it (its range is float32's, so
no loss scaling is needed), else fp16. bf16 autocast made CPU training ~20 % faster but
scored lower test UA on 6 of 8 seeds (0.5 points on average; benchmarks/README.md), so it
is opt-in (`ser train --precision bf16`). The resolved precision is recorded with
features and runs, so results of different precision are never mixed up.
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
AUTO: dict[tuple[str, str], tuple[str, ...]] = {
    ("extract", "cuda"): ("fp16",),
    ("extract", "cpu"): ("fp32",),
    ("train", "cuda"): ("bf16", "fp16"),
    ("train", "cpu"): ("fp32",),
}


def check_precision(precision: str) -> str:
    """`precision` if it is one of auto, fp32, bf16, fp16; else a `ConfigError`."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    return precision


def resolve_precision(precision: str, device: torch.device, stage: Stage) -> str:
    """The concrete precision (fp32, bf16 or fp16) `precision` means for `stage`
    ("extract" or "train") on `device`: "auto" from `AUTO`, the others as they are.

    >>> import torch
    >>> resolve_precision("auto", torch.device("cpu"), "extract")
    'fp32'
    >>> resolve_precision("bf16", torch.device("cpu"), "train")
    'bf16'
    """
    if check_precision(precision) != "auto":
        return precision
    choices = AUTO[stage, device.type]
    return next((p for p in choices if _computes(device, p)), choices[-1])


def _computes(device: torch.device, precision: str) -> bool:
    """False for bf16 on a GPU without bf16 units (before Ampere)."""
    import torch

    return not (precision == "bf16" and device.type == "cuda") or torch.cuda.is_bf16_supported()


def auto_help(stage: Stage) -> str:
    """What "auto" means for `stage`, for `--precision`'s help, from `AUTO`.

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
    """The dtype a resolved `precision` autocasts to; None for fp32."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def autocast(device: torch.device, precision: str = "fp32") -> torch.autocast:
    """Autocast to a resolved `precision` on `device`; fp32 is a disabled context.

    >>> import torch
    >>> autocast(torch.device("cpu"), "bf16").fast_dtype
    torch.bfloat16
    """
    import torch

    if check_precision(precision) == "auto":
        raise ValueError("autocast takes a resolved precision; see resolve_precision")
    dtype = autocast_dtype(precision)
    if dtype is None:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=dtype)
