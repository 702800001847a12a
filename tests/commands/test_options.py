"""Helpers every command shares (ser.commands.options)."""

from __future__ import annotations

import subprocess
import sys

# A coroutine left unawaited, as a zarr read that Ctrl-C stopped leaves one, then the end.
CTRL_C = """
from ser.commands.options import interrupted

async def read():
    pass

stopped = read()
interrupted("interrupted: what is kept, and how to resume")
"""


def test_ctrl_c_s_line_is_all_stderr_says() -> None:
    done = subprocess.run([sys.executable, "-c", CTRL_C], capture_output=True, text=True)
    assert done.returncode == 130
    assert done.stderr == "interrupted: what is kept, and how to resume\n"
