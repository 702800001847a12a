"""A run opened for training: its inputs in the store the caller opened, its record
(new, resumed or refused), its data and folds, and the (seed, fold) jobs left
(`prepare`); `reopen` opens the same run without its record, for the processes that
train jobs the calling process hands them (`ser.train.processes`) and record nothing
themselves."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ser.cache import FeatureStore
from ser.corpus.labels import LabelSet
from ser.corpus.protocols.folds import Fold, FoldData, Protocol
from ser.corpus.votes import soft_targets
from ser.corpus.wer import transcripts_wer
from ser.errors import ConfigError, StoreError
from ser.finetune.tuning import Tuning, load_tuning, tuned_specs
from ser.models.batch import InputSpec, Unit
from ser.models.config import plan_inputs
from ser.models.losses import balanced_weights
from ser.models.targets import Targets
from ser.runs.config import RunConfig
from ser.runs.data import AsrSet, Data
from ser.runs.provenance import Threads
from ser.runs.record import RunRecord
from ser.runtime.threads import ThreadChoice
from ser.track.progress import Progress
from ser.train import audio_overlap, cross
from ser.train.augment import check_inputs
from ser.train.batches import untrained_lines, unvalidated_lines
from ser.train.calibration import read_votes
from ser.train.checkpoint import located
from ser.train.data import OUTSIDE, TrainData, constant_sets, constant_sides, load_data
from ser.train.features import ResolvedFeature, is_asr_text, resolve_features
from ser.train.options import ResolvedConfig, TrainConfig
from ser.train.placement import Placement, place_inputs
from ser.train.plan import (
    Prepared,
    Stores,
    device_of,
    protocol_of,
    run_targets,
    seeds_of,
    test_corpus,
    weights_from,
)
from ser.train.record import Started
from ser.train.text_overlap import overlap_line, text_seen
from ser.train.views import Views, resolve_views, view_copies, with_views

Loaded = dict[tuple[Any, ...], TrainData]  # runs over the same data share it


@dataclass(frozen=True, kw_only=True)
class Inputs:
    """A run opened, before its data: its resolved config (`ser.train.plan.resolve`), its
    protocol on its store, what it reads from its store (the sets and the class set) and
    the corpus whose default class weights it takes ("": none, or those asked for)."""

    config: ResolvedConfig
    protocol: Protocol
    weights_from: str
    store: FeatureStore
    features: list[ResolvedFeature]
    unit: Unit
    specs: list[InputSpec]
    classes: LabelSet
    # The store's provenance of the sets, as each checkpoint records it
    # (`provenance`): read once, here.
    provenance: dict[str, Any]
    test: cross.TestSide | None = None  # a cross-corpus run's test store
    tuning: Tuning | None = None  # the inputs whose encoder's top layers train
    views: Views | None = None  # `--views`: the views its training sides read
    placement: Placement | None = None  # where its inputs' rows live (`--memory-budget`)

    @property
    def view_prints(self) -> dict[str, str] | None:
        """The view sets' fingerprints, as the record keeps them (None: no --views)."""
        return None if self.views is None else dict(self.views.prints)

    @property
    def streamed(self) -> list[str]:
        """The inputs read from the store under the memory budget, by name."""
        return sorted(self.placement.streamed) if self.placement else []

    @property
    def device(self) -> torch.device:
        return device_of(self.config)


def open_inputs(asked: TrainConfig, config: ResolvedConfig, stores: Stores) -> Inputs:
    """The run of the `asked` config, `config` resolved (`ser.train.plan.resolve_in`):
    its feature sets resolved in its opened store (and test store), with what the later
    steps read of them; refusals for sets, inputs, class sets or dialogs the stores
    cannot give the model."""
    store = stores[config.store]
    kind = store.corpus.kind
    protocol = protocol_of(config, kind, test_corpus(config, stores))
    features = resolve_features(store, config.features)
    if config.views is not None and config.test_store is not None:
        raise ConfigError(
            "--views reads the views of --store's sets; a cross-corpus run (--test-store) "
            "does not take them: leave --views out"
        )
    views = resolve_views(store, features, config.views)
    unit, specs, tuning = model_inputs(config, store, features)
    classes = store.corpus.label_set(config.classes)
    recorded = provenance(store, features)  # what its checkpoints hold of the sets
    test = None
    if config.test_store is not None:
        test_classes = config.test_classes or config.classes  # resolved with the test store
        test = cross.open_test(store, stores[config.test_store], features, classes, test_classes)
    placed = placement(config, store, features, specs, views, test)
    if test is not None:  # its classes: those both corpora have
        sides = (test.match.train_set(), test.match.test_set())
        audio_overlap.check_cross(store, test.store, sides, config.allow_overlap)
        if unit == "dialog":
            _check_dialogs(test.store, config.name)
        classes = test.match.train_set()
    return Inputs(
        config=config,
        protocol=protocol,
        weights_from=weights_from(asked, kind),
        store=store,
        features=features,
        unit=unit,
        specs=list(specs),
        classes=classes,
        provenance=recorded,
        test=test,
        tuning=tuning,
        views=views if test is None else None,
        placement=placed,
    )


