"""One extraction figure of `gpu_figures.py`: `ser extract`'s library entry point over a
corpus into a new store, timed from the model loaded (its "loaded ..." line) to the store
committed, after a small extraction of the same kind has warmed the device. Imports
nothing but `ser`'s entry points, so that the code before (on PYTHONPATH) runs it too.
`--profile`: the torch profiler over the timed pass (top operations, the GPU's busy time).
`laid_out_s`: of the pass, the seconds laying staged shards out into the store (each row
written a second time), so a slow pass says whether staging or laying out is the cost.
`--front-end conv|matmul`, `--positional conv|matmul`: how the wav2vec2 family's batched
conv front end and positional conv run (`ser.extract.wav2vec2.FRONT_END`, `POSITIONAL`;
default: the code's own).

    python benchmarks/gpu_extract.py CORPUS --warm WARM --options '{"kind": "hubert", ...}'
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

import ser.extract.run as extract_run
import ser.extract.wav2vec2 as wav2vec2
from ser.cache import FeatureStore
from ser.extract.run import ExtractConfig, extract_features


class Stamped(io.StringIO):
    """A console's file that notes when the model-load line was written."""

    loaded: float | None = None

    def write(self, text: str) -> int:
        if self.loaded is None and "loaded " in text:
            self.loaded = time.perf_counter()
        return super().write(text)


def config(options: dict[str, Any], device: str) -> ExtractConfig:
    kind = options.pop("kind")
    return ExtractConfig(features=(kind,), options={kind: options}, device=device, progress=False)


class LayoutTimer:
    """Seconds spent in `ser.extract.run.lay_out` while installed (where the code has it)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.original: Any = getattr(extract_run, "lay_out", None)

    def __enter__(self) -> LayoutTimer:
        if self.original is not None:
            extract_run.lay_out = self.timed
        return self

    def __exit__(self, *exc: object) -> None:
        if self.original is not None:
            extract_run.lay_out = self.original

    def timed(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.original(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started


def extract(corpus: Path, store: Path, settings: ExtractConfig) -> tuple[float, float, Any]:
    """(pass seconds from the load line, the call's seconds, the report)."""
    stamped = Stamped()
    started = time.perf_counter()
    report = extract_features(corpus, store, settings, Console(file=stamped, width=200))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    ended = time.perf_counter()
    return ended - (stamped.loaded or started), ended - started, report


def profiled(corpus: Path, store: Path, settings: ExtractConfig) -> dict[str, Any]:
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA]
    started = time.perf_counter()
    with profile(activities=activities) as prof:
        extract(corpus, store, settings)
    wall = time.perf_counter() - started
    kernels = [e for e in prof.events() if e.device_type.name == "CUDA"]
    busy = sum(e.device_time_total for e in kernels) / 1e6
    table = prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=15)
    return {"wall_s": round(wall, 2), "gpu_busy_s": round(busy, 2),
            "gpu_idle_fraction": round(1 - busy / wall, 3), "table": table}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--warm", type=Path, required=True, help="a small corpus to warm up on")
    parser.add_argument("--options", required=True, help="JSON: kind, model, layers, pool...")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--front-end", choices=["conv", "matmul"], help="[the code's default]")
    parser.add_argument("--positional", choices=["conv", "matmul"], help="[the code's default]")
    args = parser.parse_args()
    if args.front_end:
        wav2vec2.FRONT_END = args.front_end
    if args.positional:
        wav2vec2.POSITIONAL = args.positional
    work = Path(tempfile.mkdtemp(prefix="gpu-extract-"))
    try:
        extract(args.warm, work / "warm.zarr", config(json.loads(args.options), args.device))
        settings = config(json.loads(args.options), args.device)
        if args.profile:
            print(json.dumps(profiled(args.corpus, work / "f.zarr", settings)))
            return
        with LayoutTimer() as layout:
            pass_s, call_s, report = extract(args.corpus, work / "f.zarr", settings)
        store = FeatureStore.open(work / "f.zarr")
        audio = float(np.sum(store.manifest.column("duration")))
        written = sum(s.bytes for s in report.sets)
        print(json.dumps({
            "xrt": round(audio / pass_s, 1), "pass_s": round(pass_s, 2),
            "call_s": round(call_s, 2), "laid_out_s": round(layout.seconds, 2),
            "audio_s": round(audio, 1),
            "utterances": report.n_utterances, "failures": len(report.failures),
            "sets": len(report.sets), "bytes": written,
            "write_mb_s": round(written / pass_s / 1e6, 1),
            "front_end": getattr(wav2vec2, "FRONT_END", "conv"),
            "positional": getattr(wav2vec2, "POSITIONAL", "conv"),
        }))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
