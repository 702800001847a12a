"""Each head's predictions (class probabilities, attributes, ...) of checkpoints on
features held in memory, scored through the trainer's own `Batches` and evaluation
settings, and their mean over checkpoints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ser.errors import ConfigError
from ser.models.batch import Unit
from ser.runtime.precision import autocast
from ser.train.batches import Batches
from ser.train.checkpoint import Checkpoint
from ser.train.data import FeatureTable, TrainData, ZScore, feature_table
from ser.train.engine.loop import masked
from ser.train.features import ResolvedFeature

#: Utterances per batch when scoring (vector and sequence views alike).
BATCH_SIZE = 64


def memory_data(
    ckpt: Checkpoint,
    features: Mapping[str, list[np.ndarray]],
    device: torch.device,
    turns: Sequence[tuple[str | None, int | None]] | None = None,
) -> TrainData:
    """`TrainData` over new utterances (`features[set][i]`: utterance i's [rows, D] of a
    stored set the checkpoint read), its label a placeholder (0) that nothing reads; a
    layered input's table holds every one of its layers. `turns[i]`: utterance i's
    (dialog, order), (None, None) or no `turns`: a dialog of its own."""
    n = len(next(iter(features.values())))
    tables: dict[str, FeatureTable] = {}
    for spec in ckpt.specs:
        sets = ckpt.stored(spec)
        info = ckpt.features[sets[0]]["attrs"]
        layered = ckpt.layers.get(spec.name, {})
        feature = ResolvedFeature(
            spec.name,
            spec.name,
            str(info["modality"]),
            str(info["level"]),
            str(info["extractor"]),
            int(info["dim"]),
            "+".join(str(ckpt.features[name]["fingerprint"]) for name in sets),
            tuple(layered.get("sets", ())),
            tuple(layered.get("layers", ())),
        )
        lengths = np.array([len(a) for a in features[sets[0]]], dtype=np.int64)
        dtype = np.dtype(info["dtype"])
        flats = [np.concatenate(features[name]).astype(dtype, copy=False) for name in sets]
        data = np.stack(flats, axis=1) if feature.sets else flats[0]  # [rows, L, D] / [rows, D]
        tables[spec.name] = feature_table(feature, data, lengths, np.ones(n, dtype=bool), device)
    ids = np.array([f"input{i}" for i in range(n)])
    turns = turns or [(None, None)] * n
    # Named apart, so that no given dialog can be an input standing alone.
    dialogs = [f"input:{i}" if d is None else f"dialog:{d}" for i, (d, _) in enumerate(turns)]
    return TrainData(
        classes=tuple(ckpt.classes),
        manifest_rows=np.arange(n, dtype=np.int64),
        utt_ids=ids,
        speakers=ids,
        dialogs=np.array(dialogs),
        orders=np.array([o or 0 for _, o in turns], dtype=np.int64),
        labels=np.zeros(n, dtype=np.int64),
        features=tables,
        device=device,
        dropped={},
    )


@torch.no_grad()
def probabilities(
    ckpt: Checkpoint,
    data: TrainData,
    positions: np.ndarray,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Softmax class probabilities `[len(positions), C]` of `ckpt` on `data`'s utterances
    at `positions`, in the order of `positions`: its category head's outputs ([N, 0]: a
    run without one)."""
    made = outputs(ckpt, data, positions, device)
    category = ckpt.targets.category
    found = None if category is None else ckpt.targets.output_of(category.name, made)
    return np.zeros((len(positions), 0), dtype=np.float32) if found is None else found


@torch.no_grad()
def outputs(
    ckpt: Checkpoint,
    data: TrainData,
    positions: np.ndarray,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, ...]:
    """`ckpt`'s heads' predictions (`ser.heads.base.Head.reported`: the category's
    softmax, the attributes on the corpus's scale, ...) `[len(positions), W]` each, in
    the run's head order, of the utterances at `positions` in that order."""
    device = torch.device(device)
    model = ckpt.build(device)
    unit: Unit = "dialog" if ckpt.unit == "dialog" else "utterance"
    size = max(BATCH_SIZE, len(positions)) if unit == "dialog" else BATCH_SIZE
    scale = ckpt.target_scale  # [A] each; None: no attributes
    # Its mean and std ride in every batch, as in training: the heads undo the z-score.
    held = None if scale is None else ZScore(*(t.to(device) for t in scale if t is not None))
    batches = Batches(
        data, positions, list(ckpt.specs), unit, size, zscore=ckpt.zscore, target_scale=held
    )
    n_classes = len(ckpt.classes)  # () for a run without the category
    heads = ckpt.targets.heads
    made = [np.zeros((len(positions), h.width(n_classes)), dtype=np.float32) for h in heads]
    where = {int(row): i for i, row in enumerate(data.manifest_rows[positions])}
    with masked(model, ckpt.model.eval_mask):
        for batch in batches:
            with autocast(device, ckpt.precision):
                logits = model(batch).logits  # [B, W] or [B, U, W]: every head's outputs
            real = batch.index >= 0  # dialog padding has index -1
            parts = ckpt.targets.split(logits.float()[real], n_classes)  # [n, W_head] each
            at = [where[int(r)] for r in batch.index[real].cpu().numpy()]
            for out, head, part in zip(made, heads, parts, strict=True):
                if head.category and ckpt.temperature != 1.0:  # calibrated: softmax(z / T)
                    part = part / ckpt.temperature
                out[at] = head.reported(part, batch).cpu().numpy()  # `Head.reported`
    return ckpt.targets.bounded(made, scale)  # each head's held to the training side's


def ensemble(
    ckpts: Sequence[Checkpoint], data: TrainData, device: torch.device | str = "cpu"
) -> tuple[np.ndarray, ...]:
    """The mean over `ckpts` of each head's predictions (`outputs`) [N, W] on every
    utterance of `data`, in the run's head order."""
    kinds = {(c.classes, c.targets.name) for c in ckpts}
    if len(kinds) != 1:
        raise ConfigError(f"the checkpoints disagree on what they predict: {sorted(kinds)}")
    positions = np.arange(len(data))
    made = [outputs(c, data, positions, device) for c in ckpts]
    return tuple(np.mean(parts, axis=0) for parts in zip(*made, strict=True))


def held_out_ensemble(
    ckpts: Sequence[Checkpoint],
    data: TrainData,
    chosen: Sequence[Sequence[int]],
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, ...]:
    """Each head's predictions [N, W] of `data`'s utterance i by the mean over
    `ckpts[j]` for j in `chosen[i]` alone (none empty): each checkpoint scores only the
    utterances chosen for it."""
    if any(not js for js in chosen):
        raise ValueError("every utterance needs at least one checkpoint")  # a caller's bug
    counts = np.zeros(len(data), dtype=np.float32)
    sums: list[np.ndarray] = []
    for j, ckpt in enumerate(ckpts):
        positions = np.array([i for i, js in enumerate(chosen) if j in js], dtype=np.int64)
        if not len(positions):
            continue
        made = outputs(ckpt, data, positions, device)  # [len(positions), W] each
        if not sums:
            sums = [np.zeros((len(data), part.shape[1]), dtype=np.float32) for part in made]
        for total, part in zip(sums, made, strict=True):
            total[positions] += part
        counts[positions] += 1
    return tuple(total / counts[:, None] for total in sums)