def model_inputs(
    config: ResolvedConfig, store: FeatureStore, features: list[ResolvedFeature]
) -> tuple[Unit, list[InputSpec], Tuning | None]:
    """What the run's model reads of its sets: its unit, its inputs (those whose encoder's
    top layers train, `--finetune`, loaded), each checked against the store and the
    training options."""
    unit, specs = plan_inputs(config.model, [f.info() for f in features])
    if unit == "dialog":
        _check_dialogs(store, config.name)
    # a fine-tuned input is one stored set: by request, its name and attrs
    single = [f for f in features if not f.sets] if config.finetune else []
    sets = {f.request: (f.name, dict(store.info(f.name).attrs)) for f in single}
    tuning = load_tuning(config.finetune, sets)
    if tuning is not None:
        specs = tuned_specs(specs, list(tuning.prototypes))
    check_inputs(config, unit, specs)
    return unit, list(specs), tuning


def provenance(store: FeatureStore, features: Sequence[ResolvedFeature]) -> dict[str, Any]:
    """What a checkpoint records of each stored set `features` read: its fingerprint
    and attrs (model folders resolved, `located`). A run reads it once, from the store
    it opened (`Inputs.provenance`, then `Prepared.provenance`): each open parses the
    store's manifest."""
    out = {}
    for name in (stored for feature in features for stored in feature.stored):
        attrs = located(dict(store.info(name).attrs))
        out[name] = {"fingerprint": attrs.get("fingerprint"), "attrs": attrs}
    return out


def placement(
    config: ResolvedConfig,
    store: FeatureStore,
    features: list[ResolvedFeature],
    specs: Sequence[InputSpec],
    views: Views | None,
    test: cross.TestSide | None,
) -> Placement:
    """Where each input's rows live under the run's memory budget (`place_inputs`): the
    inputs the model (`specs`) gathers as sequences budgeted by their frames, the others
    by their means (a dialog model's all), each with its views' or its test store's sets
    beside it."""
    sequences = {spec.name for spec in specs if spec.gathered == "sequence"}
    copies = view_copies(store, features, views)
    if test is not None:
        copies = copies or cross.test_copies(features, test)
    device, batch_size = device_of(config), config.batch_size
    budget = config.memory_budget
    members = config.members_at_once or 1  # a streamed run stacks only those asked
    host = config.host_memory
    return place_inputs(
        store, features, device, budget, batch_size, sequences, copies, members, host
    )


def load(inputs: Inputs, loaded: Loaded) -> TrainData:
    """The run's data, read once per store (and test store), sets, class set, targets and
    device (`--corpus-root`: the corpus's, where it moved, for soft labels)."""
    config, device, root = inputs.config, inputs.device, inputs.config.corpus_root
    names = tuple(f.name for f in inputs.features)
    targets = run_targets(config)
    key: tuple[Any, ...] = (inputs.store.path.resolve(), names, config.classes, str(device))
    key += (None if inputs.placement is None else tuple(inputs.placement.places.items()),)
    key += (targets, None if inputs.views is None else inputs.views.labels)
    if inputs.test is not None:
        key += (inputs.test.store.path.resolve(), inputs.test.match.test.name)
    if key in loaded:
        return loaded[key]
    if inputs.test is not None:
        data = cross.load_joined(
            inputs.store, inputs.features, inputs.test, device, inputs.placement
        )
    else:
        where = None if root is None else Path(root)
        data = load_data(
            inputs.store,
            inputs.features,
            inputs.classes,
            device,
            targets,
            where,
            inputs.placement,
        )
        data = with_views(data, inputs.store, inputs.views)
        if targets.soft:
            data = with_votes(data, inputs, root)
    loaded[key] = data
    return data


