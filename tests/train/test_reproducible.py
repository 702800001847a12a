"""Same command, same machine, same numbers: `ser train` run as a user runs it (no thread
settings in the environment) gives identical curves, epochs and metrics quiet and beside
one CPU-bound process per core.

Once, the thread count followed the load (idle cores sampled at the start, moved
between epochs), and torch rounds a product split among 2 threads otherwise than one done
by 1: a 40-epoch fusion-study run moved by a UA point.

One place decides the thread count for every family (ser/runtime/threads.py), so two
families stand for the rest: late fusion, whose members train stacked, and MSMSER, the
main model, whose members train one at a time on a CPU. At these sizes (256-dim features,
batches of 32, d_model 64) `--threads 1` and `--threads 2` give late fusion other curves
(as they do the dialog family; measured on an AMD EPYC, AVX2), so its case fails when the
count follows the load. MSMSER's bits did not move with the count there, even at 40-120
frames an utterance; its case checks the same promise where a CPU's kernels do split it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.machine import busy_cores, ser_command, user_env
from tests.stores import labelled_store

SETS = {
    "hubert-wide.L2": ("hubert", "audio", "frame", 256, "float16"),
    "bert-wide": ("bert", "text", "token", 256, "float16"),
}
COMMON = ("--classes", "4", "--protocol", "session5", "--epochs", "3", "--batch-size", "32",
          "--seeds", "2", "--device", "cpu", "--d-model", "64")  # fmt: skip
FAMILIES = {
    "msmser": ("--features", "hubert-wide.L2+bert-wide", "--fusion", "mit", "--heads", "2",
               "--queries", "4", "--layers", "1", "--rmm"),
    "late_prob": ("--features", "hubert-wide.L2+bert-wide", "--fusion", "late-prob"),
}  # fmt: skip


@pytest.fixture(scope="module")
def wide_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wide") / "features.zarr"
    labelled_store(path, SETS, per_dialog=12)
    return path


def outcomes(record: dict[str, Any]) -> list[dict[str, Any]]:
    """What a run computed, without its timings."""
    keep = ("seed", "fold", "metrics", "best_epoch", "curves")
    return [
        {
            **{k: entry[k] for k in keep},
            "stages": {n: s["curves"] for n, s in entry.get("stages", {}).items()},
        }
        for entry in record["folds"]
    ]


def train_cli(store: Path, out: Path, family: str) -> dict[str, Any]:
    args = ("train", "--store", str(store), "--out", str(out), "--name", family)
    done = subprocess.run(
        ser_command(*args, *COMMON, *FAMILIES[family]),
        env=user_env(),
        cwd=out.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    record: dict[str, Any] = json.loads((out / family / "run.json").read_text())
    return record


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_busy_machine_gives_the_quiet_machines_numbers(
    family: str, wide_store: Path, tmp_path: Path
) -> None:
    quiet = train_cli(wide_store, tmp_path / "quiet", family)
    with busy_cores():
        busy = train_cli(wide_store, tmp_path / "busy", family)
    assert busy["threads"] == quiet["threads"]
    assert outcomes(busy) == outcomes(quiet)
