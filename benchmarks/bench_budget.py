"""Training under `--memory-budget`: peak resident memory and wall time of `ser train` with
its frames streamed from the store, against the same run with every row in memory.

The store (made once in --workdir, Zarr): the IEMOCAP structure's 4-class utterances (ids,
dialogs, sessions, labels and real lengths read at run time from
../shared/data/iemocap_utterances.csv: nothing of it is copied here), a HuBERT-base-shaped
frame set (`hubert`: 768-d fp16, 50 rows a second of each utterance's length, random
values; 1.93 GB, ~20 s to write) and an MPNet-shaped token set (`mpnet`: 768-d fp16, 3
tokens a second, 3-80). With `--corpus msp-podcast --hours H` instead: `ser demo-corpus --layout
msp-podcast --hours H` (labels and `Labels/durations.csv`, no audio), its manifest as
`ser extract` makes it, and the frame set at the durations' lengths (no text set; the
bytes the real corpus's 230 hours would take at that rate are projected).

Each run is a fresh `ser train` process (MSMSER at the demo's width, `--d-model 64 --heads
4 --queries 8`, on `--features hubert+mpnet`; the MLP, `--fusion none`, on `hubert` with
`--mlp`), one seed, one fold (`--protocol session5`: LOSO's fold testing session 5; the
MSP-Podcast store: `official`), `--epochs` epochs on `--device` (the CPU), in memory and
with `--memory-budget`, alternating, `--repeats` times each; on a GPU a third side holds
the rows in pinned host memory (`--memory-budget` alone), and the streamed side adds
`--host-memory`. Per run: its peak resident memory (the child's `ru_maxrss`, from
`os.wait4`), its wall time (command start to `run.json` written), its CPU seconds and
each epoch's seconds (training and validation: from its `epoch N/E  loss` progress line's
arrival to the next's; the first includes the start and building the model). The medians
are printed side by side with their ratios; an MSP-Podcast store's streamed epoch is also
projected to the real corpus's 230 hours (`projected`), beside the disk's floor under
`--cold`. `benchmarks/gpu.sh` runs it on a GPU (`budget_msp_podcast`).

`--cold`: one more streamed run with the store's pages out of the page cache first
(`/proc/sys/vm/drop_caches` as root, else `posix_fadvise(DONTNEED)` on every file of the
store, said which), beside the disk's own sequential read rate of the same files measured
cold the same way. On a shared machine the load moves a run's wall time several-fold:
compare pairs run back to back, and their CPU seconds.

    .venv/bin/python benchmarks/bench_budget.py --workdir /tmp/bb --repeats 2 --mlp  # ~2-20 min
    .venv/bin/python benchmarks/bench_budget.py --workdir /tmp/bm --corpus msp-podcast \
        --hours 20 --model msmser-audio --only stream --repeats 1 --cold

`--shuffle-seeds N --store PATH`: what streaming changes in what a run learns. A copy of
the demo's store at PATH (`make demo`'s features.zarr, copied once into --workdir), its
logmel80 rechunked to --chunk-size (`ser store rechunk`: several windows of chunks), the
demo's MSMSER (`logmel80+tiny-mpnet`, 20 epochs, batch 16) trained with `--seeds N` in memory
and under --stream-budget (logmel80 streamed: checked in run.json's `streamed`), the two
runs side by side; each seed's test UA on both sides, their means and sds, and the paired
difference (stream - memory) with its 95% t interval.

    .venv/bin/python benchmarks/bench_budget.py --workdir /tmp/bs --shuffle-seeds 8 \
        --store demo/features.zarr  # ~30 min on 2 cores

The result is one JSON object on stdout; progress on stderr. Figures: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ser.cache import FeatureStore, Manifest
from ser.corpus.registry import read_corpus
from ser.extract.store_setup import manifests
from ser.synth.manifest import example_columns

ROOT = Path(__file__).resolve().parents[1]
UTTERANCES = ROOT.parent / "shared" / "data" / "iemocap_utterances.csv"
SER = (sys.executable, "-m", "ser.cli")
FOUR = ("neu", "hap", "exc", "sad", "ang")  # the 4-class set's labels (exc joins hap)
FRAME_RATE, DIM = 50, 768  # HuBERT-base: 50 frames a second, 768-d
MSP_HOURS = 230  # MSP-Podcast release 1.11's audio, about (`ser.synth.msp_size`)
SHARD = 64  # utterances a staged shard holds while the set is written
MODELS = {
    "msmser": ["--features", "hubert+mpnet", "--fusion", "mit", "--d-model", "64",
               "--heads", "4", "--queries", "8"],
    "msmser-audio": ["--features", "hubert", "--fusion", "mit", "--d-model", "64",
                     "--heads", "4", "--queries", "8"],
    "mlp": ["--features", "hubert", "--fusion", "none"],
    # the paper's MSMSER (d 768, 8 heads) on the frames alone: the MSP-Podcast store's
    "msmser-paper-audio": ["--features", "hubert", "--fusion", "mit"],
}  # fmt: skip


def say(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def iemocap_manifest(path: Path) -> Manifest:
    """The 4-class utterances of the IEMOCAP structure's table at `path` (read here, at
    run time) as a store's manifest: their ids, dialogs, sessions, order and lengths."""
    with path.open(newline="") as file:
        rows = [r for r in csv.DictReader(file) if r["label"] in FOUR]
    cols = example_columns([r["utt_id"] for r in rows])
    start = [float(r["start"]) for r in rows]
    end = [float(r["end"]) for r in rows]
    cols.update(
        dialog=[r["dialog"] for r in rows],
        session=[int(r["session"]) for r in rows],
        gender=[r["speaker_gender"] for r in rows],
        kind=[r["kind"] for r in rows],
        order=[int(r["order"]) for r in rows],
        start=start,
        end=end,
        duration=[b - a for a, b in zip(start, end, strict=True)],
        label=[r["label"] for r in rows],
    )
    return Manifest.from_columns(cols)


