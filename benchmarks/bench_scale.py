"""Every step of the MSP-Podcast-size path at 10k, 50k and 150k synthetic utterances: the
CPU time, peak RSS and disk of each, and how each grows with the number of utterances.

At each size N, in a folder of its own (removed after, unless --keep): `ser demo-corpus
--layout msp-podcast --utterances N` (labels and durations, no audio) and `ser store init`.
Then the utterance set's steps: an .npz of N utterance-level embeddings (1024-d float32,
what a user who brings embeddings has) imported with `ser store import`, `ser store
verify`, `ser.folds(store, features=...)` (protocol official, 4 classes), `store.read` of
one utterance, `ser.FeatureDataset` of the test side read once through a DataLoader, and
`ser train` of the MLP (`--fusion none`) for one epoch. At the sizes of --frame-sizes only
(the disk), the same steps again with a frame set added: HuBERT-base-shaped frames (768-d
float16, 50 rows a second of each utterance's durations.csv length, random values), the
dataset and the epoch streamed under `BUDGET`. The .npz files are written an array at a
time (never the whole set in memory) and removed once imported.

Each step runs in a process of its own; its figures come from `os.wait4`: CPU seconds
(user + system, its threads and the children it waited for: the machine's load does not
count) and peak RSS (ru_maxrss). A Python API step's process first imports ser and torch
and opens the store; its `cpu_s` and `peak_rss` are the call's own (CPU time around the
call; VmHWM reset after the set-up), and `base_rss` what it held before the call. Disk:
the bytes the step leaves (the store, the corpus folder, the .npz), and for an import the
peak of the store and anything beside it, sampled every half second while it runs. The
growth exponent between two sizes is log(cpu ratio) / log(N ratio): 1 linear, 2 quadratic.

    nice -n 10 .venv/bin/python benchmarks/bench_scale.py --workdir /tmp/bs  # ~25 min, 17 GB
    ... --sizes 10000 50000 --frame-sizes 10000 20000   # then:
    ... --sizes 10000 150000 --frame-sizes --append      # (the figures, in two runs)
    ... --sizes --frame-sizes --append                   # the table of --json again

A table is printed; the JSON goes to --json (default benchmarks/results/scale_cpu.json),
with each step's growth and, at the largest size, what was not measured there scaled
linearly from the largest size it was (`extrapolated`).
Figures: benchmarks/README.md, "What does MSP-Podcast's size cost, step by step?".
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SER = (sys.executable, "-m", "ser.cli")
UTT_DIM, FRAME_DIM, FRAME_RATE = 1024, 768, 50  # HuBERT-large vectors; HuBERT-base frames
BUDGET = "256MB"  # the streamed dataset's and training's: below every frame test side here
STEPS = ("demo-corpus", "store init", "import utterance", "verify", "folds", "read", "dataset-utt",
         "train utterance", "import frame", "verify frames", "folds frames", "read frames",
         "dataset-frames", "train frames streamed")  # fmt: skip
Step = Callable[[str, list[object], "Path | None"], dict[str, Any]]  # name, command, watched
TRAIN = ["--fusion", "none", "--epochs", "1", "--seeds", "1", "--classes", "4", "--protocol",
         "official", "--device", "cpu", "--threads", "1", "--processes", "1"]  # fmt: skip


def say(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def write_npz(path: Path, arrays: Any) -> int:
    """An uncompressed .npz (as `np.savez` writes) of (key, array) pairs, an array at a
    time; its bytes."""
    with zipfile.ZipFile(path, "w", allowZip64=True) as archive:
        for key, array in arrays:
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array))
    return path.stat().st_size


def durations(corpus: Path) -> list[tuple[str, float]]:
    """Each utterance's id and seconds, from the synthetic corpus's durations.csv."""
    with (corpus / "Labels" / "durations.csv").open(newline="") as file:
        return [
            (r["FileName"].removesuffix(".wav"), float(r["seconds"])) for r in csv.DictReader(file)
        ]


def utterance_arrays(utts: list[tuple[str, float]]) -> Any:
    rng = np.random.default_rng(0)
    for utt_id, _ in utts:
        yield utt_id, rng.standard_normal(UTT_DIM, dtype=np.float32)


def frame_arrays(utts: list[tuple[str, float]]) -> Any:
    """Random fp16 frames, sliced from one pool: making them costs less than writing them."""
    rng = np.random.default_rng(0)
    pool = rng.standard_normal((1 << 16, FRAME_DIM), dtype=np.float32).astype(np.float16)
    for utt_id, seconds in utts:
        rows = min(max(1, int(seconds * FRAME_RATE)), len(pool))
        start = int(rng.integers(0, len(pool) - rows + 1))
        yield utt_id, pool[start : start + rows]


def folder_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for parent, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(FileNotFoundError):  # a writer's temp file, renamed
                total += os.stat(os.path.join(parent, name)).st_size
    return total


def beside(store: Path) -> int:
    """The store's bytes and those of anything named after it beside it (staging)."""
    return sum(folder_bytes(p) for p in store.parent.glob(store.name + "*"))


