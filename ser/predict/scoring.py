"""The model a prediction runs, loaded once (`load_model`), and a group of inputs
predicted with it (`predict_items`): features re-created as recorded, text where the run
reads it, the members' average (torch, or the exported head on onnxruntime).

A model is a run's checkpoints (`--run`) or an exported folder's members (`--model`,
`ser.export.folder`); either gives `Checkpoint`s, scored alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ser.errors import ConfigError, FingerprintMismatch
from ser.export.folder import Exported, load_exported
from ser.extract.plan import DEFAULT_BATCH_SECONDS as BATCH_SECONDS
from ser.heads.predicted import Part
from ser.predict.asr import reads_text, run_asr, transcripts
from ser.predict.config import RUNTIMES, PredictConfig, Prediction
from ser.predict.ensemble import ensemble, held_out_ensemble, memory_data
from ser.predict.features import Recreated, extract_all, extractors_for
from ser.predict.held_out import HELD_OUT, Origin, RunCorpus, held_out_note, run_corpus
from ser.predict.inputs import Item, load_waves
from ser.predict.notes import corpus_note
from ser.predict.onnx import OnnxRun, open_onnx
from ser.train.checkpoint import FINAL, Checkpoint, load_run_checkpoints
from ser.train.folder import refuse_while_trained


@dataclass
class Model:
    """The checkpoints, their feature sets and what re-creates them, on `device`."""

    ckpts: list[Checkpoint]
    features: dict[str, dict[str, Any]]
    recreated: list[Recreated]
    device: torch.device
    onnx: OnnxRun | None = None
    asr: dict[str, Any] = field(default_factory=dict)  # Whisper, loaded when first needed
    corpus: RunCorpus | None = None  # the run's store's utterances (None: an export's)
    held_out: bool = False  # each input by the checkpoints that held it out alone


def open_checkpoints(config: PredictConfig) -> tuple[list[Checkpoint], Exported | None]:
    """The checkpoints `--run` or `--model` names (`--checkpoint` picks among them)."""
    if bool(config.run) == bool(config.model):
        raise ConfigError("give --run RUN or --model FOLDER (one of them)")
    if config.runtime not in RUNTIMES:
        raise ConfigError(f"--runtime {config.runtime!r}: choose {' or '.join(RUNTIMES)}")
    if config.model is None:
        if config.runtime != "torch":
            raise ConfigError("--runtime onnx runs an exported folder's graphs: give --model")
        refuse_while_trained(Path(config.run))  # its checkpoints are not whole yet
        which = "folds" if config.checkpoint == HELD_OUT else config.checkpoint
        return load_run_checkpoints(Path(config.run), which), None
    if config.checkpoint == HELD_OUT:
        raise ConfigError(
            f"--checkpoint={HELD_OUT} needs the run's folder, whose "
            f"checkpoints record their test sides; {config.model} is an exported one"
        )
    exported = load_exported(Path(config.model), stand_ins=bool(config.encoders))
    members = exported.checkpoints
    if config.checkpoint == "folds":
        return members, exported
    if config.runtime == "onnx":
        raise ConfigError(
            "--runtime onnx runs the members' average (head.onnx): leave --checkpoint out"
        )
    named = [k.strip() for k in config.checkpoint.split(",") if k.strip()]
    chosen = [c for c in members if c.key in named]
    if not chosen or len(chosen) != len(set(named)):
        keys = ", ".join(c.key for c in members)
        hint = "" if config.checkpoint != FINAL else " (export with --members final for it)"
        raise ConfigError(
            f"{exported.folder} has no member {config.checkpoint!r}: it has {keys}{hint}"
        )
    return chosen, exported


def load_model(
    config: PredictConfig,
    ckpts: list[Checkpoint],
    exported: Exported | None,
    device: torch.device,
    message: Callable[[str], None],
) -> Model:
    """The extractors (and with `--runtime onnx` the sessions) of `ckpts`, loaded, and
    a run's store's utterances (`run_corpus`), which inputs are known as."""
    corpus = run_corpus(Path(config.run), ckpts) if config.run else None
    held_out = config.checkpoint == HELD_OUT
    if held_out and corpus is None:
        raise ConfigError(
            f"checkpoint {HELD_OUT}: {config.run}'s store cannot be read (moved, or a "
            "cross-corpus run's, whose test sides are another store's), so no input can be "
            "known as one of its utterances; put the store back, or predict with the folds"
        )
    features = features_of(ckpts)
    onnx = (
        open_onnx(exported, torch.get_num_threads())
        if exported and config.runtime == "onnx"
        else None
    )
    by_torch = {n: f for n, f in features.items() if onnx is None or n not in onnx.sets}
    recreated = extractors_for(by_torch, device, config.encoders)
    if onnx is not None:
        made = ", ".join(sorted(onnx.sets)) or "none"
        rest = ", ".join(by_torch) or "none"
        message(f"onnxruntime: the head, and the sets {made}; by ser's extractors: {rest}")
    for r in recreated:
        if r.encoder is not None:
            message(f"{', '.join(r.names)}: encoder from {r.encoder} (weights match the run's)")
    loaded = Model(_standing_in(ckpts, recreated), features, recreated, device, onnx)
    loaded.corpus, loaded.held_out = corpus, held_out
    return loaded


def _standing_in(ckpts: list[Checkpoint], recreated: list[Recreated]) -> list[Checkpoint]:
    """`ckpts` with each set an `--encoder` folder stands in for located there: a
    fine-tuned input's top layers load from the encoder its set names."""
    where = {name: r.encoder for r in recreated if r.encoder is not None for name in r.names}
    if not where:
        return ckpts
    return [
        dataclasses.replace(
            c,
            features={
                n: {**i, "attrs": {**i["attrs"], "model": where[n]}} if n in where else i
                for n, i in c.features.items()
            },
        )
        for c in ckpts
    ]


