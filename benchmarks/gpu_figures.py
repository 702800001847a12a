"""The GPU's figures in one call (`bash benchmarks/gpu.sh`): extraction from audio file to
committed store, `make features` over 7 hours, paper-size MSMSER leave-one-session-out,
profiles of both; the code before beside today's where it fits (`--before DIR`, a copy
of that commit's `ser`). Each figure runs in a process of its own under the time left
(`--budget`), in order of importance; the JSON is written again after each, so a call cut
short keeps what it measured. `--tiny --device cpu` runs the same path small on a CPU.

What each figure times:
- `extract_*_xrt`: audio seconds over the seconds from the model loaded to the store
  committed (decoding, compute, copies, writing, consolidation and checksums: `ser
  extract`'s own pass, in a process whose GPU is warm from a first small extraction);
  `*_xrt_cold` over the whole process (start, imports, weights hashed and loaded).
- `make_features_7h_s`: `ser extract --features hubert,mpnet,bert,is13,logmel` over 7 h
  of IEMOCAP-shaped audio, a new process into a new store, start to exit.
- `msmser_*`: `benchmarks/bench_train.py msmser --size paper` (its docstring) on a fifth
  of IEMOCAP's 5531 utterances (`SUBSET`), each way of training in its own process:
  `msmser_paper_epoch_s` is its steady epoch scaled to all 5531 (an epoch's steps follow
  the utterances), `msmser_paper_loso100_s_projected` 100 such epochs plus what the run
  spent beside its steady epochs (set-up, compilation, graph capture, testing).
- `*_conv`: the same extraction with the conv front end on cuDNN's convs, not matrix
  products (`ser.extract.wav2vec2.FRONT_END`), beside the default's in the same call;
  `*_positional`: with the positional conv as products too (`POSITIONAL`).
- `finetune_hubert_base`: `benchmarks/bench_finetune.py --size paper` (its docstring):
  HuBERT-base's top 2 layers and a head trained from the cached layer 10, against from
  audio through the whole encoder; `finetune_recompute_over_cache` is how many times the
  cache's step a step from audio takes (bottom layers under no_grad; target >= 3x).
- `budget_msp_podcast`: `benchmarks/bench_budget.py --corpus msp-podcast` (its docstring):
  the paper's MSMSER on 10 h of MSP-Podcast-shaped HuBERT-base frames (2.8 GB), each
  row on the GPU, in pinned host memory, and streamed (`--memory-budget 1GB --host-memory
  512MB`), a fresh `ser train` each, two epochs; `projected.epoch_s_full_size` is the
  streamed epoch scaled to the corpus's 230 h, `disk_bound_s` its bytes at the cold read rate.

    python benchmarks/gpu_figures.py --out $OUT/gpu.json --before .before --budget 480
    python benchmarks/gpu_figures.py --tiny --device cpu --out /tmp/g.json --budget 600
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gpu_data
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WARM_SECONDS = 30.0  # the small extraction that warms a figure's GPU first
IEMOCAP = 5531  # labelled utterances of the 4-class set: an MSMSER epoch's
SUBSET = 1106  # of them, what each MSMSER figure trains on (its epoch scaled to IEMOCAP's)
HOURS = {"warm": WARM_SECONDS / 3600, "1h": 1.0, "30min": 0.5, "7h": 7.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the JSON file, or its folder")
    parser.add_argument("--before", type=Path, help="the code before: a folder holding ser/")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for it all")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny models, minutes of audio")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu-figures"))
    parser.add_argument("--only", default="", help="step names, comma-separated, in order")
    args = parser.parse_args()
    Figures(args).run()


class Figures:
    """The steps, their results, and the clock."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.deadline = args, time.monotonic() + args.budget
        self.scale = 0.01 if args.tiny else 1.0
        self.result: dict[str, Any] = {"facts": facts(args.device), "steps": {}, "skipped": []}

    def run(self) -> None:
        work = self.args.work
        started = time.monotonic()
        self.models = gpu_data.models(work / "models", self.args.tiny)
        self.result["prepare_s"] = round(time.monotonic() - started, 1)
        self.save()
        only = list(filter(None, self.args.only.split(",")))  # in the order given
        steps = self.steps()
        if only:
            steps = sorted((s for s in steps if s[0] in only), key=lambda s: only.index(s[0]))
        for name, limit, step in steps:
            left = self.deadline - time.monotonic()
            if left < min(limit, 30):
                self.result["skipped"].append(f"{name}: {left:.0f} s left")
                continue
            begun = time.monotonic()
            try:
                found = step(min(limit, left))
            except Exception as error:  # one figure failing must not lose the others
                found = {"error": f"{type(error).__name__}: {error}"[-2000:]}
            found["step_s"] = round(time.monotonic() - begun, 1)
            self.result["steps"][name] = found
            self.save()
        self.save()  # the steps skipped for time too

    def corpus(self, name: str) -> Path:
        """Corpus `name` of `HOURS`, made on first use (the warm-up's seconds kept as is)."""
        seconds = HOURS[name] * 3600 * (1.0 if name == "warm" else self.scale)
        gpu_data.corpus(self.args.work / name, seconds)
        return self.args.work / name

    def steps(self) -> list[tuple[str, float, Callable[[float], dict[str, Any]]]]:
        m = self.models
        hubert = {"kind": "hubert", "model": str(m["hubert"])}
        wavlm = {"kind": "speech", "model": str(m["wavlm"])}
        mean = {"layers": "all", "pool": "mean", "pooled_only": True}
        frames = {**hubert, "layers": "all"}
        return [
            ("profile_train", 120, self.profile_train),
            ("msmser_paper_graphed_stacked", 150,
             self.msmser(["--step", "graphed", "--members-at-once", "1000000"])),
            ("msmser_paper_graphed", 150, self.msmser(["--step", "graphed"])),
            ("msmser_paper", 150, self.msmser(["--step", "eager"])),
            ("finetune_hubert_base", 120, self.finetune),
            ("budget_msp_podcast", 420, self.budget),
            ("extract_hubert_base_last", 90, self.extraction("1h", hubert)),
            ("extract_hubert_base_last_positional", 90,
             self.extraction("1h", hubert, positional=True)),
            ("msmser_paper_compiled", 400, self.msmser(["--step", "compiled"])),
            ("extract_hubert_base_all_frames", 90, self.extraction("1h", frames)),
            ("extract_hubert_base_all_mean", 90, self.extraction("1h", {**hubert, **mean})),
            ("extract_hubert_base_last_conv", 90, self.extraction("1h", hubert, conv=True)),
            ("msmser_paper_stacked", 150, self.msmser(["--step", "eager",
                                                       "--members-at-once", "1000000"])),
            ("extract_wavlm_large_last", 90, self.extraction("1h", wavlm)),
            ("make_features_7h", 180, self.make_features),
            ("disk_write", 30, self.disk_write),
            ("before_extract_hubert_base_last", 60, self.extraction("30min", hubert, True)),
            ("before_extract_hubert_base_all_mean", 60,
             self.extraction("30min", {**hubert, **mean}, True)),
            ("profile_extract", 60, self.profile_extract),
        ]  # fmt: skip

    def extraction(
        self,
        corpus: str,
        options: dict[str, Any],
        before: bool = False,
        conv: bool = False,
        positional: bool = False,
    ) -> Callable[[float], dict[str, Any]]:
        """One `gpu_extract.py` figure; `before`: with the code before on PYTHONPATH;
        `conv`: the conv front end on cuDNN's convs; `positional`: the positional conv as
        products."""

        def step(limit: float) -> dict[str, Any]:
            if before and self.args.before is None:
                return {"error": "no --before checkout"}
            command = [sys.executable, str(HERE / "gpu_extract.py"), str(self.corpus(corpus)),
                       "--warm", str(self.corpus("warm")), "--options", json.dumps(options),
                       "--device", self.args.device]  # fmt: skip
            if conv:
                command += ["--front-end", "conv"]
            if positional:
                command += ["--positional", "matmul"]
            return run_json(command, limit, self.args.before if before else None)

        return step

    def msmser(self, extra: list[str]) -> Callable[[float], dict[str, Any]]:
        def step(limit: float) -> dict[str, Any]:
            size = ["--size", "demo", "--utterances", "200"] if self.args.tiny else []
            epochs, subset = 2, 200 if self.args.tiny else SUBSET
            command = [sys.executable, str(HERE / "bench_train.py"), "msmser", "--size", "paper",
                       "--utterances", str(subset), *size, "--device", self.args.device,
                       "--seeds", "1", "--epochs", str(epochs), "--json", *extra]  # fmt: skip
            # torch's own word on CUDA graphs it skipped (and why), kept with the figures
            found = run_json(command, limit, hints=True)
            found.update(scaled(found.get("default", {}), IEMOCAP / subset, epochs))
            return found

        return step

    def finetune(self, limit: float) -> dict[str, Any]:
        size = (
            ["--size", "demo", "--steps", "2"]
            if self.args.tiny
            else ["--size", "paper", "--steps", "20"]
        )
        command = [sys.executable, str(HERE / "bench_finetune.py"), *size,
                   "--device", self.args.device, "--repeats", "3", "--json"]  # fmt: skip
        return run_json(command, limit)

    def budget(self, limit: float) -> dict[str, Any]:
        """Where a run's rows live, side by side on the GPU (`bench_budget.py`)."""
        tiny = ("2", "msmser-audio", "200MB", "100MB")
        hours, model, budget, host = (
            tiny if self.args.tiny else ("10", "msmser-paper-audio", "1GB", "512MB")
        )
        command = [sys.executable, str(HERE / "bench_budget.py"), "--workdir",
                   str(self.args.work / "budget"), "--corpus", "msp-podcast", "--hours", hours,
                   "--model", model, "--budget", budget, "--device", self.args.device,
                   "--repeats", "1", "--epochs", "2", "--cold", "--json"]  # fmt: skip
        if self.args.device.startswith("cuda"):  # the CPU's budget is host memory
            command += ["--host-memory", host]
        return run_json(command, limit)

    def make_features(self, limit: float) -> dict[str, Any]:
        m, store = self.models, self.args.work / "make-features.zarr"
        corpus = self.corpus("7h")  # made before the clock starts, then out of the cache
        subprocess.run(["rm", "-rf", str(store)], check=False)
        drop_page_cache()
        command = [sys.executable, "-m", "ser.cli", "extract", str(corpus),
                   "--store", str(store), "--features", "hubert,mpnet,bert,is13,logmel",
                   "--hubert-model", str(m["hubert"]), "--mpnet-model", str(m["mpnet"]),
                   "--bert-model", str(m["bert"]), "--device", self.args.device]  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit)
        seconds = time.monotonic() - started
        tail = (done.stdout + done.stderr)[-3000:]
        if done.returncode:
            return {"error": f"exit {done.returncode}", "log": tail}
        audio = gpu_data.corpus(corpus, HOURS["7h"] * 3600 * self.scale)  # kept: its seconds
        return {"make_features_7h_s": round(seconds, 1), "audio_s": audio, "log": tail}

    def disk_write(self, limit: float) -> dict[str, Any]:
        """The disk's own sequential write speed: 2 GiB in 16 MiB blocks, then fsync."""
        path, block = self.args.work / "disk-probe", os.urandom(16 << 20)
        started = time.monotonic()
        with path.open("wb") as handle:
            for _ in range(128 if not self.args.tiny else 4):
                handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
        seconds = time.monotonic() - started
        size = path.stat().st_size
        path.unlink()
        return {"disk_write_mb_s": round(size / seconds / 1e6, 1), "bytes": size}

    def profile_extract(self, limit: float) -> dict[str, Any]:
        options = json.dumps({"kind": "hubert", "model": str(self.models["hubert"])})
        command = [sys.executable, str(HERE / "gpu_extract.py"), str(self.corpus("30min")),
                   "--warm", str(self.corpus("warm")), "--options", options,
                   "--device", self.args.device, "--profile"]  # fmt: skip
        return run_json(command, limit)

    def profile_train(self, limit: float) -> dict[str, Any]:
        size = ["--size", "demo"] if self.args.tiny else []
        command = [sys.executable, str(HERE / "profile_train.py"), "--device", self.args.device,
                   "--seeds", "1", "--steps", "20", "--utterances", str(SUBSET),
                   *size]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit)
        return {"table": done.stdout[-6000:], "log": done.stderr[-1500:], "exit": done.returncode}

    def save(self) -> None:
        summary = headline(self.result["steps"])
        out, facts = self.args.out, self.result["facts"]
        if out.is_dir() or not out.suffix:  # a folder: named by the day and the card
            out = out / f"gpu-{facts['date']}-{facts['card_slug']}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({**facts, **summary, **self.result}, indent=1)
        out.write_text(text + "\n")