def msp_manifest(work: Path, hours: float) -> tuple[Manifest, dict[str, Any], dict[str, float]]:
    """`ser demo-corpus --layout msp-podcast --hours H` in `work` (made once), its manifest
    and store attributes as `ser extract` makes them, and each utterance's seconds from
    its durations.csv."""
    root = work / f"msp-{hours:g}h"
    if not root.exists():
        sh(*SER, "demo-corpus", root, "--layout", "msp-podcast", "--hours", str(hours))
    kind, reading = read_corpus(root, "msp-podcast", "all")
    with (root / "Labels" / "durations.csv").open(newline="") as file:
        seconds = {r["FileName"]: float(r["seconds"]) for r in csv.DictReader(file)}
    return manifests(reading)[0], {**kind.attrs(reading), "classes": "all"}, seconds


def sh(*command: object) -> None:
    subprocess.run([str(c) for c in command], check=True, stdout=sys.stderr)


def write_set(
    store: FeatureStore, name: str, modality: str, level: str, lengths: np.ndarray
) -> None:
    """A complete `DIM`-d fp16 set of random rows, `lengths[i]` rows for utterance i,
    written a shard at a time (never the whole set in memory); kept if already complete."""
    attrs = {"extractor": name, "modality": modality, "level": level, "dim": DIM,
             "dtype": "float16", "source": "benchmarks/bench_budget.py (random)"}  # fmt: skip
    store.begin_feature_set(name, attrs)
    if store.info(name).complete:
        return
    rng = np.random.default_rng(len(lengths))
    writer = store.shard_writer(name)
    starts = range(0, len(lengths), SHARD)
    for shard_id, start in enumerate(starts):
        rows = {
            i: rng.standard_normal((int(lengths[i]), DIM), dtype=np.float32).astype(np.float16)
            for i in range(start, min(start + SHARD, len(lengths)))
        }
        writer.write(shard_id, rows, {})
    store.consolidate(name, len(starts))


