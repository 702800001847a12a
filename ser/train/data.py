"""Cached features in memory, and the z-scores fitted on a fold's training side.

`load_data` reads each requested feature set once (one sequential `store.read`) and keeps
it on the training device as a flat row buffer with per-utterance start/length tensors;
fp16 stays fp16 there and is cast to fp32 per batch. Utterances outside the class set or
without rows in some requested set are dropped, and counted in `TrainData.dropped`.

The batches a model trains on are built from these tables in `ser.train.batching`
(`Batches`, `StepPlan`, `bucket_batches`, `dialog_groups`), re-exported here.

openSMILE functionals are z-normalized with mean/std of the fold's training side only
(`fit_zscore`); no statistic ever comes from validation or test utterances.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ser.corpus.labels import LabelSet
from ser.errors import ConfigError
from ser.train.batching import Batches as Batches  # re-exported: callers import them from here
from ser.train.batching import StepPlan as StepPlan
from ser.train.batching import bucket_batches as bucket_batches
from ser.train.batching import dialog_groups as dialog_groups
from ser.train.features import ResolvedFeature

#: Features whose training-side std is below this keep std 1 (constant openSMILE columns).
STD_FLOOR = 1e-6


@dataclass
class FeatureTable:
    """One feature set in memory: rows of the kept utterances back to back."""

    feature: ResolvedFeature
    flat: torch.Tensor  # [rows, D] stored dtype (fp16/fp32), on the device
    starts: torch.Tensor  # [n] int64, first row of each utterance
    lengths: torch.Tensor  # [n] int64, rows per utterance (>= 1)
    lengths_np: np.ndarray  # [n] host copy, for batch planning without a device sync
    _vectors: torch.Tensor | None = field(default=None, repr=False)

    def vectors(self) -> torch.Tensor:
        """[n, D] float32 mean over each utterance's rows (computed once, then cached)."""
        if self._vectors is None:
            self._vectors = segment_mean(self.flat, self.lengths)
        return self._vectors


@dataclass
class TrainData:
    """Everything the trainer needs about the kept utterances; position i = row i of each array."""

    classes: tuple[str, ...]
    manifest_rows: np.ndarray  # [n] int64, row in the store's manifest
    utt_ids: np.ndarray  # [n] str
    sessions: np.ndarray  # [n] int64
    speakers: np.ndarray  # [n] str
    dialogs: np.ndarray  # [n] str
    orders: np.ndarray  # [n] int64
    labels: np.ndarray  # [n] int64 class index
    features: dict[str, FeatureTable]
    device: torch.device
    dropped: dict[str, int]  # reason -> utterances dropped for it
    labels_t: torch.Tensor = field(init=False, repr=False)  # [n] on device
    manifest_rows_t: torch.Tensor = field(init=False, repr=False)  # [n] on device

    def __post_init__(self) -> None:
        self.labels_t = torch.as_tensor(self.labels, dtype=torch.long, device=self.device)
        self.manifest_rows_t = torch.as_tensor(
            self.manifest_rows, dtype=torch.long, device=self.device
        )

    def __len__(self) -> int:
        return len(self.labels)


def segment_mean(
    flat: torch.Tensor, lengths: torch.Tensor, chunk_rows: int = 1 << 20
) -> torch.Tensor:
    """Per-segment mean of consecutive rows: [rows, D], [n] -> [n, D] float32.

    Segment i is the next lengths[i] rows. Rows are summed in fp32 chunks with
    `index_add_` so a large fp16 buffer is never copied to fp32 at once.
    """
    n, dim = len(lengths), flat.shape[1]
    if bool((lengths == 1).all()):
        return flat.float()
    seg = torch.repeat_interleave(torch.arange(n, device=flat.device), lengths)  # [rows]
    out = torch.zeros(n, dim, dtype=torch.float32, device=flat.device)
    for r0 in range(0, flat.shape[0], chunk_rows):
        r1 = min(r0 + chunk_rows, flat.shape[0])
        out.index_add_(0, seg[r0:r1], flat[r0:r1].float())
    return out / lengths.clamp_min(1).unsqueeze(1).to(out.dtype)


