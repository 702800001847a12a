"""scripts/common.sh's echo of each command: bold on a terminal, plain text in a log."""

from __future__ import annotations

import subprocess
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "common.sh"


def test_a_log_gets_no_raw_colour_codes() -> None:
    lines = DEMO.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("if [ -t 1 ]"))
    end = next(i for i, line in enumerate(lines) if line.startswith("step()"))
    script = "\n".join([*lines[start : end + 1], "step echo hello"])
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout == "\n$ echo hello\nhello\n"  # piped: no \x1b[1m around the command
