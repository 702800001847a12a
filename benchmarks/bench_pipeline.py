"""Is extraction's wall time its slowest stage's, not the sum of its stages?

A stand-in encoder of fixed latency plays the GPU: each batch's outputs are ready
`--latency` seconds after the previous batch's, computed on a device queue of its own
(one thread, as a GPU stream runs its kernels in order) while the caller goes on. The
rest is ser's own pipeline (`ser.extract.pipeline.run_jobs`) on an IEMOCAP-shaped corpus
of real 16 kHz wavs into a real Zarr store: decoding threads, the launching thread, the
writer committing shards of 768-d fp16 frames (HuBERT-base's last layer at 50 a second).

Shards of 64 utterances (the runner's are 256: a corpus of IEMOCAP's size has 40) give an
hour of audio the shards a long extraction has; the last shard's commit and the first
batch's decode are what no pipeline can overlap. Each stage is timed alone first
(decode: every batch decoded on the pipeline's threads; compute: the latency x the
batches; write: every shard committed from ready outputs),
then the pipeline, then a loop doing the stages one after another (what extraction did
on a GPU before: `sequential_s`). By default the latency makes the device as slow as
decoding, where overlap is hardest to get. Target: `wall_s` <= 1.15 x `slowest_stage_s`.

    .venv/bin/python benchmarks/bench_pipeline.py --json
    .venv/bin/python benchmarks/bench_pipeline.py --minutes 20 --latency 0.05 --decoders 2
    .venv/bin/python benchmarks/bench_pipeline.py --shapes   # conv shapes a shard meets
    .venv/bin/python benchmarks/bench_pipeline.py --sets 13 --minutes 10 --writers 1

`--sets N`: every layer's frames (HuBERT-base: 13 sets, 3.5 GB an hour) with the compute
free, so the host's stages are all there is: the pipeline staging each shard's sets on
`--writers` threads (default: `write_threads`), then the sets laid out as the runner
does (on as many threads where the store lets threads write sets side by side), against
the disk's own sequential write speed measured beside it (1 GiB, then fsync). It runs
on an older checkout too (PYTHONPATH): one writer needs nothing it lacks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_extract import durations, write_corpus

from ser.cache import FeatureStore, Manifest
from ser.corpus.registry import read_corpus
from ser.extract.base import Extractor, FeatureSetSpec, Outputs, Pending
from ser.extract.pipeline import StageTimes, run_jobs
from ser.extract.plan import DEFAULT_BATCH_SECONDS, plan_shards
from ser.extract.shards import audio_sources, decode, finish, launch, make_jobs

CPU = torch.device("cpu")
DIM, RATE, FRAMES_A_SECOND = 768, 16000, 50


class StandIn(Extractor):
    """A fixed-latency encoder: a batch's frames land `latency` s after the last batch's."""

    kind = "standin"
    modality = "audio"

    def __init__(self, latency: float, sets: int = 1) -> None:
        self.latency, self.sets = latency, sets
        self.device = ThreadPoolExecutor(max_workers=1, thread_name_prefix="standin-device")

    @property
    def sample_rate(self) -> int:
        return RATE

    def specs(self) -> list[FeatureSetSpec]:
        attrs = {"extractor": "standin", "modality": "audio", "level": "frame", "dim": DIM,
                 "dtype": "float16", "frame_shift": 1 / FRAMES_A_SECOND}  # fmt: skip
        if self.sets == 1:
            return [FeatureSetSpec("standin", attrs)]
        return [FeatureSetSpec(f"standin.L{k}", attrs) for k in range(self.sets)]

    def load(self, device: torch.device) -> None:
        pass

    def extract(self, batch: Sequence[Any]) -> list[dict[str, np.ndarray]]:
        return self.extract_pending(batch).result().rows

    def extract_pending(self, batch: Sequence[Any]) -> Pending:
        counts = [len(wave) * FRAMES_A_SECOND // RATE for wave in batch]
        future = self.device.submit(self._compute, counts)
        return Pending(future.result)

    def _compute(self, counts: list[int]) -> Outputs:
        time.sleep(self.latency)
        names = [spec.name for spec in self.specs()]
        rows = [{name: np.zeros((n, DIM), np.float16) for name in names} for n in counts]
        return Outputs(rows, [{} for _ in counts])


def corpus(work: Path, minutes: float) -> tuple[FeatureStore, list[Any]]:
    """An IEMOCAP-shaped corpus of `minutes` of audio and a new store of it."""
    root = work / "IEMOCAP_full_release"
    write_corpus(root, durations(minutes * 60))
    _, reading = read_corpus(root)
    manifest = Manifest.from_utterances(reading.utterances, reading.root)
    store = FeatureStore.create(work / "f.zarr", manifest)
    return store, list(audio_sources(store.manifest, reading.root))


def jobs_for(
    store: FeatureStore, sources: list[Any], extractor: StandIn, name: str, shard_size: int
) -> list[Any]:
    """The jobs of a new feature set `name`: the runner's GPU plan (240 s batches)."""
    specs = extractor.specs()  # its outputs' names; written into the sets `name`(.Lk)
    writers = {}
    for spec in specs:
        stored = name + spec.name.removeprefix("standin")
        store.begin_feature_set(stored, spec.attrs)
        writers[spec.name] = store.shard_writer(stored)
    seconds = [float(d) for d in store.manifest.column("duration")]
    plan = plan_shards(seconds, DEFAULT_BATCH_SECONDS["cuda"], shard_size)
    done: dict[str, set[int]] = {spec.name: set() for spec in specs}
    return make_jobs(plan.shards, specs, sources, writers, done)


