"""Human-readable sizes for messages, binary everywhere ser prints one (KiB, MiB, GiB of
1024, never a decimal KB/MB beside them), and sizes a user gives (`parse_size`: both
kinds read as their standards say); torch-free, so any command may use them.

>>> parse_size("384MB"), parse_size("2GiB"), parse_size("1.5 g")
(384000000, 2147483648, 1610612736)
"""

from __future__ import annotations

import math
import re

#: A size's number and unit: "384MB", "2 GiB", "1.5g", "4096".
SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$", re.IGNORECASE)
# Decimal units are 1000's powers (as disks count them), binary ones and a bare letter
# 1024's (as ser prints them).
SCALES = {"": 1, "b": 1}
SCALES |= {f"{u}b": 1000**i for i, u in enumerate("kmgt", 1)}
SCALES |= {f"{u}ib": 1024**i for i, u in enumerate("kmgt", 1)}
SCALES |= {u: 1024**i for i, u in enumerate("kmgt", 1)}


def human_bytes(n: float) -> str:
    """Bytes in powers of 1024: "512 B", "3.0 GiB"."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    for unit in units[:-1]:
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} {units[-1]}"


def parse_size(text: str) -> int:
    """Bytes of a size as a user writes it: a number and a unit (B, KB/MB/GB/TB of 1000's
    powers, KiB/MiB/GiB/TiB or K/M/G/T of 1024's; none: bytes); `ValueError` naming what
    it takes for anything else or a size below one byte."""
    match = SIZE.match(text)
    scale = SCALES.get(match[2].lower()) if match else None
    if match is None or scale is None:
        raise ValueError(f"{text!r} is not a size: give a number and a unit, e.g. 384MB or 2GiB")
    size = float(match[1]) * scale
    if not math.isfinite(size) or size < 1:
        raise ValueError(f"{text!r} is below one byte: give a size such as 384MB or 2GiB")
    return int(size)