def features_of(ckpts: list[Checkpoint]) -> dict[str, dict[str, Any]]:
    features: dict[str, dict[str, Any]] = {}
    for ckpt in ckpts:
        for name, info in ckpt.features.items():
            if name in features and features[name]["fingerprint"] != info["fingerprint"]:
                raise FingerprintMismatch(
                    f"checkpoints of this run were trained on different {name} features"
                )
            features[name] = info
    return features


def predict_items(
    items: list[Item],
    model: Model,
    config: PredictConfig,
    message: Callable[[str], None],
    advance: Callable[[int], None] | None = None,
) -> list[Prediction]:
    """The predictions of `items` (one each, failed ones with their error); `advance`:
    told the inputs of each encoder's batch done (`passes(model)` an input)."""
    rates = [r.extractor.sample_rate for r in model.recreated]
    if model.onnx is not None:
        rates += [int(info["sample_rate"]) for _, info in model.onnx.encoders.values()]
    waves = {rate: load_waves(items, rate) for rate in dict.fromkeys(rates) if rate is not None}
    if not waves:  # text features only: a file that cannot be read is still an error
        load_waves(items, None)
    if reads_text(model.features):
        transcripts(items, config, model.device, message, run_asr(model.features), model.asr)
    origins = _origins(items, model)
    failed = {i: item.error for i, item in enumerate(items) if item.error is not None}
    outputs: dict[str, list[Any]] = {}
    for r in model.recreated:
        audio = r.extractor.sample_rate
        inputs: list[Any] = waves[audio] if audio else [item.transcript for item in items]
        budget = BATCH_SECONDS[model.device.type] * audio if audio else None
        rows = extract_all(
            r.extractor, inputs, failed, model.device, config.batch_size, budget, advance
        )
        for name, made in r.names.items():
            outputs[name] = [row[made] if row is not None else None for row in rows]
    if model.onnx is not None and model.onnx.encoders:
        rate = int(next(iter(model.onnx.encoders.values()))[1]["sample_rate"])
        outputs.update(model.onnx.extract(waves[rate], failed))
    return _score(model, items, outputs, failed, origins)


