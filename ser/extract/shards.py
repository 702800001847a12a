"""Running shards: decode inputs, extract batch by batch, commit each shard atomically.

The same code runs in-process and inside dask workers, so both write the same bytes for
the same shard. Per-utterance problems (missing or unreadable audio, empty transcripts,
inputs an extractor rejects, NaN outputs) become failures with their reason; only the
bad input fails, never its batch.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ser.cache.manifest import SPAN, Manifest
from ser.corpus.audio import AudioError, Clip, load_audio
from ser.extract.base import ExtractionError, Extractor, FeatureSetSpec
from ser.extract.plan import Shard
from ser.runtime.precision import autocast

# Audio (a file or a clip of one; None: missing from the corpus) or a transcript (None:
# ASR failed on it).
Source = Path | Clip | str | None
Decoded = tuple[dict[int, Any], dict[int, str]]  # inputs and failures by manifest index
# One batch's rows and failures by set name, then manifest index; and a stream of them.
BatchResult = tuple[dict[str, dict[int, np.ndarray]], dict[str, dict[int, str]]]
Computed = Iterator[BatchResult]

# Batches decoded ahead of the one computing: enough to hide decoding behind compute.
PREFETCH = 2


@dataclass(frozen=True)
class ShardJob:
    """One shard to extract: where its inputs are and where each feature set goes."""

    shard: Shard
    sources: dict[int, Source]
    writers: dict[str, Any]  # set name -> the store's picklable `ShardWriter`
    dtypes: dict[str, str]  # stored dtype per set: rows are cast here, halving a shard's memory


def audio_sources(manifest: Manifest, root: Path) -> list[Path | Clip | None]:
    """Each row's audio: its wav, absolute (dask workers may run elsewhere, in another
    working directory), or the part of it the row's span says; None for no wav."""
    paths = [root.resolve() / str(w) if str(w) else None for w in manifest.column("wav")]
    if SPAN[0] not in manifest.names:
        return list(paths)
    ends = zip(manifest.column(SPAN[0]).tolist(), manifest.column(SPAN[1]).tolist(), strict=True)
    return [
        Clip(path, start, end) if path is not None and math.isfinite(start) else path
        for path, (start, end) in zip(paths, ends, strict=True)
    ]


def make_jobs(
    shards: Iterable[Shard],
    specs: Sequence[FeatureSetSpec],
    sources: Sequence[Source],
    writers: dict[str, Any],
    done: dict[str, set[int]],
) -> list[ShardJob]:
    """Jobs for the shards some feature set still lacks (each job writes only those)."""
    dtypes = {spec.name: str(spec.attrs.get("dtype", "float32")) for spec in specs}
    jobs = []
    for shard in shards:
        names = [spec.name for spec in specs if shard.shard_id not in done[spec.name]]
        if names:
            inputs = {i: sources[i] for i in shard.indices}
            jobs.append(ShardJob(shard, inputs, {name: writers[name] for name in names}, dtypes))
    return jobs


def run_jobs(
    extractor: Extractor,
    jobs: Sequence[ShardJob],
    device: torch.device,
    computed: Computed | None = None,
) -> Iterator[tuple[ShardJob, tuple[int, ...], bool]]:
    """Extract and commit `jobs` in order (the extractor loaded on `device`), decoding
    ahead in a background thread; yield (job, batch, committed) after every batch,
    committed true once the job's shard is. `computed`: each batch's results from
    elsewhere, in order (`ser.extract.processes`); shards commit here."""
    work = [(job, batch) for job in jobs for batch in job.shard.batches]
    results = computed if computed is not None else _in_process(extractor, work, device)
    rows: dict[str, dict[int, np.ndarray]] = {}
    failures: dict[str, dict[int, str]] = {}
    current: ShardJob | None = None
    paired = zip(work, results, strict=True)
    for position, ((job, batch), (batch_rows, batch_failures)) in enumerate(paired):
        if job is not current:
            current = job
            rows = {name: {} for name in job.writers}
            failures = {name: {} for name in job.writers}
        for name in job.writers:
            rows[name].update(batch_rows[name])
            failures[name].update(batch_failures[name])
        last = position + 1 == len(work) or work[position + 1][0] is not job
        if last:
            for name, writer in job.writers.items():
                writer.write(job.shard.shard_id, rows[name], failures[name])
        yield job, batch, last


