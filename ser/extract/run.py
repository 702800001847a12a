"""The extraction runner: a corpus root of any kind -> feature sets in a store, resumable.

Cheap checks first, so a finished command is a no-op: read the corpus, open the store and
take its lock, declare every extractor's feature sets (fingerprint check, no weights on
any device), and stop if all are complete. Otherwise, per extractor: plan, print the disk
estimate, load the model once, extract the missing shards (in-process or on dask), and
consolidate. Before the passes, the utterances' audio prints go into the manifest where
it has none (`ser.extract.audio_prints`). With `--augment`, each audio extractor runs one
more pass per view, into sets of their own (`ser.extract.views`). `ExtractConfig` and
`ExtractReport` are `config.py`'s, re-exported here.
With ``repair``, the store's damaged metadata is written anew from its copies and a damaged
manifest from the corpus (`mend_store`), then complete sets are checked (`FeatureStore.damage`):
the plan's shards holding damaged utterances are extracted again and their rows written
straight back into their place (`FeatureStore.repair_writer`, then `FeatureStore.repair`),
and a set whose damage they cannot mend is extracted anew.

>>> import tempfile
>>> from pathlib import Path
>>> from ser.synth.corpus import SynthConfig, write_corpus
>>> from ser.synth.tiny import build_tiny_models
>>> work = Path(tempfile.mkdtemp())
>>> _ = write_corpus(work / "corpus", SynthConfig(dialogs_per_session=1))
>>> models = build_tiny_models(work / "models")
>>> config = ExtractConfig(features=("hubert", "logmel"), progress=False,
...                        options={"hubert": {"model": str(models.hubert)}})
>>> report = extract_features(work / "corpus", work / "f.zarr", config)
>>> report.extracted
('tiny-hubert.L2', 'logmel80')
>>> extract_features(work / "corpus", work / "f.zarr", config).nothing_to_do
True
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from ser.cache import Damage, FeatureStore, ShardWriter
from ser.cache.atomic import writing
from ser.cache.fingerprint import fingerprint, provenance
from ser.cache.manifest import AUDIO_PRINT
from ser.cache.repair import repair_outcome
from ser.cache.repair_writer import RepairWriter
from ser.cache.scattered import ScatteredWriter
from ser.corpus.audio import Lengths
from ser.corpus.options import ReadOptions
from ser.corpus.registry import read_corpus
from ser.errors import StoreError
from ser.extract.asr_text import AsrPass, declare_asr, run_asr, transcript_summary
from ser.extract.audio_prints import add_prints, refuse_changed_audio
from ser.extract.base import Extractor, FeatureSetSpec
from ser.extract.config import ExtractConfig, ExtractReport, make_report
from ser.extract.dask_run import run_jobs_dask
from ser.extract.decoded_lengths import count_lengths
from ser.extract.pipeline import run_jobs
from ser.extract.plan import (
    DEFAULT_BATCH_SECONDS,
    DEFAULT_BATCH_TOKENS,
    Shard,
    ShardPlan,
    audio_seconds,
    estimate_bytes,
    long_utterances,
    peak_bytes,
    plan_shards,
    standing_still,
    still_indices,
)
from ser.extract.processes import batches_on_processes
from ser.extract.progress import Underway, print_estimate, progress_bar
from ser.extract.registry import KINDS, build_extractor
from ser.extract.row_counts import UNKNOWN, predicted_sets
from ser.extract.shards import ShardJob, Source, audio_sources, make_jobs
from ser.extract.store_setup import mend_store, open_store
from ser.extract.views import View, refuse_unchanged, view_spec_of, viewed
from ser.runtime.cluster import dask_client
from ser.runtime.device import pick_device
from ser.runtime.execution import Execution, decode_threads, for_extraction, write_threads
from ser.runtime.precision import resolve_precision
from ser.runtime.progress import log_console, read_progress
from ser.runtime.threads import ThreadChoice, run_threads
from ser.runtime.units import human_bytes

Advance = Callable[[int], None]  # moves the progress bar by n utterances


@dataclass
class _Pass:
    """One extractor's pass: its options, its sets (`specs`: its specs(), or as a view
    names them), which are still incomplete, and the store's name of each (`stored`: a
    set found under an older name by fingerprint)."""

    extractor: Extractor
    options: dict[str, Any]
    specs: list[FeatureSetSpec]
    pending: list[FeatureSetSpec]
    stored: dict[str, str]  # spec name -> the name its set has in the store
    view: View | None = None  # --augment: the extractor's sets of its audio in this view
    # --repair: complete sets among `pending` whose damaged utterances are re-extracted,
    # and what each repair found (`FeatureStore.repair`); by spec name.
    repairs: dict[str, Damage] = field(default_factory=dict)
    repaired: dict[str, bool | None] = field(default_factory=dict)
    # By spec name: the rows each utterance will give the sets written straight into the
    # store (`row_counts`: every count known, not a repair); the others are staged.
    counts: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def found(self) -> list[tuple[str, str]]:
        """(spec name, stored name) of each set kept under its older name."""
        return [(name, old) for name, old in self.stored.items() if name != old]


def extract_features(
    corpus_root: str | Path,
    store_path: str | Path,
    config: ExtractConfig,
    console: Console | None = None,
) -> ExtractReport:
    """Extract `config.features` for the corpus into the store (created when missing);
    `StoreLocked`, or `FingerprintMismatch` for a set with other provenance (no overwrite)."""
    started = time.perf_counter()
    console = console or log_console(quiet=not config.progress)
    device = pick_device(config.device)
    options = ReadOptions(config.audio_root)
    with read_progress(console, config.progress and not console.quiet) as told:
        kind, reading = read_corpus(corpus_root, config.corpus, config.classes, options, told)
    attrs = {**kind.attrs(reading), "classes": config.classes}
    with writing(store_path, "the feature store"):  # a full disk: one line, resumable
        store = open_store(Path(store_path), reading, attrs, config.repair)
    with store.lock(), writing(store.path, "the store's sets"):
        mended = mend_store(store, reading) if config.repair else []
        printed = AUDIO_PRINT in store.manifest.names
        # The audio the prints decode: the lengths its headers cannot say, for nothing.
        decoded = add_prints(store, reading.root, console, config.repair, config.progress)
        asr = None
        if config.text_source == "asr":
            asr = declare_asr(store, config)
            if config.repair and not asr.pending and store.check_transcripts(asr.name):
                store.delete_transcripts(asr.name)  # damaged: transcribed anew
                asr = declare_asr(store, config)
        # Options every kind that has them gets: "auto" precision resolved once, for the
        # sets' attrs and every worker, and the ASR transcripts the text kinds read.
        run_wide = {
            "precision": resolve_precision(config.precision, device, "extract"),
            "transcripts": asr.source if asr is not None else None,
        }
        held = set(store.feature_sets())
        passes = [p for kind in config.features for p in _declare(store, kind, config, run_wide)]
        todo = [p for p in passes if p.pending]
        transcribed = asr is not None and asr.pending
        if printed and (transcribed or any(p.extractor.modality == "audio" for p in todo)):
            shown = console if config.progress else None
            decoded |= refuse_changed_audio(store, reading.root, held, shown)
        if todo or transcribed:
            threads = torch.get_num_threads()
            try:
                _run_passes(store, reading.root, todo, config, device, console, asr, decoded)
            finally:
                torch.set_num_threads(threads)
    names = [p.stored[spec.name] for p in passes for spec in p.specs]
    summary = None if asr is None else transcript_summary(store, asr.name, transcribed)
    written = [p.stored[s.name] for p in todo for s in p.pending if s.name not in p.repairs]
    report = make_report(store, names, written, started, summary)
    repaired = [
        repair_outcome(p.stored[n], p.repairs[n], outcome)
        for p in passes
        for n, outcome in p.repaired.items()
    ]
    found = tuple(pair for p in passes for pair in p.found)
    said = tuple((p.utt_id, p.problem) for p in reading.problems)
    return dataclasses.replace(
        report, found=found, repaired=(*mended, *repaired), corpus_problems=said
    )


def _declare(
    store: FeatureStore, kind: str, config: ExtractConfig, run_wide: dict[str, Any]
) -> list[_Pass]:
    """Build the extractor and begin its sets, and its views' (audio kinds only): the
    fingerprint check, before any load. A pass per view, the clean sets' first."""
    fields = KINDS[kind].fields
    options = {**{k: v for k, v in run_wide.items() if k in fields}, **config.options.get(kind, {})}
    extractor = build_extractor(kind, **options)
    views = config.views if extractor.modality == "audio" else ()
    # --name: the user's name wins; else a set an older ser named otherwise is found by its
    # fingerprint and kept as it is (names changed; its numbers did not).
    known = {} if options.get("name") else _fingerprints(store)
    return [_begin(store, extractor, options, config, view, known) for view in (None, *views)]