def _origins(items: list[Item], model: Model) -> list[Origin | None]:
    """Each item as an utterance of the run's store (None: not one), said in its notes
    (by the corpus's groups where the store does not know it: `corpus_note`); held out,
    one that no checkpoint held out fails alone, saying why, before any encoder runs."""
    found = [model.corpus.origin(i.path, model.ckpts) if model.corpus else None for i in items]
    for item, origin in zip(items, found, strict=True):
        if model.held_out:
            if origin is None or not origin.held_out_by:
                item.error = item.error or _not_held_out(item, origin, model)
            elif origin.seen_by:
                item.notes.append(held_out_note(origin))
        elif origin is not None:
            if (note := origin.note()) is not None:
                item.notes.append(note)
        elif (note := corpus_note(item.path, model.ckpts)) is not None:
            item.notes.append(note)
    return found


def _not_held_out(item: Item, origin: Origin | None, model: Model) -> str:
    """Why `checkpoint held-out` cannot predict `item`."""
    if origin is None:
        store = model.corpus.store if model.corpus else "the run's store"
        return (
            f"{HELD_OUT}: {item.path} is no utterance of the run's store {store} (known by "
            "its wav path), so no model held it out; predict it with the folds"
        )
    return (
        f"{HELD_OUT}: utterance {origin.utterance} is on the training side of every fold "
        "(no fold's test side holds it), so no model of the run held it out"
    )


def passes(model: Model) -> int:
    """The encoder passes `predict_items` makes over each input (what `advance` counts)."""
    return len(model.recreated)


def _score(
    model: Model,
    items: list[Item],
    outputs: dict[str, list[Any]],
    failed: dict[int, str],
    origins: list[Origin | None],
) -> list[Prediction]:
    ckpts = model.ckpts
    heads = ckpts[0].targets.heads
    ok = [i for i in range(len(items)) if i not in failed]
    made: tuple[np.ndarray, ...] = ()  # each head's predictions [len(ok), W]
    if ok:
        arrays = {name: [rows[i] for i in ok] for name, rows in outputs.items()}
        if model.onnx is not None:
            made = model.onnx.score(ckpts[0], arrays)
        else:
            turns = [(items[i].dialog, items[i].order) for i in ok]  # conversations, if given
            data = memory_data(ckpts[0], arrays, model.device, turns)
            if model.held_out:  # each by the checkpoints that held it out
                held = [set(o.held_out_by) if o else set() for o in (origins[i] for i in ok)]
                chosen = [[j for j, c in enumerate(ckpts) if c.key in h] for h in held]
                made = held_out_ensemble(ckpts, data, chosen, model.device)
            else:
                made = ensemble(ckpts, data, model.device)
    predictions = [_prediction(i, item, failed) for i, item in enumerate(items)]
    for p, o in zip(predictions, origins, strict=True):
        if o is not None:
            p.utterance, p.held_out_by, p.seen_by = o.utterance, o.held_out_by, o.seen_by
    names = ckpts[0].targets.names(ckpts[0].classes)
    for j, i in enumerate(ok):
        for head, named, rows in zip(heads, names, made, strict=True):
            predictions[i].heads[head.name] = Part(named, rows[j])
    return predictions


def _prediction(i: int, item: Item, failed: dict[int, str]) -> Prediction:
    p = Prediction(str(item.path), transcript=item.transcript, notes=list(item.notes))
    p.dialog, p.order = item.dialog, item.order
    if item.clip is not None:
        p.start, p.end = item.clip.start, item.clip.end
    if item.by_asr:
        p.transcript_source = "asr"
    elif item.timed is not None:
        p.transcript_source = "timed"
    elif item.transcript is not None:
        p.transcript_source = "given"
    p.error = failed.get(i)
    return p
