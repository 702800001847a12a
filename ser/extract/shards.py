"""Shards of work: their inputs decoded, each batch launched on the extractor and its
outputs checked for the store (`ser.extract.pipeline` runs them, committing each shard
atomically).

The same code runs in-process, on spawned processes and inside dask workers, so all write
the same bytes for the same shard. Per-utterance problems (missing or unreadable audio,
empty transcripts, inputs an extractor rejects, NaN outputs) become failures with their
reason; only the bad input fails, never its batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ser.cache.manifest import SPAN, Manifest
from ser.corpus.audio import AudioError, Clip, audio_info, load_audio
from ser.corpus.files import opened, shown
from ser.extract.base import ExtractionError, Extractor, FeatureSetSpec, Pending
from ser.extract.plan import Shard
from ser.extract.views import Viewed
from ser.runtime.precision import autocast

# Audio (a file or a clip of one, or either as a view sees it; None: missing from the
# corpus) or a transcript (None: ASR failed on it).
Source = Path | Clip | Viewed | str | None
Decoded = tuple[dict[int, Any], dict[int, str]]  # inputs and failures by manifest index
# One batch's rows and failures by set name, then manifest index; and a stream of them.
BatchResult = tuple[dict[str, dict[int, np.ndarray]], dict[str, dict[int, str]]]
Computed = Iterator[BatchResult]


@dataclass(frozen=True)
class ShardJob:
    """One shard to extract: where its inputs are and where each feature set goes."""

    shard: Shard
    sources: dict[int, Source]
    writers: dict[str, Any]  # set name -> the store's picklable `ShardWriter`
    dtypes: dict[str, str]  # stored dtype per set: rows are cast here, halving a shard's memory
    # The utterances of the shard's part its batches leave out: read back, not extracted.
    kept: tuple[int, ...] = ()


def audio_sources(manifest: Manifest, root: Path) -> list[Path | Clip | None]:
    """Each row's audio: its wav, absolute (dask workers may run elsewhere, in another
    working directory), or the part of it the row's span says; None for no wav."""
    paths = [opened(root.resolve() / str(w)) if str(w) else None for w in manifest.column("wav")]
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
    """Jobs for the shards some feature set still lacks (each job writes only those),
    without the batches a part of the shard holds for each of those sets (a run stopped
    part way: `ShardWriter.write_part`), but its last: the shard is written with it."""
    dtypes = {spec.name: str(spec.attrs.get("dtype", "float32")) for spec in specs}
    jobs = []
    for shard in shards:
        names = [spec.name for spec in specs if shard.shard_id not in done[spec.name]]
        if names:
            ours = {name: writers[name] for name in names}
            left, kept = _left(shard, [w.part_indices(shard.shard_id) for w in ours.values()])
            inputs = {i: sources[i] for i in left.indices}
            jobs.append(ShardJob(left, inputs, ours, dtypes, kept))
    return jobs


def _left(shard: Shard, parts: list[set[int]]) -> tuple[Shard, tuple[int, ...]]:
    """`shard` without its batches (but the last) whose utterances every set's part holds,
    and those utterances."""
    if len(shard.batches) < 2:
        return shard, ()
    held = set.intersection(*parts)
    *before, last = shard.batches
    done = [b for b in before if held.issuperset(b)]
    rest = tuple(b for b in before if not held.issuperset(b))
    return Shard(shard.shard_id, (*rest, last)), tuple(i for b in done for i in b)


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
            rate = extractor.sample_rate or 16000
            try:
                if (why := _too_long(extractor, source)) is not None:
                    failures[index] = why  # said before decoding it: it may be hours
                elif isinstance(source, Viewed):
                    inputs[index] = source.load(rate)
                else:
                    inputs[index] = load_audio(source, rate)
            except AudioError as error:
                failures[index] = str(error)
    return inputs, failures


def _too_long(extractor: Extractor, source: Path | Clip | Viewed | str) -> str | None:
    """Why `extractor` refuses the audio of `source` for its length, by the file's header
    (a view's audio is measured once decoded, by `Extractor.check_lengths`)."""
    if extractor.length_limit() is None or isinstance(source, Viewed):
        return None
    seconds = source.end - source.start if isinstance(source, Clip) else audio_info(source).seconds
    why = extractor.too_long(seconds)
    where = source if isinstance(source, Clip) else shown(source)
    return None if why is None else f"audio file {where}: {why}"


def compute_batch(
    extractor: Extractor, job: ShardJob, decoded: Decoded, device: torch.device
) -> BatchResult:
    """Rows (cast to the stored dtypes) and failures of one decoded batch, per set of
    `job`: what a shard's commit needs of it, small enough to send between processes."""
    with torch.inference_mode():
        return finish(job, decoded, launch(extractor, list(decoded[0].items()), device))


@dataclass(frozen=True)
class Launched:
    """A batch on its way: its inputs' outputs pending in groups (a group per forward
    call that succeeded), and the reason for each input that failed."""

    groups: list[tuple[list[int], Pending]]
    rejected: dict[int, str]


def launch(extractor: Extractor, items: list[tuple[int, Any]], device: torch.device) -> Launched:
    """`forward`'s batch launched without waiting for its outputs: an input the
    extractor rejects is dropped and the rest re-run together; if the batch raises
    anything else, each input runs alone so one bad input fails only itself."""
    if not items:
        return Launched([], {})
    try:
        with autocast(device):
            pending = extractor.extract_pending([value for _, value in items])
        return Launched([([index for index, _ in items], pending)], {})
    except ExtractionError as error:
        rejected = {items[pos][0]: why for pos, why in error.failures.items()}
        rest = [item for pos, item in enumerate(items) if pos not in error.failures]
        if len(rest) == len(items):  # rejected nothing of ours: a broken extractor
            raise
        more = launch(extractor, rest, device)
        return Launched(more.groups, {**rejected, **more.rejected})
    except Exception as error:
        if len(items) == 1:
            return Launched([], {items[0][0]: f"{type(error).__name__}: {error}"})
        groups, failed = [], {}
        for item in items:
            one = launch(extractor, [item], device)
            groups += one.groups
            failed.update(one.rejected)
        return Launched(groups, failed)


def finish(job: ShardJob, decoded: Decoded, launched: Launched) -> BatchResult:
    """A launched batch's rows by set (cast to the stored dtypes and checked) and
    failures, once its outputs are on the host."""
    bad = {**decoded[1], **launched.rejected}
    rows: dict[str, dict[int, np.ndarray]] = {name: {} for name in job.writers}
    failures = {name: dict(bad) for name in job.writers}
    for indices, pending in launched.groups:
        outputs = pending.result()
        for pos, index in enumerate(indices):
            problems = None if outputs.problems is None else outputs.problems[pos]
            for name in job.writers:
                if problems is None:
                    value, problem = _checked(outputs.rows[pos][name], job.dtypes[name])
                else:  # checked where they were computed
                    problem = problems.get(name)
                    value = outputs.rows[pos][name] if problem is None else _NONE
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


_NONE = np.zeros((0, 0), np.float32)  # a failed set's rows: none


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
