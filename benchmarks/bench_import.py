"""CPU time, peak RSS and peak disk of `ser store import` against the number of utterances.

Builds a store of N made-up utterances and an .npz of N utterance-level embeddings (1024-d
float32 by default, what an MSP-Podcast user brings), then times `import_npz` in a fresh
process per size (CPU time: the machine's load does not count), with the disk beside the
store (staging included) sampled while it runs. The growth exponent between two sizes is
log(cpu ratio) / log(N ratio): 1 is linear, 2 quadratic.

    python benchmarks/bench_import.py                        # 10k and 50k utterances
    python benchmarks/bench_import.py --sizes 2000 8000 --frames 20   # a frame set
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from ser.cache import FeatureStore, Manifest
from ser.cache.backend import folder_bytes
from ser.cache.importer import ImportConfig, import_npz
from ser.synth.manifest import example_columns


def build(folder: Path, n: int, dim: int, frames: int, suffix: str) -> tuple[Path, Path]:
    """A store of `n` utterances and an .npz of `frames` rows each (0: one vector)."""
    ids = [f"Ses0{1 + i % 5}F_impro01_F{i:06d}" for i in range(n)]
    store = FeatureStore.create(folder / f"f{suffix}", Manifest.from_columns(example_columns(ids)))
    rng = np.random.default_rng(0)
    shape = (dim,) if frames == 0 else (frames, dim)
    npz = folder / "emb.npz"
    np.savez(npz, **{u: rng.standard_normal(shape, dtype=np.float32) for u in ids})
    return store.path, npz


def measure(store: Path, npz: Path, level: str) -> dict[str, float]:
    """One import, in this process: CPU seconds, wall seconds, peak RSS, peak disk."""
    beside = [store, store.with_name(store.name + ".staging")]
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], sum(folder_bytes(p) if p.is_dir() else _size(p) for p in beside))

    # A child's peak RSS starts at its parent's when it forked (the .npz it built): reset.
    Path("/proc/self/clear_refs").write_text("5")
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu, wall = time.process_time(), time.perf_counter()
    import_npz(FeatureStore.open(store, mode="a"), npz, ImportConfig("emb", "audio", level))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done.set()
    sampler.join()
    return {"cpu_s": cpu, "wall_s": wall, "peak_rss": _peak_rss(), "peak_disk": peak[0]}


def _peak_rss() -> int:
    """The process's peak resident memory since `clear_refs` (VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=0, help="rows each (0: utterance level)")
    parser.add_argument("--backend", choices=[".zarr", ".h5"], default=".zarr")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # store npz level: a child
    args = parser.parse_args()
    if args.one:
        store, npz, level = args.one
        print(json.dumps(measure(Path(store), Path(npz), level)))
        return
    level = "utterance" if args.frames == 0 else "frame"
    results = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            store, npz = build(Path(tmp), n, args.dim, args.frames, args.backend)
            child = [sys.executable, __file__, "--one", str(store), str(npz), level]
            out = json.loads(subprocess.run(child, capture_output=True, check=True).stdout)
            out["source"] = npz.stat().st_size
        results.append((n, out))
        print(
            f"N={n:>7,}: cpu {out['cpu_s']:7.2f} s  wall {out['wall_s']:7.2f} s  "
            f"peak RSS {out['peak_rss'] / 2**20:5.0f} MiB  "
            f"peak disk {out['peak_disk'] / 2**20:6.0f} MiB "
            f"(source {out['source'] / 2**20:.0f} MiB)",
            flush=True,
        )
    for (n0, a), (n1, b) in itertools.pairwise(results):
        exponent = math.log(b["cpu_s"] / a["cpu_s"]) / math.log(n1 / n0)
        print(
            f"growth {n0:,} -> {n1:,}: cpu x{b['cpu_s'] / a['cpu_s']:.2f}, exponent {exponent:.2f}"
        )


if __name__ == "__main__":
    main()
