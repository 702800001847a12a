"""What each call of the Python API (docs/python.md) holds in memory: the peak resident
memory of a fresh process that makes one call on a synthetic frame set, above what the
process held once `ser` and torch were imported.

The store (made once in --workdir, Zarr): IEMOCAP's layout of 5 sessions x 2 dialogs x
--per-dialog utterances, labels cycling through six codes (four of them the 4-class set),
and one frame set `frames` (256-d float32, 100-600 rows an utterance, random values: ~430
MB at the default 120 a dialog) in 4 MiB chunks, so that a streamed dataset's cache (at
least 9 chunks) fits a budget of tens of MB. Each call runs in its own process
(`--call NAME`), which prints its figures as one JSON line: `peak` (ru_maxrss), `base`
(the resident memory before the call), `held` (the bytes of rows the call keeps: a
dataset's held rows, or its streamed cache's capacity), `seconds` (CPU time of the call).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_api_memory.py --workdir /tmp/am  # ~1 min
    PYTHONPATH=/an/older/ser .venv/bin/python benchmarks/bench_api_memory.py --workdir /tmp/am

The result (one JSON object, a row a call) goes to stdout. Figures: docs/python.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.stores

CALLS = (
    "read",
    "folds",
    "dataset-test",
    "dataset-train",
    "dataset-all",
    "dataset-train-streamed",
    "epoch-streamed",
    "epoch-streamed-workers",
)
FEATURES = "frames"
BUDGET = "64MB"
DIM, CHUNK = 256, 4 << 20
CODES = ("neu", "hap", "sad", "ang", "exc", "fru")


def build(path: Path, per_dialog: int) -> None:
    """The synthetic store (see the module's text), written a session at a time."""
    import ser.cache.store as store_module
    from ser.cache.manifest import Manifest
    from ser.cache.store import FeatureStore
    from ser.synth.manifest import example_columns
    from tests.stores import session_ids

    ids = session_ids(per_dialog)
    cols = example_columns(ids)
    cols["label"] = [CODES[i % len(CODES)] for i in range(len(ids))]
    cols["order"] = [i % per_dialog for i in range(len(ids))]
    store_module.CHUNK_BYTES = CHUNK
    store = FeatureStore.create(path, Manifest.from_columns(cols))
    attrs = {"extractor": "hubert", "modality": "audio", "level": "frame", "dim": DIM,
             "dtype": "float32"}  # fmt: skip
    store.begin_feature_set(FEATURES, attrs)
    rng = np.random.default_rng(0)
    lengths = rng.integers(100, 601, len(ids))
    per_shard = 2 * per_dialog
    writer = store.shard_writer(FEATURES)
    for shard, lo in enumerate(range(0, len(ids), per_shard)):
        rows = {
            i: rng.standard_normal((int(lengths[i]), DIM), dtype=np.float32)
            for i in range(lo, min(lo + per_shard, len(ids)))
        }
        writer.write(shard, rows, {})
    store.consolidate(FEATURES, -(-len(ids) // per_shard))


def resident() -> int:
    """This process's resident bytes now."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def held_bytes(data: Any) -> int:
    """The bytes of rows a dataset keeps: its held tables' and its streams' cache room."""
    total = 0
    for table in data.data.features.values():
        total += int(table.flat.nbytes)
        if table.stream is not None:
            chunk = table.stream.chunk_rows * table.stream.dim * table.stream.dtype.itemsize
            total += table.stream.capacity * chunk
    return total


def call(name: str, store_path: Path) -> dict[str, Any]:
    """Make call `name` in this process; its figures."""
    import torch  # noqa: F401  (imported before the baseline, as a script would)

    import ser

    store = ser.open_store(store_path)
    fold = ser.folds(store, protocol="loso", classes="4")[0] if name != "folds" else None
    base, started = resident(), time.process_time()
    held = 0
    if name == "read":
        rows = store.read(FEATURES, store.utterances[len(store.utterances) // 2])
        held = rows.nbytes
    elif name == "folds":
        made = ser.folds(store, protocol="loso", classes="4", features=FEATURES)
        held = sum(len(f.train) + len(f.val) + len(f.test) for f in made)
    else:
        held = dataset_call(name, store, fold)
    return {
        "call": name,
        "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "workers_peak": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
        "base": base,
        "held": held,
        "seconds": round(time.process_time() - started, 2),
    }


def dataset_call(name: str, store: Any, fold: Any) -> int:
    """A dataset call: made (and, for an epoch, read through a DataLoader)."""
    import ser

    side = "train" if name.startswith("epoch") else name.split("-")[1]
    ids = {"test": fold.test, "train": fold.train, "all": None}[side]
    budget = {"memory_budget": BUDGET} if "streamed" in name else {}  # (an older ser: none)
    data = ser.FeatureDataset(store, FEATURES, ids=ids, classes="4", **budget)
    if name.startswith("epoch"):
        from torch.utils.data import DataLoader

        workers = 2 if name.endswith("workers") else 0
        loader = DataLoader(
            data,
            batch_sampler=data.batches(16, seed=0),
            collate_fn=data.collate,
            num_workers=workers,
            multiprocessing_context="fork" if workers else None,
        )
        assert sum(len(b.utt_ids) for b in loader) == len(data)
    return held_bytes(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--per-dialog", type=int, default=120)
    parser.add_argument("--call", choices=CALLS, help="one call, in this process")
    parser.add_argument("--only", nargs="*", choices=CALLS, default=list(CALLS))
    args = parser.parse_args()
    store = args.workdir / "frames.zarr"
    if args.call:
        print(json.dumps(call(args.call, store)))
        return
    if not store.exists():
        args.workdir.mkdir(parents=True, exist_ok=True)
        build(store, args.per_dialog)
    rows = []
    for name in args.only:
        done = subprocess.run(
            [sys.executable, __file__, "--workdir", str(args.workdir), "--call", name],
            capture_output=True, text=True, env=os.environ, check=False,
        )  # fmt: skip
        if done.returncode:
            rows.append({"call": name, "error": done.stderr.strip().splitlines()[-1]})
        else:
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    print(json.dumps({"store_bytes": store_size(store), "rows": rows}, indent=1))


def store_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


if __name__ == "__main__":
    main()