def _begin(
    store: FeatureStore,
    extractor: Extractor,
    options: dict[str, Any],
    config: ExtractConfig,
    view: View | None,
    by_fingerprint: dict[str, str],
) -> _Pass:
    """The pass of `extractor`'s sets (in `view`), each begun in the store (under the name
    a set of its fingerprint has there: `by_fingerprint`)."""
    specs = extractor.specs()
    if view is not None:
        specs = [FeatureSetSpec(*view_spec_of(s.name, s.attrs, view)) for s in specs]
    stored = {}
    for spec in specs:
        old = by_fingerprint.get(fingerprint(provenance(spec.attrs)))
        stored[spec.name] = old if old is not None and not config.overwrite else spec.name
        store.begin_feature_set(stored[spec.name], spec.attrs, overwrite=config.overwrite)
    repairs = _damaged(store, specs, stored) if config.repair else {}
    pending = [s for s in specs if s.name in repairs or not store.info(stored[s.name]).complete]
    return _Pass(extractor, options, specs, pending, stored, view, repairs)


def _fingerprints(store: FeatureStore) -> dict[str, str]:
    """Fingerprint -> the first (sorted) feature set of the store that has it."""
    found: dict[str, str] = {}
    for name in sorted(store.feature_sets()):
        with contextlib.suppress(StoreError):  # a damaged set: said when it is asked for
            found.setdefault(fingerprint(store.info(name).attrs), name)  # bookkeeping left out
    return found