def _in_process(
    extractor: Extractor, work: list[tuple[ShardJob, tuple[int, ...]]], device: torch.device
) -> Iterator[BatchResult]:
    for job, _, decoded in _decoded(extractor, work):
        yield compute_batch(extractor, job, decoded, device)


def _decoded(
    extractor: Extractor, work: list[tuple[ShardJob, tuple[int, ...]]]
) -> Iterator[tuple[ShardJob, tuple[int, ...], Decoded]]:
    # libsndfile, FFmpeg (PyAV) and soxr release the GIL: one thread decodes while torch computes.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ser-decode") as pool:
        submitted = (
            (job, batch, pool.submit(decode, extractor, job.sources, batch)) for job, batch in work
        )
        ahead = deque(itertools.islice(submitted, PREFETCH))
        for decoding in submitted:  # each batch yielded with PREFETCH more submitted
            ahead.append(decoding)
            job, batch, future = ahead.popleft()
            yield job, batch, future.result()
        for job, batch, future in ahead:
            yield job, batch, future.result()


def decode(extractor: Extractor, sources: dict[int, Source], batch: Sequence[int]) -> Decoded:
    """Inputs of `batch` ready for `extractor` (audio at its rate, or text), and the
    reason for each audio file that cannot be read."""
    inputs: dict[int, Any] = {}
    failures: dict[int, str] = {}
    for index in batch:
        source = sources[index]
        if extractor.modality == "text" and source is None:
            # Only ASR text has None: a row the recogniser could not transcribe.
            failures[index] = "no ASR transcript: its audio could not be transcribed"
        elif extractor.modality == "text":
            # An empty transcript is still text: the encoders give its [CLS] [SEP] rows.
            inputs[index] = str(source)
        elif source is None:
            failures[index] = "no wav file for this utterance in the corpus"
        else:
            try:
                inputs[index] = load_audio(source, extractor.sample_rate or 16000)
            except AudioError as error:
                failures[index] = str(error)
    return inputs, failures


def compute_batch(
    extractor: Extractor, job: ShardJob, decoded: Decoded, device: torch.device
) -> BatchResult:
    """Rows (cast to the stored dtypes) and failures of one decoded batch, per set of
    `job`: what a shard's commit needs of it, small enough to send between processes."""
    inputs, bad = decoded
    outputs, rejected = forward(extractor, list(inputs.items()), device)
    rows: dict[str, dict[int, np.ndarray]] = {name: {} for name in job.writers}
    failures = {name: {**bad, **rejected} for name in job.writers}
    for index, output in outputs.items():
        for name in job.writers:
            value, problem = _checked(output[name], job.dtypes[name])
            if problem is None:
                rows[name][index] = value
            else:
                failures[name][index] = problem
    return rows, failures


def forward(
    extractor: Extractor, items: list[tuple[int, Any]], device: torch.device
) -> tuple[dict[int, dict[str, np.ndarray]], dict[int, str]]:
    """Outputs by index, and the reason for each input that failed. An input the
    extractor rejects is dropped and the rest re-run together; if the batch raises
    anything else, each input runs alone so one bad input fails only itself."""
    if not items:
        return {}, {}
    try:
        with torch.inference_mode(), autocast(device):
            results = extractor.extract([value for _, value in items])
        return {index: result for (index, _), result in zip(items, results, strict=True)}, {}
    except ExtractionError as error:
        rejected = {items[pos][0]: why for pos, why in error.failures.items()}
        rest = [item for pos, item in enumerate(items) if pos not in error.failures]
        if len(rest) == len(items):  # rejected nothing of ours: a broken extractor
            raise
        outputs, more = forward(extractor, rest, device)
        return outputs, {**rejected, **more}
    except Exception as error:
        if len(items) == 1:
            return {}, {items[0][0]: f"{type(error).__name__}: {error}"}
        outputs, failed = {}, {}
        for item in items:
            one, why = forward(extractor, [item], device)
            outputs.update(one)
            failed.update(why)
        return outputs, failed


def _checked(value: np.ndarray, dtype: str) -> tuple[np.ndarray, str | None]:
    """`value` cast to the stored dtype, or the reason it cannot be stored."""
    if value.ndim != 2 or value.shape[0] == 0:
        return value, f"no feature rows (output shape {tuple(value.shape)}): input too short?"
    if not np.isfinite(value).all():
        return value, "the model produced NaN or infinite values"
    stored = np.ascontiguousarray(value, dtype=dtype)
    if not np.isfinite(stored).all():
        return value, f"values beyond the {dtype} range"
    return stored, None
