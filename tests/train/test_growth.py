"""`ser train` stays linear in the number of utterances (`tests/growth.py`): the MLP on a
frame set for one epoch of one seed, its rows held in memory and streamed under a small
`--memory-budget`, everything on this process's one thread."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

import ser.cache.store as store_module
from ser.runs import record
from tests.growth import assert_linear
from tests.refused import ser
from tests.stores import labelled_store

FRAMES = "hubert-tiny.L2"
SETS = {FRAMES: ("hubert", "audio", "frame", 6, "float16")}
#: Bytes of `--memory-budget` an utterance: its frames (about 48 bytes) stream, the MLP's
#: mean of them (24 bytes), which it holds whatever the budget, and the batches fit.
BUDGET = 50
N = 800  # and 4N; IEMOCAP-shaped: 10 dialogs of N // 10 utterances


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    """stores(n): a labelled store of n utterances in small chunks (85 frame rows), so a
    streamed side's reads cross many of them; made once per n, read only."""
    made: dict[int, Path] = {}

    def get(n: int) -> Path:
        if n not in made:
            path = tmp_path_factory.mktemp(f"n{n}") / "features.zarr"
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(store_module, "CHUNK_BYTES", 1024)
                labelled_store(path, SETS, per_dialog=n // 10)
            made[n] = path
        return made[n]

    return get


@pytest.mark.parametrize("streamed", [False, True], ids=["held", "streamed"])
def test_training_cpu_time_grows_linearly(
    stores: Callable[[int], Path], tmp_path: Path, streamed: bool
) -> None:
    """Its rows loaded (or their stream planned and read), one epoch's steps, validation
    and the test side's predictions, the run's record written: one fold (session 5)."""
    runs = itertools.count()

    def prepare(n: int) -> Callable[[], object]:
        out = tmp_path / f"runs{next(runs)}"
        args: list[str | Path] = ["train", "--store", stores(n), "--features", FRAMES]
        args += ["--fusion", "none"]
        args += ["--classes", "4", "--protocol", "session5", "--epochs", "1", "--seeds", "1"]
        args += ["--batch-size", "8", "--device", "cpu", "--threads", "1", "--processes", "1"]
        args += ["--out", out, "--name", "mlp"]
        args += ["--memory-budget", f"{BUDGET * n}B"] if streamed else []

        def train() -> None:
            done = ser(*args)
            assert done.exit_code == 0, done.output
            config = record.read(out / "mlp" / "run.json").config
            assert config["streamed"] == ([FRAMES] if streamed else None)

        return train

    assert_linear(prepare, N, "ser train" + " (streamed)" * streamed)
