"""The command group: lazy command families."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ser.cli import main


@pytest.mark.slow
def test_commands_load_lazily() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from ser.cli import main; "
        "print('torch' in sys.modules); "
        "CliRunner().invoke(main, ['train', '--help']); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # torch only once a command that needs it is asked for.
    assert out.stdout.split() == ["False", "True"]


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2 and "No such command" in result.output


def test_threads_follow_is_gone_and_refused_plainly(tmp_path: Path) -> None:
    """`--threads follow` was removed (results must not follow the machine's load)."""
    for args in (["train", "--store", str(tmp_path), "--features", "x", "--out", str(tmp_path)],
                 ["extract", str(tmp_path), "--store", str(tmp_path / "f.zarr")]):  # fmt: skip
        result = CliRunner().invoke(main, [*args, "--threads", "follow"])
        assert result.exit_code == 2 and "follow" in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
