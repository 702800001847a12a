"""`ser store init` stays linear in the number of utterances (`tests/growth.py`; import
and verify: tests/cache/test_importer.py)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile

from tests.growth import assert_linear
from tests.refused import ser


def test_init_cpu_time_grows_linearly(tmp_path: Path) -> None:
    """A manifest corpus of n utterances, all of one short wav: the manifest read, the
    store written, each utterance's audio print made."""

    def prepare(n: int) -> Callable[[], object]:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        soundfile.write(folder / "a.wav", (np.arange(1600) % 50 * 300).astype(np.int16), 16000)
        with open(folder / "m.csv", "w", newline="") as f:
            rows = csv.writer(f)
            rows.writerow(["utt_id", "wav", "label", "speaker"])
            rows.writerows([f"u{i:06d}", "a.wav", "neu", f"s{i % 10}"] for i in range(n))

        def init() -> None:
            done = ser("store", "init", folder / "f.zarr", folder / "m.csv")
            assert done.exit_code == 0, done.output

        return init

    assert_linear(prepare, 250, "ser store init")