def build(work: Path, corpus: str, hours: float) -> tuple[Path, dict[str, Any]]:
    """The store of the runs (made once), and what it holds."""
    path = work / (f"{corpus}.zarr" if corpus == "iemocap" else f"{corpus}-{hours:g}h.zarr")
    attrs: dict[str, Any] = {}  # a store without a corpus's attributes is IEMOCAP's
    if corpus == "iemocap":
        manifest = iemocap_manifest(UTTERANCES)
        seconds = np.asarray(manifest.column("duration"), dtype=np.float64)
    else:
        manifest, attrs, by_name = msp_manifest(work, hours)
        ids = np.asarray(manifest.column("utt_id")).astype(str)
        seconds = np.array([by_name[f"{utt_id}.wav"] for utt_id in ids])
    started = time.monotonic()
    store = FeatureStore.create(path, manifest, attrs)
    write_set(
        store, "hubert", "audio", "frame", np.maximum(1, (seconds * FRAME_RATE).astype(np.int64))
    )
    if corpus == "iemocap":
        write_set(store, "mpnet", "text", "token", np.clip((seconds * 3).astype(np.int64), 3, 80))
    info = store.info("hubert")
    held = {
        "utterances": len(manifest),
        "hours": round(float(seconds.sum()) / 3600, 2),
        "hubert_bytes": int(info.rows) * DIM * 2,
        "hubert_chunk_rows": store.chunk_rows("hubert"),
        "store_bytes": folder_bytes(path),
        "seconds_to_build": round(time.monotonic() - started, 1),
    }
    if corpus == "msp-podcast":  # the real corpus's hours at these bytes an hour
        held["full_size_bytes"] = round(held["store_bytes"] / held["hours"] * MSP_HOURS)
    say(f"store {path}: {held}")
    return path, held


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run(
    store: Path, work: Path, model: str, side: tuple[str, list[str]], epochs: int, where: list[str]
) -> dict[str, Any]:
    """One `ser train` in a fresh process: peak RSS, wall time to run.json, epoch times.
    `side`: its name and its memory options; `where`: its protocol and device options."""
    name = f"{model}-{side[0]}"
    command = [*SER, "train", "--store", str(store), "--out", str(work / "runs"), "--name", name,
               "--overwrite", "--classes", "4", "--seeds", "1", "--epochs", str(epochs),
               "--processes", "1", *where, *MODELS[model], *side[1]]  # fmt: skip
    record = work / "runs" / name / "run.json"
    started = time.monotonic()
    wall_start = time.time()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append((time.monotonic() - started, line.rstrip()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n" + "\n".join(line for _, line in lines[-20:]))
    out: dict[str, Any] = {
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "wall_s": round(record.stat().st_mtime - wall_start, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "major_faults": usage.ru_majflt,
        "read_mib": round(usage.ru_inblock * 512 / 2**20, 1),
    }
    execution = json.loads(record.read_text()).get("execution", {})
    out["placement"], out["step"] = execution.get("memory"), execution.get("step")
    out["epoch_s"] = epoch_seconds(lines)
    say(f"{name}: {json.dumps(out)}")
    return out


def epoch_seconds(lines: list[tuple[float, str]]) -> list[float]:
    """Each epoch's seconds: between the arrivals of its `epoch N/E  loss` progress line
    and the one before (the first from the process's start)."""
    marks = [0.0] + [t for t, line in lines if re.search(r"epoch \d+/\d+  loss ", line)]
    return np.round(np.diff(marks), 2).tolist()


def uncache(store: Path) -> str:
    """The store's pages out of the page cache; how it was done."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return "drop_caches"
    except OSError:
        pass
    for path in store.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    return "posix_fadvise DONTNEED on the store's files"


def disk_rate(store: Path) -> dict[str, Any]:
    """The store's frame files read once sequentially (1 MiB reads), cold: MB/s."""
    how = uncache(store)
    files = sorted(p for p in (store / "hubert").rglob("*") if p.is_file())
    started, total = time.monotonic(), 0
    for path in files:
        with path.open("rb", buffering=0) as handle:
            while block := handle.read(2**20):
                total += len(block)
    seconds = time.monotonic() - started
    return {
        "how": how,
        "bytes": total,
        "seconds": round(seconds, 2),
        "mb_per_s": round(total / seconds / 1e6, 1),
    }


DEMO = ["--features", "logmel80+tiny-mpnet", "--fusion", "mit", "--d-model", "64", "--heads",
        "4", "--queries", "8", "--epochs", "20", "--batch-size", "16", "--lr", "5e-4",
        "--classes", "4", "--protocol", "session5"]  # fmt: skip


def shuffle_cost(demo: Path, work: Path, seeds: int, chunk: str, budget: str) -> dict[str, Any]:
    """The demo's MSMSER over `seeds` seeds in memory and streamed (block shuffle), on a
    copy of the demo store whose logmel80 is rechunked to `chunk`; both runs at once."""
    store = work / "shuffle.zarr"
    if not store.exists():
        shutil.copytree(demo, work / "shuffle.copying")
        (work / "shuffle.copying").rename(store)
    sh(*SER, "store", "rechunk", store, "logmel80", "--chunk-size", chunk)
    base = [*SER, "train", "--store", str(store), "--out", str(work / "runs"), "--overwrite",
            "--seeds", str(seeds), "--device", "cpu", "--processes", "1", *DEMO]  # fmt: skip
    sides = {"memory": [], "stream": ["--memory-budget", budget]}
    procs = {
        side: subprocess.Popen([*base, "--name", f"shuffle-{side}", *extra], stdout=sys.stderr)
        for side, extra in sides.items()
    }
    started = time.monotonic()
    if any(proc.wait() for proc in procs.values()):
        raise SystemExit("a run failed: see its output above")
    ua = {}
    for side in sides:
        record = json.loads((work / "runs" / f"shuffle-{side}" / "run.json").read_text())
        streamed = record["config"].get("streamed") or []
        if ("logmel80" in streamed) != (side == "stream"):
            raise SystemExit(f"{side}: streamed {streamed}: pick another --stream-budget")
        by_seed = {f["seed"]: f["metrics"]["ua"] for f in record["folds"]}
        ua[side] = [round(by_seed[seed], 2) for seed in sorted(by_seed)]
    return {"store": str(store), "chunk_rows": FeatureStore.open(store).chunk_rows("logmel80"),
            "budget": budget, "seconds": round(time.monotonic() - started),
            **paired(ua["memory"], ua["stream"])}  # fmt: skip


def paired(memory: list[float], stream: list[float]) -> dict[str, Any]:
    """Each side's UA per seed, mean and sd; stream - memory per seed, its mean and 95% t
    interval."""
    from scipy import stats

    diff = np.subtract(stream, memory)
    low, high = stats.t.interval(0.95, len(diff) - 1, loc=diff.mean(), scale=stats.sem(diff))
    out: dict[str, Any] = {
        side: {
            "ua": uas,
            "mean": round(float(np.mean(uas)), 2),
            "sd": round(float(np.std(uas, ddof=1)), 2),
        }
        for side, uas in (("memory", memory), ("stream", stream))
    }
    out["difference"] = {
        "mean": round(float(diff.mean()), 2),
        "ci95": [round(float(low), 2), round(float(high), 2)],
        "p": round(float(stats.ttest_rel(stream, memory).pvalue), 3),
    }
    return out


def median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_budget"))
    parser.add_argument("--corpus", choices=["iemocap", "msp-podcast"], default="iemocap")
    parser.add_argument("--hours", type=float, default=20.0, help="msp-podcast: its size")
    parser.add_argument("--budget", default="384MB")
    parser.add_argument("--device", default="cpu", help="cuda: also a side in pinned host memory")
    parser.add_argument("--host-memory", help="cuda: the stream side's --host-memory")
    parser.add_argument("--json", action="store_true", help="the result on one line")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side, alternating")
    parser.add_argument("--model", choices=list(MODELS), default="msmser")
    parser.add_argument("--mlp", action="store_true", help="also the MLP on the frames")
    parser.add_argument("--only", choices=["memory", "stream"], default=None)
    parser.add_argument("--cold", action="store_true", help="also a streamed run, store uncached")
    parser.add_argument("--shuffle-seeds", type=int, default=0, help="the block shuffle's cost")
    parser.add_argument("--store", type=Path, help="--shuffle-seeds: the demo's features.zarr")
    parser.add_argument("--chunk-size", default="512KiB", help="--shuffle-seeds: logmel80's")
    parser.add_argument("--stream-budget", default="8MiB", help="--shuffle-seeds: streams logmel80")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.shuffle_seeds:
        if args.store is None:
            parser.error("--shuffle-seeds needs --store (the demo's features.zarr)")
        cost = shuffle_cost(
            args.store, args.workdir, args.shuffle_seeds, args.chunk_size, args.stream_budget
        )
        print(json.dumps(cost, indent=1))
        return
    store, held = build(args.workdir, args.corpus, args.hours)
    protocol = "session5" if args.corpus == "iemocap" else "official"
    where = ["--protocol", protocol, "--device", args.device]
    out: dict[str, Any] = {"store": held, "budget": args.budget, "epochs": args.epochs}
    sides = {side: opts for side, opts in memory_sides(args).items() if args.only in (None, side)}
    for model in [args.model] + (["mlp"] if args.mlp and args.model != "mlp" else []):
        runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
        for _ in range(args.repeats):
            for side, opts in sides.items():
                runs[side].append(run(store, args.workdir, model, (side, opts), args.epochs, where))
        figures: dict[str, Any] = {
            side: {k: median(rs, k) for k in ("peak_rss_mib", "wall_s", "cpu_s")} | {"runs": rs}
            for side, rs in runs.items()
            if rs
        }
        if len(figures) == 2:
            a, b = figures["memory"], figures["stream"]
            figures["rss_saved_mib"] = round(a["peak_rss_mib"] - b["peak_rss_mib"], 1)
            figures["wall_ratio"] = round(b["wall_s"] / a["wall_s"], 3)
        out[model] = figures
    if args.cold:
        out["disk"] = disk_rate(store)
        uncache(store)
        cold = ("stream", memory_sides(args)["stream"])
        out["cold_stream"] = run(store, args.workdir, args.model, cold, args.epochs, where)
    if args.corpus == "msp-podcast":
        out["projected"] = projected(out, held, args.model)
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))


def memory_sides(args: argparse.Namespace) -> dict[str, list[str]]:
    """Each side's memory options: every row in memory (the default budget), streamed
    under --budget (beside a GPU, with --host-memory: pinned host memory would hold
    them), and on a GPU the rows in pinned host memory (--budget alone)."""
    stream = ["--memory-budget", args.budget]
    if args.host_memory:
        stream += ["--host-memory", args.host_memory]
    sides = {"memory": [], "stream": stream}
    if args.device.startswith("cuda"):
        sides["host"] = ["--memory-budget", args.budget]
    return sides


def projected(out: dict[str, Any], held: dict[str, Any], model: str) -> dict[str, Any]:
    """The streamed epoch at the real corpus's `MSP_HOURS`: this store's streamed epoch
    (the median of the last epochs of the stream side's runs) scaled by the hours, and
    the floor the disk sets (its bytes at the cold read rate), where measured."""
    runs = out.get(model, {}).get("stream", {}).get("runs", [])
    epochs = [r["epoch_s"][-1] for r in runs if r.get("epoch_s")]
    if not epochs:
        return {}
    scale = MSP_HOURS / held["hours"]
    found = {"epoch_s": statistics.median(epochs), "hours": MSP_HOURS, "scale": round(scale, 2)}
    found["epoch_s_full_size"] = round(found["epoch_s"] * scale, 1)
    if "disk" in out:
        found["disk_bound_s"] = round(held["full_size_bytes"] / (out["disk"]["mb_per_s"] * 1e6), 1)
    return found


if __name__ == "__main__":
    main()