def with_votes(data: TrainData, inputs: Inputs, root: str | None) -> TrainData:
    """`data` with each utterance's vote distribution (`--labels soft`), re-read from the
    store's corpus (`ser.corpus.votes`; `root`: where it is now, if it moved); those with
    no vote in the class set keep their consensus class, counted."""
    where = None if root is None else Path(root)
    soft, fallbacks = soft_targets(inputs.store, list(data.utt_ids), inputs.classes, where)
    return replace(data, soft=soft, soft_fallbacks=fallbacks)


def run_folds(inputs: Inputs, data: TrainData) -> list[Fold]:
    """The protocol's folds over the run's data (the same for the same data and seed):
    a dialog-context model's dialogs stay whole on one side."""
    dialog_model = inputs.unit == "dialog"
    if data.test_from is not None:  # cross-corpus: one fold, the test store's rows tested
        rows = cross.fold_data(data, dialog_model)
    else:
        rows = fold_rows(inputs.store, data, dialog_model)
    config = inputs.config
    return inputs.protocol.folds(rows, config.val, seeds_of(config)[0])


def fold_rows(store: FeatureStore, data: TrainData, dialog_model: bool) -> FoldData:
    """What a protocol cuts of one store's `data`: its classes, speakers and the corpus's
    groups, with the dialogs a dialog-context model keeps whole on one side."""
    groups = store.corpus.groups(data.manifest_rows)
    return FoldData(data.labels, data.speakers, groups, data.dialogs if dialog_model else None)


def prepare(
    inputs: Inputs,
    started: Started,
    progress: Progress,
    loaded: Loaded,
    threads: ThreadChoice,
) -> Prepared:
    """The run of the opened `inputs` (`open_inputs`) and its `started` record (new, or
    resumed, with the predictions it keeps: `ser.train.record.start_record`) ready to
    train: its data loaded (or reused: `loaded`), what they hold said, its folds, the
    (seed, fold)s its record lacks."""
    config, (record, kept) = inputs.config, started
    data, record, held = _loaded(inputs, record, progress, loaded, threads)
    folds = run_folds(inputs, data)
    record = _folds_said(record, held, inputs, data, folds, progress)
    done = {e.key for e in record.folds}
    if done:
        progress.message(f"resuming {config.name}: {len(done)} (seed, fold) run(s) already done")
    todo = [
        (seed, k, fold)
        for seed in seeds_of(config)
        for k, fold in enumerate(folds)
        if (seed, fold.name) not in done
    ]
    votes, line = test_votes(config, inputs, data)
    if line:
        progress.message(line)
    return Prepared(
        config=config,
        record=record,
        data=data,
        unit=inputs.unit,
        specs=inputs.specs,
        todo=todo,
        provenance=inputs.provenance,
        predictions=dict(kept),
        planned=len(seeds_of(config)) * len(folds),
        tuning=inputs.tuning,
        votes=votes,
    )


def _loaded(
    inputs: Inputs,
    record: RunRecord,
    progress: Progress,
    loaded: Loaded,
    threads: ThreadChoice,
) -> tuple[TrainData, RunRecord, Data]:
    """The run's data loaded (or reused), `record` with how long that took, the threads
    and what the data holds, each said, and what the data holds (`Data`)."""
    for note in inputs.tuning.notes if inputs.tuning else ():
        progress.message(note)
    if inputs.views is not None:
        progress.message(inputs.views.describe())  # which views it draws, as recorded
    t0 = time.perf_counter()
    data = load(inputs, loaded)
    timings = replace(
        record.timings,
        load=time.perf_counter() - t0,
        device=str(inputs.device),
        threads=threads.count,
    )
    notes = _targets_notes(run_targets(inputs.config), data, progress)
    held = Data(utterances=len(data), dropped=dict(data.dropped), **notes)
    drawn = () if inputs.views is None else inputs.views.labels  # names its view sets'
    record = replace(record, timings=timings, threads=Threads.of(threads), data=held, views=drawn)
    return data, _data_said(record, inputs, data, progress), held


