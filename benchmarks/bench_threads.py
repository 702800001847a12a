"""CPU threads on a shared machine: old defaults against new, alone and beside a busy process.

Each case is a `ser` command in a new process, timed wall to wall: quiet (nothing of
ours beside it) and contended (one CPU-bound Python busy loop beside it), with

- old: `ser` of another checkout (`--baseline DIR`, e.g. `git archive 4af4072 ser`):
  torch's default threads (one per core) and GNU OpenMP's default spinning waits;
- new: this checkout, whose threads come from `ser.runtime.threads` (the CPU budget, brief
  waiting set by the `ser` command), fixed for the run.

Cases, on the demo corpus (`ser demo-corpus`, 413 utterances in the 4-class set) and
its store (tiny HuBERT / MPNet / BERT from `ser.synth.tiny`, and IS13):

- ``dialog``: the fusion study's model, `ser train --fusion add --fusion-at logits --loss
  perspective`, session5, 3 seeds, 40 epochs (the demo's);
- ``msmser``: MSMSER at demo size (`--d-model 64 --heads 4 --queries 8`), 3 seeds, 3 epochs;
- ``is13`` and ``hubert``: `ser extract` of IS13 (openSMILE) and the tiny HuBERT into a
  new store.

With `--late`: a busy process that starts once the run is under way (the cores were
idle when it chose its threads), MSMSER at demo size for 12 epochs: quiet, the busy loop
from the start, the busy loop from `--late` x the quiet time on with the defaults (the
count fixed for the run). `--threads follow`, once measured here, was removed:
results that follow the machine's load break "same command, same numbers".

A run that passes `--timeout` seconds is stopped and shown as ">T". Prints a table:
quiet, contended, contended / quiet, and new / old quiet; the targets are contended
within 1.3x of quiet and new quiet at most 10 % above old quiet. For training cases also
the new defaults' quiet run with `--threads 1` against their own quiet run: beside one
busy process on 2 cores a run has one core, so that ratio is the least contended / quiet
can be. Other jobs on the
machine shift every figure: the load averages are printed with them.

    git archive 4af4072 ser | tar -x -C /tmp/old      # the old defaults
    .venv/bin/python benchmarks/bench_threads.py --baseline /tmp/old --workdir /tmp/bt
    .venv/bin/python benchmarks/bench_threads.py --late 0.25 --cases --workdir /tmp/bt

Figures and commands: benchmarks/README.md, "What does a busy neighbour cost a run?".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checkout import checkout_path

ROOT = Path(__file__).resolve().parents[1]  # this checkout: the new defaults
COMMON = ("--classes", "4", "--protocol", "session5", "--seed", "0", "--seeds", "3",
          "--device", "cpu", "--overwrite", "--json")  # fmt: skip
TRAIN = {
    "dialog": ("--features", "is13+bert", "--fusion", "add", "--fusion-at", "logits",
               "--loss", "perspective", "--epochs", "40"),
    "msmser": ("--features", "hubert+mpnet", "--fusion", "mit", "--d-model", "64",
               "--heads", "4", "--queries", "8", "--epochs", "3", "--batch-size", "16",
               "--lr", "5e-4"),
}  # fmt: skip
LONG = ("--features", "hubert+mpnet", "--fusion", "mit", "--d-model", "64", "--heads", "4",
        "--queries", "8", "--epochs", "12", "--batch-size", "16", "--lr", "5e-4")  # fmt: skip
EXTRACT = ("is13", "hubert")
BUSY = "while True: pass"


@dataclass(frozen=True)
class Paths:
    corpus: Path
    models: Path
    store: Path


def ser(*args: str) -> list[str]:
    """`python -m ser.cli ARGS`; `_run` picks the checkout it imports."""
    return [sys.executable, "-m", "ser.cli", *args]


def setup(workdir: Path) -> Paths:
    """The demo corpus, the tiny models and a store of every feature set (kept for reuse)."""
    paths = Paths(workdir / "IEMOCAP_full_release", workdir / "models", workdir / "features.zarr")
    if not paths.corpus.exists():
        _run(ROOT, ser("demo-corpus", str(paths.corpus), "--seed", "0"), workdir)
    if not paths.models.exists():
        _run(ROOT, [sys.executable, "-m", "ser.synth.tiny", str(paths.models)], workdir)
    done = workdir / "features.done"
    if not done.exists():
        _run(ROOT, ser(*_extract_args(paths, "hubert,mpnet,bert,is13", paths.store)), workdir)
        done.touch()
    return paths


def _extract_args(paths: Paths, features: str, store: Path) -> list[str]:
    return [
        "extract", str(paths.corpus), "--store", str(store), "--features", features,
        "--hubert-model", str(paths.models / "tiny-hubert"), "--mpnet-model",
        str(paths.models / "tiny-mpnet"), "--bert-model", str(paths.models / "tiny-bert"),
        "--layers", "last", "--classes", "4", "--quiet",
    ]  # fmt: skip


def _run(checkout: Path, command: list[str], cwd: Path, timeout: float | None = None) -> str:
    # PYTHONPATH picks the checkout; the working directory holds no `ser` to shadow it.
    env = {
        **os.environ,
        "PYTHONPATH": checkout_path(checkout),
        "TRANSFORMERS_VERBOSITY": "error",
    }
    env.pop("OMP_NUM_THREADS", None)  # the defaults under test decide
    env.pop("OMP_WAIT_POLICY", None)
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode not in (0, 1):  # 1: extraction failures, still a finished run
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return done.stdout + done.stderr


def case_command(case: str, checkout: Path, paths: Paths, workdir: Path) -> list[str]:
    if case in TRAIN:
        out = workdir / f"runs_{checkout.name}"
        return ser("train", "--store", str(paths.store), "--out", str(out),
                   "--name", case, *COMMON, *TRAIN[case])  # fmt: skip
    store = workdir / f"{case}_{checkout.name}.zarr"
    shutil.rmtree(store, ignore_errors=True)
    return ser(*_extract_args(paths, case, store))


def timed(
    case: str,
    checkout: Path,
    paths: Paths,
    workdir: Path,
    busy: bool,
    timeout: float,
    *,
    after: float = 0.0,
    command: list[str] | None = None,
) -> float:
    """Wall seconds of one case (inf past `timeout`), beside a busy loop when `busy`
    (started `after` seconds into the run)."""
    if command is None:
        command = case_command(case, checkout, paths, workdir)  # removes an old store first
    rivals: list[subprocess.Popen[bytes]] = []
    timer = threading.Timer(
        after, lambda: rivals.append(subprocess.Popen([sys.executable, "-c", BUSY]))
    )
    if busy:
        timer.start()
    try:
        start = time.perf_counter()
        try:
            _run(checkout, command, workdir, timeout)
        except subprocess.TimeoutExpired:
            return float("inf")
        return time.perf_counter() - start
    finally:
        if busy:
            timer.cancel()
            timer.join()
        for rival in rivals:
            rival.kill()
            rival.wait()


def late(args: argparse.Namespace, paths: Paths) -> str:
    """The `--late` table (module doc)."""
    base = ser("train", "--store", str(paths.store), "--out", str(args.workdir / "runs_late"),
               "--name", "late", *COMMON, *LONG)  # fmt: skip
    times: dict[str, float] = {}

    def run(name: str, busy: bool, after: float = 0.0, extra: tuple[str, ...] = ()) -> None:
        times[name] = timed("late", ROOT, paths, args.workdir, busy, args.timeout,
                            after=after, command=[*base, *extra])  # fmt: skip
        print(f"  late {name}: {times[name]:.1f} s", file=sys.stderr, flush=True)

    run("quiet", False)
    after = args.late * times["quiet"]
    run("busy from the start", True)
    run(f"busy from {after:.1f} s, default (fixed)", True, after)
    lines = ["| MSMSER demo, 12 epochs | s | / quiet |", "|---|---:|---:|"]
    lines += [f"| {k} | {v:.1f} | {v / times['quiet']:.2f}x |" for k, v in times.items()]
    return "\n".join(lines)


def bench(args: argparse.Namespace, paths: Paths) -> list[dict[str, Any]]:
    rows = []
    checkouts = {"old": args.baseline, "new": ROOT} if args.baseline else {"new": ROOT}
    for case in args.cases:
        for name, checkout in checkouts.items():
            row: dict[str, Any] = {"case": case, "defaults": name}
            for busy in (False, True):
                load = os.getloadavg()[0]
                seconds = timed(case, checkout, paths, args.workdir, busy, args.timeout)
                row["contended" if busy else "quiet"] = seconds
                row["load_before_" + ("contended" if busy else "quiet")] = load
                print(f"  {case} {name} {'contended' if busy else 'quiet'}: {seconds:.1f} s "
                      f"(load {load:.2f})", file=sys.stderr, flush=True)  # fmt: skip
            if case in TRAIN and name == "new":  # one core's speed: the best beside a rival
                command = [*case_command(case, checkout, paths, args.workdir), "--threads", "1"]
                row["one_thread"] = timed(case, checkout, paths, args.workdir, False,
                                          args.timeout, command=command)  # fmt: skip
            rows.append(row)
    return rows


def table(rows: list[dict[str, Any]], timeout: float) -> str:
    def secs(value: float) -> str:
        return f">{timeout:.0f}" if value == float("inf") else f"{value:.1f}"

    def ratio(a: float, b: float) -> str:
        inf = float("inf")
        if a == inf and b == inf:
            return "?"
        if a == inf:
            return f">{timeout / b:.1f}x"
        if b == inf:
            return f"<{a / timeout:.2f}x"
        return f"{a / b:.2f}x"

    quiet_old = {r["case"]: r["quiet"] for r in rows if r["defaults"] == "old"}
    lines = [
        "| case | defaults | quiet s | contended s | contended / quiet | new / old quiet "
        "| 1 thread quiet / quiet |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        old = quiet_old.get(r["case"])
        versus = ratio(r["quiet"], old) if r["defaults"] == "new" and old else ""
        lines.append(
            f"| {r['case']} | {r['defaults']} | {secs(r['quiet'])} | {secs(r['contended'])} "
            f"| {ratio(r['contended'], r['quiet'])} | {versus} "
            f"| {ratio(r['one_thread'], r['quiet']) if 'one_thread' in r else ''} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_threads"))
    parser.add_argument("--baseline", type=Path, default=None, help="checkout of the old `ser`")
    parser.add_argument(
        "--late",
        type=float,
        default=None,
        metavar="SHARE",
        help="also the late-rival table, the rival starting at SHARE of the quiet time",
    )
    parser.add_argument("--cases", nargs="*", default=["dialog", "msmser", *EXTRACT],
                        choices=[*TRAIN, *EXTRACT])  # fmt: skip
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per run")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = parser.parse_args()
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.baseline:
        args.baseline = args.baseline.resolve()
    started = time.perf_counter()
    paths = setup(args.workdir)
    print(f"setup: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    sys.path.insert(0, str(ROOT))
    from ser.runtime.threads import cpu_budget, default_threads

    budget = cpu_budget()
    rows = bench(args, paths)
    if rows:
        print(table(rows, args.timeout))
    if args.late is not None:
        print(late(args, paths))
    print(
        f"\nnew defaults here: {default_threads(budget, brief=True).source}; old: torch's "
        f"{os.cpu_count()} threads, spinning waits. Load average at the end "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; the whole bench "
        f"{time.perf_counter() - started:.0f} s."
    )
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
