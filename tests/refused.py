"""`ser ARGS` run in this process as a user types it, and the one line a refused command
prints (`from tests.refused import ser, one_line`); `said`, its code and output."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from ser.cli import main


def ser(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def said(*args: str | Path) -> tuple[int, str]:
    """`ser ARGS`'s exit code and output."""
    result = ser(*args)
    return result.exit_code, result.output


def one_line(result: Result, code: int = 2) -> str:
    """The one error line of a refused command (ser's `error:` or click's `Error:`): its
    exit code `code`, no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.lower().startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]