def _damaged(
    store: FeatureStore, specs: list[FeatureSetSpec], stored: dict[str, str]
) -> dict[str, Damage]:
    """--repair: the damaged complete sets (`FeatureStore.begin_repair`), by spec name; one
    whose damage its utterances cannot mend is begun again, to be extracted whole."""
    found = {}
    for spec in specs:
        name = stored[spec.name]
        if not store.info(name).complete:
            continue
        damage = store.begin_repair(name)
        if damage.whole:  # deleted by begin_repair
            store.begin_feature_set(name, spec.attrs)
        elif damage:
            found[spec.name] = damage
    return found


def _run_passes(
    store: FeatureStore,
    root: Path,
    passes: list[_Pass],
    config: ExtractConfig,
    device: torch.device,
    console: Console,
    asr: AsrPass | None = None,
    decoded: Lengths | None = None,
) -> None:
    """The passes in turn, each set written at its place where every row count is known
    (`decoded`: the lengths of audio decoded before, by source), else staged and laid
    out after."""
    audio_paths = audio_sources(store.manifest, root)
    durations: list[float] = []
    texts: list[str | None] = [str(t) for t in store.manifest.column("transcript")]
    # Before the recogniser runs: it is torch work too.
    threads = run_threads(config.threads, workers=config.workers, scheduler=config.scheduler)
    if asr is not None:
        if asr.pending:
            durations = audio_seconds(audio_paths)
            run_asr(store, asr, audio_paths, durations, config, device, console)
        stored = store.read_transcripts(asr.name)
        texts = [None if i in stored.failures else t for i, t in enumerate(stored.texts)]
    if not passes:
        return
    if any(p.extractor.modality == "audio" and _placeable(p) for p in passes):
        shown = config.progress and not console.quiet
        decoded = count_lengths(audio_paths, decoded or {}, console, shown)
    ids = [str(u) for u in store.manifest.utt_ids]
    plans, sizes, by_pass, placed, lengths, inputs = [], [], [], [], [], []
    for p in passes:
        sources: Sequence[Source] = audio_paths if p.extractor.modality == "audio" else texts
        if p.view is not None:
            sources = viewed(audio_paths, ids, p.view)
        inputs.append(sources)
        p.counts = _predicted(p, sources, decoded or {})
        if p.extractor.modality == "audio":
            # Sorted by annotated duration (manifest), batched by the wav headers' seconds
            # as the model computes them (padded: Whisper's windows).
            durations = durations or audio_seconds(audio_paths)
            budget = config.batch_seconds or DEFAULT_BATCH_SECONDS[device.type]
            keys = [float(d) for d in store.manifest.column("duration")]
            # The shards are the clean sets' (keys); a speed view's batches its audio's length.
            seen = durations if p.view is None else [p.view.seconds(d) for d in durations]
            padded = [p.extractor.padded_seconds(d) for d in seen]
            plan = plan_shards(padded, budget, config.shard_size, sort_keys=keys)
            rows_by = seen  # the stored frames are the audio's, not the padding's
            lengths.append(seen)
        else:
            budget = config.batch_tokens or DEFAULT_BATCH_TOKENS[device.type]
            tokens = [float(n) for n in p.extractor.lengths([t or "" for t in texts])]
            plan = plan_shards(tokens, budget, config.shard_size)
            rows_by = tokens
            lengths.append([])
        plans.append(plan)
        ours = [
            (p.stored[spec.name], estimate_bytes(spec.attrs, rows_by))
            for spec in p.pending
            if spec.name not in p.repairs
        ]
        sizes += ours
        by_pass.append([size for _, size in ours])
        placed.append([s.name in p.counts for s in p.pending if s.name not in p.repairs])
    for line in long_utterances(ids, durations) if durations else []:
        console.print(f"[bold yellow]warning:[/] {line}", soft_wrap=True)  # one line
    peak = peak_bytes(by_pass, [len(plan.shards) for plan in plans], placed)
    print_estimate(console, sizes, Path(store.path), peak)
    with (
        dask_client(config.workers, config.scheduler) as client,
        progress_bar(console, config.progress) as bar,
    ):
        for p, plan, seconds, sources, pass_sizes, pass_placed in zip(
            passes, plans, lengths, inputs, by_pass, placed, strict=True
        ):
            label = p.extractor.kind if p.view is None else f"{p.extractor.kind} {p.view.spec}"
            allocated = sum(n for n, put in zip(pass_sizes, pass_placed, strict=True) if put)
            if store.backend == "hdf5" and allocated:
                # HDF5 writes a placed set's chunks as zeros when it creates it: a long,
                # otherwise silent step at MSP-Podcast's size.
                console.print(f"{label}: allocating ~{human_bytes(allocated)} in the HDF5 file")
            jobs = _jobs(store, p, plan, sources, config)
            task = bar.add_task(label, total=sum(len(job.shard) for job in jobs))
            advance: Advance = functools.partial(bar.advance, task)
            execution = _execution(p.extractor, jobs, config, device, threads)
            console.print(f"{label}: {execution.describe()}")
            underway = _underway(console, label, jobs, ids, seconds, config.progress)
            if client is None:
                with underway.running() if underway else contextlib.nullcontext():
                    landed = _landed(advance, underway)
                    _run_local(p.extractor, jobs, device, landed, console, execution)
            else:
                kind, count = p.extractor.kind, threads.count or None
                for n in run_jobs_dask(client, kind, p.options, config.device, jobs, count):
                    advance(n)
            laid_out = []
            for spec in p.pending:
                if spec.name in p.repairs:
                    name = p.stored[spec.name]
                    p.repaired[spec.name] = store.repair(name, p.repairs[spec.name])
                else:
                    laid_out.append(p.stored[spec.name])
            lay_out(store, laid_out, len(plan.shards), config.shard_size)
            if p.view is not None:
                refuse_unchanged(store, laid_out)


