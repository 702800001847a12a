"""The toolkit `ser demo-corpus` hands the kinds' synthetic writers: every layout a kind
calls by name is one it writes, and the kinds that write their own layout with its
speech write what `ser.synth.acted` always wrote."""

from __future__ import annotations

import doctest
import hashlib
from pathlib import Path

import pytest

import ser.synth.toolkit
from ser.corpus.registry import KINDS
from ser.errors import ConfigError
from ser.synth.acted import ActedConfig, write_crema_d
from ser.synth.toolkit import LAYOUTS, TOOLKIT

# sha256 (16 hex digits) of the files `write_crema_d` wrote (2 actors, seed 3) while the
# writer was `ser.synth.acted`'s: moving it into the kind's module changed no byte.
BEFORE = "1d6263409821d2b2"


@pytest.mark.slow
def test_every_kind_with_a_writer_writes_through_the_toolkit(tmp_path: Path) -> None:
    assert doctest.testmod(ser.synth.toolkit).failed == 0
    writers = {name for name, kind in KINDS.items() if kind.synthetic is not None}
    assert set(LAYOUTS) < writers  # the others (CREMA-D, RAVDESS) write in their modules
    synthetic = KINDS["ravdess"].synthetic
    assert synthetic is not None
    written = synthetic.write(tmp_path / "r", 0, TOOLKIT, {})
    assert (written.utterances, written.speakers) == (6 * 15 * 2, 6)
    with pytest.raises(ConfigError, match="writes no 'studio' layout"):
        TOOLKIT.layout("studio")


def test_crema_d_written_in_its_kinds_module_is_the_same_bytes(tmp_path: Path) -> None:
    truth = write_crema_d(tmp_path / "c", ActedConfig(actors=2, seed=3))
    digest = hashlib.sha256()
    for path in sorted(truth.root.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(truth.root).as_posix().encode() + path.read_bytes())
    assert (len(truth.files), truth.empty) == (25, ("1002_MTI_SAD_XX",))
    assert digest.hexdigest()[:16] == BEFORE