def headline(steps: dict[str, Any]) -> dict[str, Any]:
    """The figures the issue names, from the steps that gave them."""
    out: dict[str, Any] = {}
    for name in ("extract_hubert_base_last", "extract_hubert_base_all_mean",
                 "extract_hubert_base_all_frames", "extract_wavlm_large_last"):  # fmt: skip
        for key, figure in ((name, f"{name}_xrt"), (f"before_{name}", f"before_{name}_xrt"),
                            (f"{name}_conv", f"{name}_xrt_conv"),
                            (f"{name}_positional", f"{name}_xrt_positional")):  # fmt: skip
            if "xrt" in steps.get(key, {}):
                out[figure] = steps[key]["xrt"]
    for step in (
        "msmser_paper",
        "msmser_paper_graphed",
        "msmser_paper_graphed_stacked",
        "msmser_paper_compiled",
        "msmser_paper_stacked",
    ):
        found, how = steps.get(step, {}), step.removeprefix("msmser_paper")
        for key in ("msmser_paper_epoch_s", "msmser_paper_loso100_s_projected", "mfu"):
            if key in found:  # the default's as named; the others' with their way
                out[("msmser_mfu" if key == "mfu" else key) + how] = found[key]
    for name in ("recompute_over_cache", "recompute_grad_over_cache"):
        if name in steps.get("finetune_hubert_base", {}):
            out[f"finetune_{name}"] = steps["finetune_hubert_base"][name]
    for key, figure in (("epoch_s_full_size", "msp_podcast_streamed_epoch_s_projected"),
                        ("disk_bound_s", "msp_podcast_disk_bound_epoch_s")):  # fmt: skip
        if key in steps.get("budget_msp_podcast", {}).get("projected", {}):
            out[figure] = steps["budget_msp_podcast"]["projected"][key]
    for step, key in (
        ("make_features_7h", "make_features_7h_s"),
        ("disk_write", "disk_write_mb_s"),
    ):
        if key in steps.get(step, {}):
            out[key] = steps[step][key]
    return out