def _indices(jobs: Sequence[ShardJob]) -> list[int]:
    return [i for job in jobs for i in job.shard.indices]


def _jobs(
    store: FeatureStore, p: _Pass, plan: ShardPlan, sources: Sequence[Source], config: ExtractConfig
) -> list[ShardJob]:
    done = {spec.name: set(store.done_shards(p.stored[spec.name])) for spec in p.pending}
    repairing = {n: store.repair_writer(p.stored[n], d) for n, d in p.repairs.items()}
    left = _unrepaired(p, repairing)
    for name, damaged in left.items():  # only the shards holding damaged utterances
        done[name] = {s.shard_id for s in plan.shards if not damaged & set(s.indices)}
    shards = plan.shards
    if p.repairs and all(spec.name in p.repairs for spec in p.pending):
        # Repairs alone: of those shards, the batches holding damaged utterances, which
        # give the bytes they gave (an output depends on its batch, not on its shard).
        damaged = set().union(*left.values())
        shards = tuple(
            Shard(s.shard_id, tuple(b for b in s.batches if damaged & set(b))) for s in shards
        )
    for spec in p.pending:
        name = p.stored[spec.name]
        if done[spec.name] and max(done[spec.name]) >= len(plan.shards):
            # Shards of a run with another --shard-size: they would not tile this plan.
            if not config.overwrite:
                raise StoreError(replanned(name, config.shard_size, early=True))
            store.delete_feature_set(name)
            store.begin_feature_set(name, spec.attrs)
            done[spec.name] = set()
    # Keyed by the extractor's names (its outputs': a view's are its clean sets'), writing
    # into the stored sets.
    out = {spec.name: str(spec.attrs.get("view_of", spec.name)) for spec in p.pending}
    named = [dataclasses.replace(spec, name=out[spec.name]) for spec in p.pending]
    writers = {out[spec.name]: _writer(store, p, spec.name, repairing) for spec in p.pending}
    return make_jobs(shards, named, sources, writers, {out[k]: v for k, v in done.items()})


