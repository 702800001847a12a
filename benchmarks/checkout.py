"""What the benchmarks' subprocesses need to run `ser` from a given checkout."""

from __future__ import annotations

import os
from pathlib import Path


def checkout_path(checkout: Path) -> str:
    """PYTHONPATH for a subprocess that imports `ser` from `checkout`: it first, then the
    caller's own entries (an image's wheels), no empty entry (which would add the
    subprocess's working directory)."""
    kept = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join([str(checkout), *kept])