def _data_said(record: RunRecord, inputs: Inputs, data: TrainData, progress: Progress) -> RunRecord:
    """`record` with a cross-corpus run's sides and the ASR sets' WER, said with the
    utterances dropped."""
    if inputs.test is not None:
        both = cross.cross_record(inputs.store, inputs.features, inputs.test, data)
        record = replace(record, cross=both)
        for line in cross.describe(both):
            progress.message(line)
    trained = data.manifest_rows[: data.test_from]  # the training store's rows
    asr = _asr_record(inputs.store, inputs.features, trained)
    if asr:
        record = replace(record, asr=asr)
    for line in _asr_lines(asr):
        progress.message(line)
    for name in constant_sets(data):
        progress.message(
            f"{name}: every utterance's rows are the same (no column varies): it cannot "
            "teach the model anything and the run will score chance; check what it was "
            "extracted from (silent audio, one transcript for all: ser store info) and "
            "extract it again, or leave it out of --features"
        )
    for reason, count in data.dropped.items():
        if inputs.test is None or OUTSIDE not in reason:  # else said by label above
            progress.message(f"dropped {count} utterance(s): {reason}")
    return record


def _folds_said(
    record: RunRecord,
    held: Data,
    inputs: Inputs,
    data: TrainData,
    folds: list[Fold],
    progress: Progress,
) -> RunRecord:
    """`record` with what the folds are (speaker independent or not) and what their test
    sides share with training (text, audio; `held`: what the data holds so far), each
    said, with the first fold's class weights."""
    config = inputs.config
    record = replace(record, speaker_independent=all(f.speaker_independent for f in folds))
    for fold in folds:
        progress.message(fold.describe())
    if run_targets(config).category is not None:  # a class no training side holds, said
        for line in untrained_lines(folds, data.labels, data.classes, config.sampler):
            progress.message(line)
        for line in unvalidated_lines(folds, data.labels, data.classes):
            progress.message(line)
    for line in constant_sides(data, folds):
        progress.message(
            f"{line}: the training side's rows are all the same: it teaches these folds "
            "nothing (silent audio or one transcript there? ser store info); extract it "
            "again, or take a protocol whose training sides it varies in"
        )
    sides = [(inputs.store, inputs.features)]
    if inputs.test is not None:  # its rows follow the training store's (`data.test_from`)
        sides.append((inputs.test.store, inputs.test.features))
    seen = text_seen(sides, data.manifest_rows, data.test_from, folds)
    if seen:
        held = replace(held, text_seen=seen)
        progress.message(overlap_line(seen))
    allowed = config.allow_overlap and inputs.test is not None
    heard = audio_overlap.audio_seen(
        [s for s, _ in sides], data.manifest_rows, data.test_from, folds, allowed
    )
    record = replace(record, data=replace(held, audio_seen=heard))
    progress.message(audio_overlap.audio_line(heard))
    if config.class_weights != "none":
        progress.message(weights_line(inputs, data.classes, data.labels[folds[0].train]))
    return record


def _targets_notes(targets: Targets, data: TrainData, progress: Progress) -> dict[str, Any]:
    """What the targets left out, said and for the record's data: with both heads, the
    utterances trained on their class alone (no value of an attribute); with soft labels,
    those on their consensus label (no vote in the class set)."""
    notes: dict[str, Any] = {}
    if targets.category is not None and data.targets is not None:
        missing = (~np.isfinite(data.targets)).sum(axis=0)  # [A]
        lacking = {a: int(n) for a, n in zip(data.attributes, missing, strict=True)}
        notes["without_attribute"] = lacking
        if any(lacking.values()):
            said = ", ".join(f"{n} {a}" for a, n in lacking.items() if n)
            progress.message(f"trained on their class only, no value of the attribute: {said}")
    if targets.soft:
        notes["votes_fallback"] = data.soft_fallbacks
        progress.message(
            f"soft labels: {len(data) - data.soft_fallbacks} utterance(s) on their votes, "
            f"{data.soft_fallbacks} with no vote in the class set on their consensus label"
        )
    return notes


