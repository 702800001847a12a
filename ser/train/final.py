"""`--final`: the one model trained on all of a run's data once its folds are done, with
nothing held out: the folds' median selected epoch (and, calibrated, their median
temperature), saved as checkpoint "final"; the fold scores estimate it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ser.finetune.tuning import trained_state
from ser.models import build_model
from ser.runs.curves import Curves as RecordedCurves
from ser.runs.provenance import Final
from ser.track.progress import Progress
from ser.train.augment import augment_of
from ser.train.batches import Batches
from ser.train.checkpoint import FINAL, has_checkpoint, save_fold_checkpoint
from ser.train.data import fit_class_weights, fit_target_scale, fit_zscore
from ser.train.engine import fit
from ser.train.group import cuda_devices, on, tuned
from ser.train.group import member as build_member
from ser.train.plan import Prepared, device_of, run_dir, run_targets, seeds_of


def train_final(run: Prepared, progress: Progress) -> None:
    """Train on all of the run's data and save checkpoint "final" (kept if it exists)."""
    config, data, specs, unit = run.config, run.data, run.specs, run.unit
    device, batch_size = device_of(config), config.batch_size
    if has_checkpoint(run_dir(config), FINAL):
        progress.message("--final: checkpoint final exists, kept")
        return
    best = [e.best_epoch for e in run.record.folds if e.best_epoch is not None]
    epochs = max(1, round(float(np.median(best)))) if best else 1
    seed = seeds_of(config)[0]
    progress.message(f"--final: training on all {len(data)} utterances for {epochs} epochs")
    model = build_model(config.model, list(specs), len(data.classes), seed, run_targets(config))
    model = tuned(model, run, seed).to(device)
    everything = np.arange(len(data))
    zscore = fit_zscore(data, everything)
    scale = fit_target_scale(data, everything)
    # from all of its training data, as a fold's
    weights = fit_class_weights(data, everything, config.class_weights)
    batches = Batches(
        data,
        everything,
        specs,
        unit,
        batch_size,
        zscore=zscore,
        shuffle=True,
        seed=seed,
        class_weights=on(weights, device),
        target_scale=scale,
        sampler=config.sampler,
        augment=augment_of(config),
    )
    nothing = Batches(data, everything[:0], specs, unit, batch_size, zscore=zscore)
    # No validation side: the loop trains the fixed epochs and keeps the last. Every stage
    # (Zhou et al.'s branches alone first, as the folds trained) goes on with one order.
    member = build_member(config, batches, nothing, nothing, epochs=epochs, patience=None)
    with torch.random.fork_rng(devices=cuda_devices(device)):
        torch.manual_seed(seed)
        ensemble, _, (chosen,) = fit([model], lambda: [member], data.classes, progress)
    state = trained_state(model, ensemble.member_state(0))
    # No validation side to fit on: a calibrated run's folds' median temperature, as its epochs
    fitted = [e.temperature for e in run.record.folds if e.temperature is not None]
    scaled = {"temperature": float(np.median(fitted))} if fitted else {}
    if fitted:
        progress.message(f"--final: temperature {scaled['temperature']:.3f}, the folds' median")
    save_fold_checkpoint(
        run, FINAL, state, zscore, scale=scale, seed=seed, fold=FINAL, epochs=epochs, **scaled
    )
    layer_weights = model.layer_weights(state)
    final = Final(
        epochs=epochs,
        seed=seed,
        utterances=len(data),
        class_weights=(
            None if weights is None else dict(zip(data.classes, weights.tolist(), strict=True))
        ),
        layer_weights={k: tuple(v) for k, v in layer_weights.items()} or None,
        curves=RecordedCurves.from_json({"epoch": chosen.epoch, "train_loss": chosen.train_loss}),
    )
    run.record = replace(run.record, final=final)