def load_data(
    store: Any,
    features: Sequence[ResolvedFeature],
    label_set: LabelSet,
    device: torch.device | str = "cpu",
) -> TrainData:
    """Read `features` from `store` once; keep labelled utterances with rows in every set.

    `store` is a `FeatureStore` (or anything with `.manifest` and `.read(name)`).
    """
    device = torch.device(device)
    manifest = store.manifest
    codes = np.asarray(manifest.column("label")).astype(str)
    label_of = [label_set.index_of(c) for c in codes]
    keep = np.array([lab is not None for lab in label_of], dtype=bool)
    dropped: dict[str, int] = {}
    if (~keep).any():
        dropped[f"label outside class set {label_set.name}"] = int((~keep).sum())
    raw = {}
    for feature in features:
        fdata = store.read(feature.name)
        offsets = np.asarray(fdata.offsets, dtype=np.int64)
        lengths = np.diff(offsets)
        missing = keep & (lengths == 0)
        if missing.any():
            dropped[f"no rows in {feature.name} (extraction failed)"] = int(missing.sum())
        keep &= lengths > 0
        raw[feature.name] = (fdata.data, lengths)
    if not keep.any():
        raise ConfigError(
            f"no utterance of class set {label_set.name} has rows in every feature set of "
            f"{'+'.join(f.name for f in features)} in {store.path}"
        )
    tables = {
        f.name: feature_table(f, raw[f.name][0], raw[f.name][1], keep, device) for f in features
    }
    rows = np.flatnonzero(keep).astype(np.int64)
    return TrainData(
        classes=label_set.classes,
        manifest_rows=rows,
        utt_ids=np.asarray(manifest.column("utt_id")).astype(str)[rows],
        sessions=np.asarray(manifest.column("session")).astype(np.int64)[rows],
        speakers=np.asarray(manifest.column("speaker")).astype(str)[rows],
        dialogs=np.asarray(manifest.column("dialog")).astype(str)[rows],
        orders=np.asarray(manifest.column("order")).astype(np.int64)[rows],
        labels=np.array([label_of[r] for r in rows], dtype=np.int64),
        features=tables,
        device=device,
        dropped=dropped,
    )


def feature_table(
    feature: ResolvedFeature, data: Any, lengths: np.ndarray, keep: np.ndarray, device: torch.device
) -> FeatureTable:
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[0] != lengths.sum():
        raise ConfigError(
            f"feature set {feature.name}: data {data.shape} does not match its offsets"
        )
    if not keep.all():
        # Only kept utterances' rows stay in memory (4 classes keep ~55 % of IEMOCAP).
        data = data[np.repeat(keep, lengths)]
    kept = lengths[keep]
    starts = np.concatenate([[0], np.cumsum(kept)[:-1]]).astype(np.int64)
    return FeatureTable(
        feature=feature,
        flat=torch.from_numpy(np.ascontiguousarray(data)).to(device),
        starts=torch.from_numpy(starts).to(device),
        lengths=torch.from_numpy(kept.astype(np.int64)).to(device),
        lengths_np=kept.astype(np.int64),
    )


@dataclass(frozen=True)
class ZScore:
    """Per-dimension standardization fitted on a fold's training side."""

    mean: torch.Tensor  # [D]
    std: torch.Tensor  # [D], >= STD_FLOOR (or exactly 1 for a constant column)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def fit_zscore(data: TrainData, train: np.ndarray) -> dict[str, ZScore]:
    """Per-dimension mean/std of each z-scored set over the `train` positions only.

    Statistics are over rows (frames of a log-mel set, one row per utterance for
    functionals), so sequence and mean-pooled views are scaled alike.
    """
    idx = torch.as_tensor(train, dtype=torch.long, device=data.device)
    out = {}
    for name, table in data.features.items():
        if not table.feature.zscore:
            continue
        v = _rows_of(table, idx).float()  # [R_train, D]
        std = v.std(dim=0, unbiased=False)
        std = torch.where(std < STD_FLOOR, torch.ones_like(std), std)
        out[name] = ZScore(v.mean(dim=0), std)
    return out


def _rows_of(table: FeatureTable, idx: torch.Tensor) -> torch.Tensor:
    """All rows of the utterances at positions `idx`, concatenated: [R, D]."""
    lengths = table.lengths[idx]  # [N]
    owner = torch.repeat_interleave(torch.arange(len(idx), device=idx.device), lengths)  # [R]
    first = torch.cumsum(lengths, 0) - lengths  # [N] offset of each utterance in the output
    within = torch.arange(int(lengths.sum()), device=idx.device) - first[owner]  # [R]
    return table.flat[table.starts[idx][owner] + within]
