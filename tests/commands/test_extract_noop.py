"""Re-running a finished `ser extract` is a no-op answered from the store's receipt:
from a fresh process without importing torch (what made it take seconds); any change to
what decides the outputs falls through to the full fingerprint check (seen in this
process: the full path's `extract_features` is called; a fresh process only showed it
by loading torch, seconds of start-up). No timing here: a timed test fails on a busy
machine (the speed is benchmarks' business)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ser.cli import main

PROBE = """
import sys
from ser.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    print("torch-loaded" if "torch" in sys.modules else "torch-free", "exit", exit.code)
"""


def _fresh_process(args: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture
def finished(synthetic_corpus: tuple[Path, Any], tiny_models: Any, tmp_path: Path) -> list[str]:
    root, _ = synthetic_corpus
    args = ["extract", str(root), "--store", str(tmp_path / "f.zarr"), "--quiet",
            "--features", "bert,logmel", "--bert-model", str(tiny_models.bert)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "f.zarr.receipt.json").is_file()
    return args


@pytest.mark.slow
def test_finished_command_is_a_torch_free_no_op(finished: list[str]) -> None:
    out = _fresh_process(finished)
    assert "nothing to do: tiny-bert, logmel80 already complete" in out
    assert "torch-free exit 0" in out


@pytest.fixture
def full_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per call of the full path (`ser.extract.run.extract_features`), which
    the command reaches only when its receipt does not answer."""
    import ser.extract.run as run_module

    calls: list[int] = []
    full = run_module.extract_features

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return full(*args, **kwargs)

    monkeypatch.setattr(run_module, "extract_features", counted)
    return calls


@pytest.mark.slow
def test_a_changed_model_folder_takes_the_full_check(
    finished: list[str], tiny_models: Any, full_checks: list[int]
) -> None:
    config = Path(tiny_models.bert) / "config.json"
    stat = config.stat()
    os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        result = CliRunner().invoke(main, finished)
    finally:
        os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    # Same weights, so the full check also finds nothing to do -- but it had to look.
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.output and full_checks == [1]


@pytest.mark.slow
def test_other_options_take_the_full_check(finished: list[str], full_checks: list[int]) -> None:
    CliRunner().invoke(main, [*finished, "--shard-size", "7"])
    assert full_checks == [1]
