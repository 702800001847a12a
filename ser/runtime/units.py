"""Human-readable sizes for messages, binary everywhere ser prints one (KiB, MiB, GiB of
1024, never a decimal KB/MB beside them); torch-free, so any command may use them."""

from __future__ import annotations


def human_bytes(n: float) -> str:
    """Bytes in powers of 1024: "512 B", "3.0 GiB"."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    for unit in units[:-1]:
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} {units[-1]}"