def scaled(run: dict[str, Any], scale: float, epochs: int) -> dict[str, Any]:
    """A run's figures for IEMOCAP: its steady epoch times `scale` (the utterances' ratio),
    and 100 of them plus what the run spent beside its steady epochs."""
    if "steady_epoch_s" not in run:
        return {}
    steady, wall = run["steady_epoch_s"], run["wall"]
    epoch, beside = steady * scale, wall - epochs * steady
    return {"msmser_paper_epoch_s": round(epoch, 2), "scaled_by": round(scale, 3),
            "beside_epochs_s": round(beside, 1),
            "msmser_paper_loso100_s_projected": round(beside + 100 * epoch, 1)}  # fmt: skip


def run_json(
    command: list[str], limit: float, code: Path | None = None, hints: bool = False
) -> dict[str, Any]:
    """`command`'s last JSON line on stdout (`code`: the checkout on PYTHONPATH; `hints`:
    with torch's performance hints, their lines on CUDA graphs kept)."""
    env = dict(os.environ)
    if code is not None:  # first on the path: its ser wins; the wheels stay reachable
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(code.resolve()), env.get("PYTHONPATH")])
        )
    if hints:
        env["TORCH_LOGS"] = "perf_hints"
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit, env=env)
    except subprocess.TimeoutExpired as stopped:
        err = stopped.stderr or ""
        err = err.decode(errors="replace") if isinstance(err, bytes) else err
        # What a run cut short printed as it went ("default: {...}" lines of bench_train).
        partial = {m[1]: json.loads(m[2]) for m in re.finditer(r"^(\w+): (\{.*\})$", err, re.M)}
        return {"error": f"timed out after {limit:.0f} s", **partial, "log": err[-2000:]}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"error": f"exit {done.returncode}", "log": done.stderr[-3000:]}
    process_s = round(time.monotonic() - started, 2)
    found = {**json.loads(lines[-1]), "process_s": process_s, "log": done.stderr[-800:]}
    if hints:
        notes = [line for line in done.stderr.splitlines() if "cudagraph" in line.lower()]
        found["cudagraph_notes"] = list(dict.fromkeys(notes))[:12]
    return found


def drop_page_cache() -> bool:
    """A cold start: the kernel's page cache dropped (root only; False where refused)."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def facts(device: str) -> dict[str, Any]:
    card = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu"
    # A device call's copy of the checkout keeps another HEAD in .git (or none): the
    # caller names the commit measured (gpu.sh: SER_COMMIT, from `git rev-parse` here).
    commit = os.environ.get("SER_COMMIT", "")
    return {
        "card": card,
        "card_slug": re.sub(r"[^a-z0-9]+", "-", card.lower()).strip("-"),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu_cores": os.cpu_count(),
        "commit": commit or None,
        "date": time.strftime("%Y-%m-%d"),
    }


if __name__ == "__main__":
    main()
