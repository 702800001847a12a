"""`ser` ships its types (PEP 561's `py.typed`): a user's mypy, checking a script of
docs/python.md's examples against ser installed as pip installs it (not this checkout),
finds the API typed and the examples type-correct."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.test_python_docs import PAGE, python_blocks

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # a wheel built and installed, then mypy over torch's stubs: about a minute
def test_a_user_s_mypy_finds_ser_typed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps"]
    install += ["--no-build-isolation", "--target", str(site), str(ROOT)]
    subprocess.run(install, check=True, capture_output=True)
    assert (site / "ser" / "py.typed").is_file()
    script = tmp_path / "user" / "examples.py"
    script.parent.mkdir()
    script.write_text("\n".join(python_blocks(PAGE)) + "\nreveal_type(ser.open_store)\n")
    command = [sys.executable, "-m", "mypy", "--no-incremental", "--python-executable"]
    command += [sys.executable, "--cache-dir", str(tmp_path / "cache"), script.name]
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(command, cwd=script.parent, capture_output=True, text=True, env=env)
    assert 'Revealed type is "def (' in done.stdout, done.stdout  # typed, not Any
    assert done.returncode == 0, done.stdout