def decode_alone(extractor: StandIn, jobs: list[Any], decoders: int) -> tuple[float, list[Any]]:
    work = [(job, batch) for job in jobs for batch in job.shard.batches]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=decoders) as pool:
        decoded = list(pool.map(lambda w: decode(extractor, w[0].sources, w[1]), work))
    return time.perf_counter() - start, decoded


def write_alone(extractor: StandIn, jobs: list[Any], decoded: list[Any]) -> float:
    """Every shard committed from ready outputs (the copy done, nothing to wait for)."""
    ready = StandIn(0.0)
    start, position = time.perf_counter(), 0
    for job in jobs:
        rows: dict[int, np.ndarray] = {}
        for _ in job.shard.batches:
            inputs = decoded[position]
            position += 1
            result = finish(job, inputs, launch(ready, list(inputs[0].items()), CPU))
            rows.update(result[0]["standin"])
        job.writers["standin"].write(job.shard.shard_id, rows, {})
    ready.device.shutdown()
    return time.perf_counter() - start


def sequential(extractor: StandIn, jobs: list[Any]) -> float:
    """The stages one after another: decode, compute, wait, write, batch by batch."""
    start = time.perf_counter()
    for job in jobs:
        rows: dict[int, np.ndarray] = {}
        for batch in job.shard.batches:
            inputs = decode(extractor, job.sources, batch)
            launched = launch(extractor, list(inputs[0].items()), CPU)
            rows.update(finish(job, inputs, launched)[0]["standin"])
        job.writers["standin"].write(job.shard.shard_id, rows, {})
    return time.perf_counter() - start


def measure(
    minutes: float, latency: float | None, decoders: int, shard_size: int, work: Path
) -> dict[str, Any]:
    store, sources = corpus(work, minutes)
    probe = StandIn(0.0)
    jobs = jobs_for(store, sources, probe, "alone", shard_size)
    n_batches = sum(len(job.shard.batches) for job in jobs)
    decode_s, decoded = decode_alone(probe, jobs, decoders)
    write_s = write_alone(probe, jobs, decoded)
    latency = decode_s / n_batches if latency is None else latency
    device = StandIn(latency)
    stats, piped = StageTimes(), jobs_for(store, sources, device, "piped", shard_size)
    start = time.perf_counter()
    for _ in run_jobs(device, piped, CPU, None, decoders, stats):
        pass
    wall = time.perf_counter() - start
    one_by_one = sequential(device, jobs_for(store, sources, device, "sequential", shard_size))
    stages = {"decode_s": decode_s, "compute_s": latency * n_batches, "write_s": write_s}
    slowest = max(stages.values())
    audio = float(np.sum(store.manifest.column("duration")))
    return {
        "wall_s": round(wall, 3),
        "slowest_stage_s": round(slowest, 3),
        "wall_over_slowest": round(wall / slowest, 3),
        "sequential_s": round(one_by_one, 3),
        "stages_alone": {k: round(v, 3) for k, v in stages.items()},
        "stages_in_pipeline": stats.record(),
        "latency_s": round(latency, 4),
        "batches": n_batches,
        "shards": len(jobs),
        "utterances": len(sources),
        "audio_s": round(audio, 1),
        "decoders": decoders,
        "load_average": os.getloadavg()[0],
    }


