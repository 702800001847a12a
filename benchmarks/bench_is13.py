"""IS13 on every core: utterances/s of `ser extract --features is13` with its default (one
process per core, `ser.runtime.execution`) against one process, on the demo corpus.

Runs alternate (one process, default, one process, ...) into fresh stores so a neighbour's
load falls on both alike; the figure is the median of each side and their ratio. Every run
is checked to write the same bytes as the first one-process run.

    python benchmarks/bench_is13.py              # the demo corpus (~650 utterances), 2 rounds
    python benchmarks/bench_is13.py --dialogs 1  # ~170 utterances, quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from ser.cache import FeatureStore
from ser.extract.run import ExtractConfig, extract_features
from ser.runtime.execution import for_extraction
from ser.runtime.threads import cpu_budget, default_threads
from ser.synth.corpus import SynthConfig, write_corpus


def timed(root: Path, store: Path, processes: int | None) -> float:
    """Seconds of one is13 extraction into a new store."""
    config = ExtractConfig(features=("is13",), processes=processes, progress=False)
    started = time.perf_counter()
    extract_features(root, store, config, Console(quiet=True))
    return time.perf_counter() - started


def same_bytes(a: Path, b: Path) -> bool:
    x, y = FeatureStore.open(a).read("is13"), FeatureStore.open(b).read("is13")
    return x.offsets.tobytes() == y.offsets.tobytes() and x.data.tobytes() == y.data.tobytes()


def measure(dialogs: int, rounds: int, work: Path) -> dict[str, Any]:
    root = work / "IEMOCAP_full_release"
    write_corpus(root, SynthConfig(dialogs_per_session=dialogs))
    seconds: dict[str, list[float]] = {"one process": [], "default": []}
    first = None
    for r in range(rounds):
        for label, processes in (("one process", 1), ("default", None)):
            store = work / f"{label.replace(' ', '-')}-{r}.zarr"
            seconds[label].append(timed(root, store, processes))
            first = first or store
            if not same_bytes(store, first):
                raise SystemExit(f"{store} differs from {first}: a pool changed the bytes")
    n = len(FeatureStore.open(first).manifest) if first else 0
    here = default_threads(cpu_budget())
    default = for_extraction("is13", uses_torch=False, batches=n, device="cpu", threads=here)
    out: dict[str, Any] = {"utterances": n, "execution": default.describe()}
    for label, values in seconds.items():
        median = statistics.median(values)
        out[label] = {"seconds": values, "utterances_per_s": round(n / median, 1)}
    out["ratio"] = round(
        out["default"]["utterances_per_s"] / out["one process"]["utterances_per_s"], 2
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialogs", type=int, default=4, help="dialogs per session (demo: 4)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        print(json.dumps(measure(args.dialogs, args.rounds, Path(work)), indent=2))


if __name__ == "__main__":
    main()