def reopen(config: ResolvedConfig, stores: Stores, loaded: Loaded) -> tuple[Prepared, list[Fold]]:
    """The run of the resolved `config` as `prepare` opens it, without its record (the
    caller keeps that) and with nothing to do yet, and its folds: what a training process
    needs to train its jobs."""
    inputs = open_inputs(config, config, stores)
    data = load(inputs, loaded)
    folds = run_folds(inputs, data)
    # not kept
    name = config.name
    unrecorded = RunRecord(name, RunConfig(), str(inputs.protocol), tuple(data.classes))
    votes, _ = test_votes(config, inputs, data)  # the run's own process said it
    prepared = Prepared(
        config=config,
        record=unrecorded,
        data=data,
        unit=inputs.unit,
        specs=inputs.specs,
        todo=[],
        provenance=inputs.provenance,
        tuning=inputs.tuning,
        votes=votes,
    )
    return prepared, folds


def test_votes(
    config: ResolvedConfig, inputs: Inputs, data: TrainData
) -> tuple[dict[str, np.ndarray], str]:
    """A calibrated run's voted utterances (`ser.train.calibration.read_votes`) and the
    line that says so; none for another run (its record stays as it was) or a
    cross-corpus one (its test corpus is another store's)."""
    if config.calibrate == "none" or inputs.test is not None:
        return {}, ""
    return read_votes(inputs.store, list(data.utt_ids), inputs.classes, config.corpus_root)


def weights_line(inputs: Inputs, classes: Sequence[str], first_train: np.ndarray) -> str:
    """e.g. "class weights balanced (MELD's default; --class-weights none turns them off),
    each fold's from its training side, the first's: neu 0.31, hap 1.2, ..."."""
    why = f"{inputs.weights_from}'s default; --class-weights none turns them off"
    weights = balanced_weights(first_train, len(classes))
    shown = ", ".join(f"{c} {w:.3g}" for c, w in zip(classes, weights, strict=True))
    return (
        f"class weights {inputs.config.class_weights}"
        f"{f' ({why})' if inputs.weights_from else ''}, "
        f"each fold's from its training side, the first's: {shown}"
    )


def _check_dialogs(store: FeatureStore, name: str) -> None:
    """A `ConfigError` when a dialog-context model meets a corpus without dialogs (each
    utterance a dialog of its own: CREMA-D, RAVDESS, MSP-Podcast, a manifest without a
    dialog column): its context would be the utterance alone."""
    dialogs = store.manifest.column("dialog")
    if len(dialogs) and len(np.unique(dialogs)) == len(dialogs):
        raise ConfigError(
            f"{name}: a dialog-context model needs dialogs and their order, and "
            f"{store.corpus.title} "
            f"({store.path}) has none: each utterance is a dialog of its own. Train it on "
            "IEMOCAP, MELD or a manifest with dialog and order columns; on this corpus "
            "choose an utterance-level model (e.g. --fusion none without --context)"
        )


def _asr_record(
    store: FeatureStore, features: list[ResolvedFeature], rows: np.ndarray
) -> dict[str, AsrSet]:
    """Per ASR-text feature set of the run: its transcripts and their WER against the
    gold transcripts of the run's utterances (`ser report` shows it)."""
    out: dict[str, AsrSet] = {}
    for feature in features:
        attrs = store.info(feature.stored[0]).attrs  # a layered input's sets share them
        if not is_asr_text(attrs):
            continue
        name = str(attrs["transcripts"])
        model = attrs.get("asr_model")
        entry = AsrSet(transcripts=name, asr_model=None if model is None else str(model))
        try:
            if store.transcript_attrs(name)["fingerprint"] != attrs["transcripts_fingerprint"]:
                raise ValueError("transcripts replaced after this feature set was extracted")
            stored = store.read_transcripts(name)
            entry = replace(entry, **asdict(transcripts_wer(store.manifest, stored, rows.tolist())))
        except (ValueError, StoreError) as error:  # no gold words, or transcripts gone
            entry = replace(entry, wer=None, note=str(error))
        out[feature.name] = entry
    return out


def _asr_lines(asr: dict[str, AsrSet]) -> list[str]:
    """The lines a run says of its ASR sets' WER (`_asr_record`), one a set."""
    lines = []
    for name, entry in asr.items():
        wer = "unknown" if entry.wer is None else f"{100 * entry.wer:.2f} %"
        lines.append(f"{name}: ASR transcripts {entry.transcripts}, WER {wer}")
    return lines