def _unrepaired(p: _Pass, repairing: Mapping[str, RepairWriter | None]) -> dict[str, set[int]]:
    """By spec name, the damaged utterances of each set repaired that are still to be
    extracted: those no record of a repair killed part way holds (`repairing`: each set's
    writer in place, its records; None: staged)."""
    left = {}
    for name, damage in p.repairs.items():
        writer = repairing[name]
        held = set(writer.covered()) if writer is not None else set()
        left[name] = set(damage.utterances) - held
    return left


def _placeable(p: _Pass) -> list[FeatureSetSpec]:
    """The pass's pending sets its rows may be placed in as a new set's: not a repair's
    (whose rows' places its set's offsets give: `FeatureStore.repair_writer`)."""
    return [spec for spec in p.pending if spec.name not in p.repairs]


def _predicted(p: _Pass, sources: Sequence[Source], lengths: Lengths) -> dict[str, np.ndarray]:
    """The row counts of the pass's placeable sets whose every count is known before
    extracting (`row_counts`; `lengths`: audio counted by decoding it), by spec name, in
    either format."""
    whole = _placeable(p)
    if not whole:
        return {}
    # The extractor names a view's sets as their clean ones: the same levels.
    counts = predicted_sets(p.extractor, whole, sources, lengths)
    return {name: rows for name, rows in counts.items() if not (rows == UNKNOWN).any()}


def _writer(
    store: FeatureStore, p: _Pass, name: str, repairing: Mapping[str, RepairWriter | None]
) -> ScatteredWriter | RepairWriter | ShardWriter:
    """Spec `name`'s writer: its rows straight into the store where their counts are
    known (`FeatureStore.scattered_writer`), a repair's where its set's chunks take them
    (`repairing`: `FeatureStore.repair_writer`'s), else its shards staged and laid out
    after the pass (`FeatureStore.consolidate`, a repair's `FeatureStore.repair`)."""
    placed: ScatteredWriter | RepairWriter | None = None
    if name in p.repairs:
        placed = repairing[name]
    elif name in p.counts:
        placed = store.scattered_writer(p.stored[name], p.counts[name])
    return placed or store.shard_writer(p.stored[name])


