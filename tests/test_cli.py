"""The command group: lazy command families."""

from __future__ import annotations

import gc
import subprocess
import sys

from click.testing import CliRunner

from ser.cli import main


def test_commands_load_lazily_and_freeze_what_the_imports_built() -> None:
    code = (
        "import sys, gc; from click.testing import CliRunner; from ser.cli import main; "
        "print('torch' in sys.modules, gc.get_freeze_count() == 0); "
        "CliRunner().invoke(main, ['train', '--help']); "
        "print('torch' in sys.modules, gc.get_freeze_count() > 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # torch only once a command that needs it is asked for; then what the imports built
    # is frozen (kept out of every later collection, and of the one at exit).
    assert out.stdout.split() == ["False", "True", "True", "True"]


def test_unknown_command_is_a_usage_error() -> None:
    frozen = gc.get_freeze_count()
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2 and "No such command" in result.output
    # Nothing imported, nothing frozen: a freeze would add every live object (~10^5); the
    # count may still drop by a few, when frozen objects die meanwhile (other threads).
    assert gc.get_freeze_count() <= frozen
