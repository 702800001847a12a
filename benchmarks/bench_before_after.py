"""The CPU benchmarks on this checkout against the code before a change, side by side.

A refactor that moves code must not slow what users run. This runs a set of the CPU
benchmarks of this folder, each as its own checkout has it (`<checkout>/benchmarks/X.py`
with `PYTHONPATH=<checkout>`, so each side runs its own `ser`, in this one interpreter and
its packages), A B B A per benchmark (A: the baseline, B: this checkout), so a load
that comes and goes falls on both alike. Per run: the command's wall seconds, the CPU
seconds of its process tree (user + system, `resource.RUSAGE_CHILDREN`: steadier than
the wall when other work shares the cores) and the benchmark's own timings where it
prints JSON (each `*_s`: what its README section reports, without the set-up the whole
command also times, such as writing a corpus). Per benchmark: after / before of the
medians of each figure, and of each back-to-back pair's wall and CPU. One JSON object.

    git worktree add --detach /tmp/before <commit>
    .venv/bin/python benchmarks/bench_before_after.py --baseline /tmp/before       # ~25 min
    .venv/bin/python benchmarks/bench_before_after.py --baseline /tmp/before --only corpus

The benchmarks run at small sizes (`BENCHES`): these time the code paths, not the
figures their own sections in README.md report at full size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
# name: the script and its arguments ({work}: a fresh folder of its own). Each reads a
# corpus kind, trains through the heads and the execution policy, reports or predicts.
BENCHES: dict[str, tuple[str, ...]] = {
    "corpus": ("bench_corpus.py", "--utterances", "40000", "--runs", "1"),
    "emobox": ("bench_emobox.py", "--utterances", "20000", "--runs", "1"),
    "attributes": ("bench_attributes.py", "cost", "--epochs", "2"),
    "corpora": ("bench_corpora.py", "--repeats", "1", "--msmser-epochs", "3",
                "--fusion-epochs", "6"),
    "predict": ("bench_predict.py", "--workdir", "{work}", "--epochs", "1", "--sample", "4",
                "--commands", "1"),
    "cross-corpus": ("bench_cross_corpus.py", "--utterances", "1500"),
}  # fmt: skip


def seconds(obj: object, path: str = "") -> dict[str, float]:
    """The benchmark's own timings in its JSON: every number under a key ending in `_s`,
    by its path (``runs.0.read_s``)."""
    if isinstance(obj, dict):
        return {
            k: v for key, value in obj.items() for k, v in seconds(value, f"{path}{key}.").items()
        }
    if isinstance(obj, list):
        return {
            k: v for n, value in enumerate(obj) for k, v in seconds(value, f"{path}{n}.").items()
        }
    key = path.rstrip(".")
    if isinstance(obj, bool) or not isinstance(obj, int | float) or not key.endswith("_s"):
        return {}
    return {key: float(obj)}


def run_once(checkout: Path, args: tuple[str, ...]) -> dict[str, float]:
    """Wall and process-tree CPU seconds of one benchmark run from `checkout`, and the
    benchmark's own timings where it prints them as JSON (`seconds`)."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    with tempfile.TemporaryDirectory(prefix="ba-") as work:
        argv = [a.replace("{work}", work) for a in args]
        script = checkout / "benchmarks" / argv[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(script), *argv[1:]],
            cwd=work, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{script} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    try:
        own = seconds(json.loads(done.stdout))
    except json.JSONDecodeError:
        own = {}  # prints no one JSON object: the whole command's figures alone
    return {"wall": round(wall, 2), "cpu": round(cpu, 2), **own}


def compare(baseline: Path, args: tuple[str, ...], repeats: int) -> dict[str, object]:
    """A B B A ... `repeats` pairs; the after / before ratios of medians and of pairs."""
    order = [(baseline, HERE) if n % 2 == 0 else (HERE, baseline) for n in range(repeats)]
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    pairs: list[dict[str, float]] = []
    for first, second in order:
        timed = {side: run_once(side, args) for side in (first, second)}
        for side, figures in timed.items():
            runs["before" if side == baseline else "after"].append(figures)
        pairs.append({k: timed[HERE][k] / timed[baseline][k] for k in ("wall", "cpu")})
    shared = set.intersection(*(set(r) for r in runs["before"] + runs["after"]))
    ratio = {
        k: round(
            statistics.median(r[k] for r in runs["after"])
            / statistics.median(r[k] for r in runs["before"]),
            3,
        )
        for k in sorted(shared, key=lambda k: (k not in ("wall", "cpu"), k))
        if statistics.median(r[k] for r in runs["before"]) > 0
    }
    return {"runs": runs, "ratio": ratio, "pairs": [{k: round(v, 3) for k, v in p.items()}
                                                     for p in pairs]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of before")
    parser.add_argument("--repeats", type=int, default=2, help="pairs: 2 is A B B A")
    parser.add_argument("--only", default=",".join(BENCHES), help="benchmarks, by name")
    opts = parser.parse_args()
    names = [n for n in opts.only.split(",") if n]
    if unknown := [n for n in names if n not in BENCHES]:
        parser.error(f"unknown benchmarks {unknown}: choose from {', '.join(BENCHES)}")
    results = {}
    for name in names:
        results[name] = compare(opts.baseline.resolve(), BENCHES[name], opts.repeats)
        print(name, results[name]["ratio"], file=sys.stderr, flush=True)
    facts = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
             "baseline": str(opts.baseline), "load": os.getloadavg()}  # fmt: skip
    print(json.dumps({"machine": facts, "benchmarks": results}, indent=1))


if __name__ == "__main__":
    main()