def measure(command: list[str], log: Path, watch: Path | None = None) -> dict[str, Any]:
    """Run `command` in a process of its own: its CPU seconds, peak RSS, wall seconds, and
    with `watch` the peak bytes of that store and its neighbours while it ran."""
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            peak[0] = max(peak[0], beside(watch)) if watch else 0

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # A child's ru_maxrss starts at its parent's peak (kept across fork and exec): reset it.
    Path("/proc/self/clear_refs").write_text("5")
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{command[2:5]} failed:\n" + log.read_text()[-3000:])
    figures = {"cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "wall_s": round(wall, 2),
               "peak_rss": usage.ru_maxrss * 1024}  # fmt: skip
    if watch is not None:
        figures["peak_disk"] = max(peak[0], beside(watch))
    lines = log.read_text().strip().splitlines()
    if lines and lines[-1].startswith("{"):  # an API call's own figures
        figures = {**figures, "process_cpu_s": figures["cpu_s"], **json.loads(lines[-1])}
    return figures


def api_call(name: str, store_path: Path) -> dict[str, Any]:
    """One Python API step in this process (after importing ser and torch): its figures."""
    import torch  # noqa: F401  (imported before the baseline, as a script would)

    import ser

    store = ser.open_store(store_path)
    frames = "hubert" in store.sets
    fold = ser.folds(store, protocol="official", classes="4")[0]
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM from here on
    base, started = _status("VmRSS"), time.process_time()
    out: dict[str, Any] = {}
    if name == "folds":
        ser.folds(
            store, protocol="official", classes="4", features="emb+hubert" if frames else "emb"
        )
    elif name == "read":
        utt = store.utterances[len(store.utterances) // 2]
        out["read_bytes"] = sum(
            store.read(s, utt).nbytes for s in ("emb", "hubert") if s in store.sets
        )
    else:
        out.update(_dataset_pass(store, name, fold.test))
    out.update(
        cpu_s=round(time.process_time() - started, 2), peak_rss=_status("VmHWM"), base_rss=base
    )
    return out


def _dataset_pass(store: Any, name: str, ids: Sequence[str]) -> dict[str, Any]:
    """A test side's dataset made and read once through a DataLoader, in store order."""
    from torch.utils.data import DataLoader

    import ser

    frames = name == "dataset-frames"  # streamed; the utterance set held (the default budget)
    features, budget = ("hubert", BUDGET) if frames else ("emb", None)
    data = ser.FeatureDataset(store, features, ids=ids, classes="4", memory_budget=budget)
    loader = DataLoader(data, batch_sampler=data.batches(32), collate_fn=data.collate)
    seen = sum(len(batch.utt_ids) for batch in loader)
    return {"utterances": seen, "streamed": sorted(data.streamed)}


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def one_size(n: int, work: Path, frames: bool) -> dict[str, dict[str, Any]]:
    """Every step at `n` utterances, in `work`/n<n>: each step's figures."""
    folder = work / f"n{n}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    corpus, store = folder / "msp", folder / "store.zarr"
    steps: dict[str, dict[str, Any]] = {}

    def step(name: str, command: list[object], watch: Path | None) -> dict[str, Any]:
        say(f"N={n:,}: {name}")
        log = folder / (name.replace(" ", "-") + ".log")
        figures = measure([str(c) for c in command], log, watch)
        left = {"demo-corpus": corpus, "input utterance npz": folder / "emb.npz",
                "input frame npz": folder / "hubert.npz"}  # fmt: skip
        figures["disk"] = folder_bytes(left.get(name, store))
        steps[name] = figures
        say(f"  {json.dumps(figures)}")
        return figures

    made = ["--layout", "msp-podcast", "--utterances", n]
    step("demo-corpus", [*SER, "demo-corpus", corpus, *made], None)
    init = ["--corpus", "msp-podcast", "-q"]
    step("store init", [*SER, "store", "init", store, corpus, *init], None)
    _phase(step, folder, "utterance")
    if frames:  # the store then holds both sets
        _phase(step, folder, "frame")
    return steps


def _phase(step: Step, folder: Path, level: str) -> None:
    """One set's steps: its .npz made and imported, the store verified, the API's calls,
    an epoch; each step's series across sizes runs on alike stores."""
    utterance = level == "utterance"
    name, suffix = ("emb", "") if utterance else ("hubert", " frames")
    dataset = "dataset-utt" if utterance else "dataset-frames"
    store, npz = folder / "store.zarr", folder / f"{name}.npz"
    step(f"input {level} npz", [sys.executable, __file__, "--npz", level, "--store", npz], None)
    command = [*SER, "store", "import", store, npz, "--name", name, "--modality", "audio",
               "--level", level, "-q"]  # fmt: skip
    step(f"import {level}", command, store)["source"] = npz.stat().st_size
    npz.unlink()
    step("verify" + suffix, [*SER, "store", "verify", store, "-q"], None)
    for call in ("folds", "read", dataset):
        label = call if call == dataset else call + suffix
        step(label, [sys.executable, __file__, "--call", call, "--store", store], None)
    train = "train utterance" if utterance else "train frames streamed"
    extra = [] if utterance else ["--memory-budget", BUDGET]
    out = ["--store", store, "--out", folder / "runs", "--name", name, "--features", name]
    figures = step(train, [*SER, "train", *out, *TRAIN, *extra], None)
    record = json.loads((folder / "runs" / name / "run.json").read_text())
    figures["memory"] = record.get("execution", {}).get("memory")
    figures["fold_seconds"] = record["folds"][0].get("seconds")


def growth(results: dict[int, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each step's growth exponent between consecutive sizes it was measured at."""
    out: dict[str, dict[str, float]] = {}
    names = {name for steps in results.values() for name in steps}
    for name in sorted(names):
        sizes = sorted(n for n, steps in results.items() if name in steps)
        for a, b in itertools.pairwise(sizes):
            ta, tb = results[a][name]["cpu_s"], results[b][name]["cpu_s"]
            if ta > 0 and tb > 0:
                out.setdefault(name, {})[f"{a}->{b}"] = round(
                    math.log(tb / ta) / math.log(b / a), 2
                )
    return out


def extrapolated(results: dict[int, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The steps not measured at the largest size, scaled there linearly from the largest
    size they were measured at (an upper bound where they grow less than linearly)."""
    top, out = max(results), {}
    for name in STEPS:
        sizes = [n for n in sorted(results) if name in results[n]]
        if sizes and sizes[-1] < top:
            f, scale = results[sizes[-1]][name], top / sizes[-1]
            out[name] = {"from": sizes[-1], "to": top, "cpu_s": round(f["cpu_s"] * scale, 1),
                         "disk": round(f.get("peak_disk", f["disk"]) * scale)}  # fmt: skip
    return out


def table(results: dict[int, dict[str, Any]], exponents: dict[str, dict[str, float]]) -> str:
    """The figures as a Markdown table: step, N, CPU s, peak RSS, disk, exponent."""
    lines = [
        "| step | N | CPU s | peak RSS MiB | disk MiB | exponent |",
        "|---|---|---|---|---|---|",
    ]
    names = {name for steps in results.values() for name in steps}
    order = [name for name in STEPS if name in names]
    for name in order:
        previous = None
        for n in sorted(results):
            if name not in results[n]:
                continue
            f = results[n][name]
            exp = exponents.get(name, {}).get(f"{previous}->{n}", "") if previous else ""
            disk = f.get("peak_disk", f["disk"]) / 2**20
            lines.append(f"| {name} | {n:,} | {f['cpu_s']:.2f} | {f['peak_rss'] / 2**20:,.0f} "
                         f"| {disk:,.0f} | {exp} |")  # fmt: skip
            previous = n
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_scale"))
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 50_000, 150_000])
    parser.add_argument("--frame-sizes", type=int, nargs="*", default=[10_000, 20_000],
                        help="sizes with the frame set too (0.42 MB an utterance)")  # fmt: skip
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/scale_cpu.json")
    parser.add_argument("--append", action="store_true", help="keep --json's other sizes")
    parser.add_argument("--keep", action="store_true", help="keep each size's folder")
    parser.add_argument("--call", help=argparse.SUPPRESS)  # one API step: a child
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--npz", help=argparse.SUPPRESS)  # write one input .npz: a child
    args = parser.parse_args()
    if args.npz:  # the store's path is the .npz's; the corpus beside it
        arrays = utterance_arrays if args.npz == "utterance" else frame_arrays
        write_npz(args.store, arrays(durations(args.store.parent / "msp")))
        return
    if args.call:
        print(json.dumps(api_call(args.call, args.store)))
        return
    results: dict[int, dict[str, Any]] = {}
    if args.append and args.json.exists():
        results = {int(n): s for n, s in json.loads(args.json.read_text())["results"].items()}
    for n in sorted(set(args.sizes) | set(args.frame_sizes)):
        results[n] = {**results.get(n, {}), **one_size(n, args.workdir, n in args.frame_sizes)}
        if not args.keep:
            shutil.rmtree(args.workdir / f"n{n}")
        write(args.json, results)
    write(args.json, results)  # with no --sizes: the table and extrapolation of --json's
    print(table(results, growth(results)))


def write(path: Path, results: dict[int, dict[str, Any]]) -> None:
    out = {"budget": BUDGET, "cores": os.cpu_count(), "results": results,
           "growth": growth(results), "extrapolated": extrapolated(results)}  # fmt: skip
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