def _execution(
    extractor: Extractor,
    jobs: list[ShardJob],
    config: ExtractConfig,
    device: torch.device,
    threads: ThreadChoice,
) -> Execution:
    """`ser.runtime.execution`'s choice for one pass (a dask cluster's workers: theirs)."""
    if config.workers is not None or config.scheduler is not None:
        where = config.workers or 1  # under --scheduler: the cluster's own workers
        return Execution(where, threads.count, threads.source, cluster=True)
    return for_extraction(
        extractor.kind,
        uses_torch=extractor.uses_torch,
        batches=sum(len(job.shard.batches) for job in jobs),
        device=device.type,
        threads=threads,
        processes=config.processes,
        asked_threads=config.threads,
    )


def _underway(
    console: Console,
    label: str,
    jobs: list[ShardJob],
    ids: Sequence[str],
    seconds: Sequence[float],
    shown: bool,
) -> Underway | None:
    """A pass's recordings its progress would stand still on, said before it
    (`standing_still`), and what says them under way while it runs (None: it has none,
    or shows no progress)."""
    indices = _indices(jobs)
    long = still_indices(seconds, indices) if seconds else []
    if not long:
        return None
    still = standing_still(ids, seconds, indices, long)
    console.print(f"{label}: {still}", markup=False, highlight=False, soft_wrap=True)
    if not shown or console.quiet:
        return None
    order = [batch for job in jobs for batch in job.shard.batches]  # as `run_jobs` lands them
    return Underway(console, label, order, seconds, ids, frozenset(long))


def _landed(advance: Advance, underway: Underway | None) -> Advance:
    """`advance` of a batch landed, which `underway` hears too."""
    if underway is None:
        return advance

    def landed(n: int) -> None:
        advance(n)
        underway.done()

    return landed


def _run_local(
    extractor: Extractor,
    jobs: list[ShardJob],
    device: torch.device,
    advance: Advance,
    console: Console,
    execution: Execution,
) -> None:
    """The jobs in this process, or their batches on `execution`'s processes (committed
    here)."""
    if not jobs:
        return
    computed = None
    decoders = 1
    if execution.processes > 1:
        computed = batches_on_processes(extractor, jobs, execution)
    else:
        extractor.load(device)
        line = extractor.loaded()
        if line:  # the one line per model (transformers' own load report is silenced)
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        if extractor.modality == "audio":
            decoders = decode_threads(device.type)
    writers = write_threads(len(jobs[0].writers))
    for _, batch, _ in run_jobs(extractor, jobs, device, computed, decoders, writers=writers):
        advance(len(batch))


# The end of a pass: each set's staged shards laid out in manifest order, side by side on
# threads where the store's format lets threads write different sets (Zarr: a folder each;
# HDF5: one file, one set at a time).
def lay_out(store: FeatureStore, names: list[str], n_shards: int, shard_size: int) -> None:
    """Each set of a pass laid out, side by side on `write_threads` where the store's
    format lets threads write different sets (Zarr: a folder each; HDF5: one file); the
    first error raised once the others are done."""
    threads = write_threads(len(names)) if store.concurrent_sets else 1
    if threads == 1:
        for name in names:
            _consolidate(store, name, n_shards, shard_size)
        return
    with ThreadPoolExecutor(threads, "ser-consolidate") as pool:
        done = [pool.submit(_consolidate, store, name, n_shards, shard_size) for name in names]
    for future in done:
        future.result()


def _consolidate(store: FeatureStore, name: str, n_shards: int, shard_size: int) -> None:
    try:
        store.consolidate(name, n_shards)
    except StoreError as error:
        if "more than one shard" in str(error) or "none of the" in str(error):
            raise StoreError(f"{error}\n{replanned(name, shard_size)}") from error
        raise


def replanned(name: str, shard_size: int, early: bool = False) -> str:
    return (
        f"the finished shards of {name} were cut with another --shard-size than this "
        f"run's {shard_size}: resume with the --shard-size of the first run"
        + (", or pass --overwrite to extract the feature set again" if early else "")
    )