def layer_sets(
    minutes: float, sets: int, writers: int | None, decoders: int, shard_size: int, work: Path
) -> dict[str, Any]:
    """`sets` sets of 768-d fp16 frames staged through the pipeline (compute free), then
    laid out; the disk's own write speed beside it (module docstring)."""
    store, sources = corpus(work, minutes)
    device = StandIn(0.0, sets)
    jobs = jobs_for(store, sources, device, "frames", shard_size)
    if writers is None:
        from ser.runtime.execution import write_threads

        writers = write_threads(sets)
    options = {"writers": writers} if writers > 1 else {}  # an older run_jobs has one
    stats, start = StageTimes(), time.perf_counter()
    for _ in run_jobs(device, jobs, CPU, None, decoders, stats, **options):
        pass
    staged = time.perf_counter() - start
    names = [name for name in store.feature_sets() if name.startswith("frames")]
    threads = writers if getattr(store, "concurrent_sets", False) else 1
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda name: store.consolidate(name, len(jobs)), names))
    total = time.perf_counter() - start
    written = sum(store.info(name).bytes for name in names)
    disk = disk_write_mb_s(work)
    return {"sets": sets, "writers": writers, "layout_threads": threads,
            "staged_s": round(staged, 2), "laid_out_s": round(total - staged, 2),
            "total_s": round(total, 2), "bytes": written,
            "mb_s": round(written / total / 1e6, 1), "disk_write_mb_s": disk,
            "of_disk": round(written / total / 1e6 / disk, 3),
            "stages_in_pipeline": stats.record(), "load_average": os.getloadavg()[0]}  # fmt: skip


def disk_write_mb_s(folder: Path, size: int = 1 << 30) -> float:
    """The disk's own sequential write speed: `size` bytes in 16 MiB blocks, then fsync."""
    path, block = folder / "disk-probe", os.urandom(16 << 20)
    start = time.perf_counter()
    with path.open("wb") as handle:
        for _ in range(size // len(block)):
            handle.write(block)
        handle.flush()
        os.fsync(handle.fileno())
    seconds = time.perf_counter() - start
    path.unlink()
    return round(size / seconds / 1e6, 1)


def conv_shapes(hours: float = 7.0) -> dict[str, Any]:
    """The conv front end's input shapes per 256-utterance shard of IEMOCAP-shaped audio
    in the GPU's batches: one per utterance before (each ran alone), (batch size, bucketed
    length) pairs now (`ser.extract.wav2vec2.bucket_length`)."""
    from ser.extract.wav2vec2 import bucket_length

    seconds = durations(hours * 3600)
    plan = plan_shards(seconds, DEFAULT_BATCH_SECONDS["cuda"], 256)
    before, after = [], []
    for shard in plan.shards:
        samples = [[round(seconds[i] * RATE) for i in batch] for batch in shard.batches]
        before.append(len({n for batch in samples for n in batch}))
        after.append(len({(len(batch), bucket_length(max(batch))) for batch in samples}))
    return {"utterances": len(seconds), "shards": len(plan.shards),
            "shapes_a_shard_before": round(float(np.mean(before)), 1),
            "shapes_a_shard_after": round(float(np.mean(after)), 1),
            "most_a_shard_after": max(after)}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="audio in the corpus")
    parser.add_argument("--shard-size", type=int, default=64, help="utterances a shard")
    parser.add_argument("--latency", type=float, help="device seconds a batch [decode's]")
    parser.add_argument("--decoders", type=int, default=1, help="decoding threads")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--workdir", type=Path, help="keep the corpus and store here")
    parser.add_argument("--shapes", action="store_true", help="conv shapes a shard, then stop")
    parser.add_argument("--sets", type=int, help="every layer's frames: this many sets")
    parser.add_argument("--writers", type=int, help="--sets: writing threads [write_threads]")
    args = parser.parse_args(argv)
    if args.shapes:
        print(json.dumps(conv_shapes()))
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        if args.sets:
            result = layer_sets(
                args.minutes, args.sets, args.writers, args.decoders, args.shard_size, work
            )
        else:
            result = measure(args.minutes, args.latency, args.decoders, args.shard_size, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
