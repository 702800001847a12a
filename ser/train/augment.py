"""What a training side's batches are drawn and changed by, the training side only
(validation and test batches never): `--sampler balanced` (`balanced_draw`: each epoch's
utterances drawn with equal class probability, then bucketed by length as ever),
`--augment mask` (SpecAugment-like masks on sequence inputs), `--mixup ALPHA`
(utterance vectors and their targets mixed in pairs) and `--views` (the view of its
features each utterance is read from an epoch, `ser.train.views`).

Each member draws its own numbers on the host from its own generators (`Draws`, seeded
with the member's batch-order seed): the same seed gives the same masks, mixes and
views, on any device, and a member alone draws exactly what it draws in a stack. The
draws are applied on the device to the gathered batch (`apply`), before the step
function: graphed and compiled steps see an ordinary batch of the same shapes. numpy's
generator draws, not torch's: torch's Beta sampler takes no generator of its own.

Masks (Park et al. 2019, SpecAugment; SpeechBrain's `SpecAugment` draws the same way):
each utterance gets N time masks, each of a width drawn uniformly from 0 to W % of its
own real frames and a start drawn so that it ends inside them (padding is never
touched), and N feature masks of up to W % of the columns. Masked values are zeroed
after the z-score: the training side's mean. Widths are a share of the utterance, not
frames, as SpecAugment's upper bound p (a mask at most p of the utterance) is: one
default then suits 50 Hz speech frames and ~20 text tokens alike. The default, 2 masks of
up to 10 % each way: SpecAugment's LD, SM and SS policies and SpeechBrain's `SpecAugment`
defaults use two time and two frequency masks; 10 % each keeps the two time masks within
the bound p = 0.2 of SpecAugment's SM and SS policies; the feature width is wav2vec 2.0's
fine-tuning channel mask (64 of 768 columns, ~8 %) rounded, as a self-supervised model's
columns are no ordered frequency bands.

Mixup (Zhang et al. 2018): per batch lam ~ Beta(alpha, alpha), x = lam x + (1 - lam)
x[perm] over the member's real rows, and the targets mixed alike: the one-hot (or vote)
distributions, so the soft cross-entropy is lam loss(y) + (1 - lam) loss(y[perm]).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ser.errors import ConfigError
from ser.models import family_of
from ser.models.batch import Batch, InputSpec, Unit
from ser.models.targets import Targets
from ser.train.gather import spread
from ser.train.options import MASK_DEFAULT, TrainConfig

#: Offsets an augmentation generator's seed from the batch order's (another stream).
STREAM = 7
#: And the views' generator's (`--views`): a third stream, so masks and mixes draw with
#: views on what they draw without.
VIEW_STREAM = 8


@dataclass(frozen=True)
class Augment:
    """A training side's augmentation: (masks, most % of the frames) in time and of the
    feature columns ((0, 0): none), and mixup's alpha (None: none)."""

    time: tuple[int, int] = (0, 0)
    features: tuple[int, int] = (0, 0)
    mixup: float | None = None


def augment_of(config: TrainConfig) -> Augment | None:
    """The run's augmentation (None: none), its options checked (`ConfigError`)."""
    masks = {"mask_time": config.mask_time, "mask_features": config.mask_features}
    for name, value in masks.items():
        flag = f"--{name.replace('_', '-')}"
        if value is not None and config.augment != "mask":
            raise ConfigError(f"{flag} sets --augment mask's masks: add --augment mask")
        if value is not None and (len(value) != 2 or value[0] < 0 or not 0 <= value[1] <= 100):
            raise ConfigError(
                f"{flag} {','.join(map(str, value))}: give N,W (N masks of up to W % "
                "each; N at least 0, W from 0 to 100), e.g. 2,10"
            )
    if config.augment == "none" and config.mixup is None:
        return None
    if config.augment == "none":
        return Augment(mixup=config.mixup)
    time, features = (_pair(v) for v in masks.values())
    return Augment(time, features, config.mixup)


def _pair(value: tuple[int, ...] | None) -> tuple[int, int]:
    n, width = value or MASK_DEFAULT
    return n, width


def check_targets(config: TrainConfig, targets: Targets) -> None:
    """Options that need the category alone (mixup) or a category (a balanced sampler)
    refused for other targets."""
    if config.mixup is not None and targets.name != Targets().name:
        raise ConfigError(
            f"--mixup mixes class targets: --target {targets.name} trains other heads too "
            "(their losses would need mixing as well); use --target emotion"
        )
    if config.sampler == "balanced" and targets.category is None:
        raise ConfigError(f"--sampler balanced draws classes: --target {targets.name} has none")


def check_inputs(config: TrainConfig, unit: Unit, specs: Sequence[InputSpec]) -> None:
    """Options the model's inputs cannot take refused (`ConfigError`)."""
    family = f"the {family_of(config.model).name} model"
    sequences = [s.name for s in specs if s.gathered == "sequence"]
    if unit == "dialog" and config.sampler == "balanced":
        raise ConfigError(
            f"--sampler balanced draws utterances; {family} trains on whole dialogs (each "
            "utterance in its context): leave --sampler out"
        )
    if config.augment == "mask" and not sequences:
        raise ConfigError(
            f"--augment mask masks frames of sequence inputs; {family} takes "
            f"{', '.join(s.name for s in specs)} as vectors: leave --augment out"
        )
    if config.mixup is not None and (unit == "dialog" or sequences):
        what = "whole dialogs" if unit == "dialog" else f"{', '.join(sequences)} as sequences"
        raise ConfigError(
            f"--mixup mixes utterance vectors; {family} takes {what}: leave --mixup out"
        )


def balanced_draw(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """As many indices into `labels` as it has, each drawn with equal class probability:
    a class of those present uniformly, then one of its items uniformly (with replacement).

    >>> labels = np.repeat([0, 1], [90, 10])
    >>> np.bincount(labels[balanced_draw(labels, np.random.default_rng(0))]).tolist()
    [44, 56]
    """
    present, counts = np.unique(labels, return_counts=True)
    order = np.argsort(labels, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    drawn = rng.integers(len(present), size=len(labels))
    return order[starts[drawn] + rng.integers(counts[drawn])]


# What a part of the draws holds for padding rows and members without a batch (`_stack`).
NO_MASK, OWN_ROW, NO_MIX = "no mask", "own row", "no mix"
# One part of a member's draws for a step: what its padding holds (NO_MASK: zeros, no
# band; OWN_ROW: its own index; NO_MIX: lam 1), and the values.
Drawn = tuple[str, np.ndarray]


class Draws:
    """What one member's training side draws on the host, each part from a generator of
    its own seeded with the member's batch-order seed: its augmentation's masks and mixes
    (`augment`; None: none) and, with `--views` (`ser.train.views`), each utterance's view
    an epoch, uniformly among the clean set (0) and the run's `views - 1` views. The same
    seed draws the same, alone or stacked, on any device, and a resumed run's (seed, fold)
    trains again from its first epoch, drawing what it drew."""

    def __init__(self, seed: int, augment: Augment | None = None, views: int = 1) -> None:
        self.augment = augment
        self.views = views  # the clean set and each view: draws in [0, views)
        self.rng = np.random.default_rng((seed, STREAM))
        self.view_rng = np.random.default_rng((seed, VIEW_STREAM))

    def augmentation(self, rows: int, specs: Sequence[InputSpec]) -> list[Drawn]:
        """The draws of a batch of `rows` real rows, in `apply`'s order: per masked view its time
        and feature draws [rows, N, 2] (uniform in [0, 1)); mixup's permutation [rows]
        and lam [1] (none without augmentation)."""
        if self.augment is None:
            return []
        time, features = self.augment.time[0], self.augment.features[0]
        out = []
        for _ in _masked(self.augment, specs):
            out += [(NO_MASK, self.rng.random((rows, t, 2))) for t in (time, features)]
        alpha = self.augment.mixup
        if alpha is None:
            return out
        permutation = self.rng.permutation(rows).astype(np.float64)
        return [*out, (OWN_ROW, permutation), (NO_MIX, self.rng.beta(alpha, [alpha]))]

    def view_each(self, n: int) -> np.ndarray | None:
        """[n] int64: each of the run's `n` utterances' view this epoch (one per utterance,
        whichever sides and batches it falls in); None without views (the clean sets)."""
        if self.views <= 1:
            return None
        return self.view_rng.integers(self.views, size=n, dtype=np.int64)


def epoch_draws(
    draws: Sequence[Draws],
    steps: Sequence[Sequence[int | None]],
    shapes: Sequence[int],
    specs: Sequence[InputSpec],
    device: torch.device,
) -> list[list[torch.Tensor]]:
    """Each step's draws of the members (`steps`: each member's real rows there, None
    without a batch), stacked [K, B, ...] for its `shapes` B rows (padding: no mask, its
    own row, lam 1), on the device in one copy an epoch: a copy a step would wait on it."""
    host = []
    for now, rows in zip(steps, shapes, strict=True):
        pairs = zip(draws, now, strict=True)
        host.append(
            _stack([None if n is None else d.augmentation(n, specs) for d, n in pairs], rows)
        )
    flat = [a for step in host for a in step]
    if not flat:
        return [[] for _ in host]
    one = np.concatenate([a.ravel() for a in flat]).astype(np.float32)
    parts = iter(torch.from_numpy(one).to(device).split([a.size for a in flat]))
    return [[next(parts).view(a.shape) for a in step] for step in host]


def _stack(drawn: Sequence[list[Drawn] | None], rows: int) -> list[np.ndarray]:
    """The members' draws of one step stacked [K, rows, ...] (`epoch_draws`)."""
    real = next(d for d in drawn if d is not None)
    out = []
    for i, (padding, like) in enumerate(real):
        if padding == NO_MASK:  # mask draws [n, N, 2]
            stacked = np.zeros((len(drawn), rows, *like.shape[1:]))
        elif padding == NO_MIX:  # mixup's lam [1]
            stacked = np.ones((len(drawn), 1))
        else:  # a permutation [n]
            stacked = np.tile(np.arange(rows, dtype=np.float64), (len(drawn), 1))
        for k, d in enumerate(drawn):
            if d is not None:
                _, values = d[i]
                stacked[k, : len(values)] = values
        out.append(stacked)
    return out


def _masked(augment: Augment, specs: Sequence[InputSpec]) -> list[InputSpec]:
    """The views masks change: the sequence views, where there are masks."""
    on = augment.time[0] or augment.features[0]
    return [s for s in specs if s.gathered == "sequence"] if on else []


def apply(
    batch: Batch,
    augment: Augment,
    drawn: Sequence[torch.Tensor],
    specs: Sequence[InputSpec],
    n_classes: int,
) -> Batch:
    """`batch` (stacked [K, B, ...], member k's rows first) with the members' draws of
    this step (`epoch_draws`) applied."""
    parts = iter(drawn)
    for spec in _masked(augment, specs):
        time, feats = next(parts), next(parts)  # [K, B, N, 2] each
        x, real = batch.x[spec.name], batch.mask[spec.name]  # [K, B, T, ...], [K, B, T]
        lengths = real.sum(-1)  # [K, B]
        hit = _bands(time, lengths, augment.time[1], real.shape[-1])  # [K, B, T]
        x = x * ~spread(hit, x)
        width = x.shape[-1]
        cols = _bands(feats, torch.full_like(lengths, width), augment.features[1], width)
        batch.x[spec.name] = x * ~cols.view(*cols.shape[:2], *[1] * (x.dim() - 3), width)
    if augment.mixup is not None:
        perm, lam = next(parts), next(parts)  # [K, B], [K, 1]
        _mix(batch, perm.long(), lam, specs, n_classes)
    return batch


def _bands(u: torch.Tensor, lengths: torch.Tensor, percent: int, size: int) -> torch.Tensor:
    """[K, B, size] True inside any of the N bands drawn by `u` [K, B, N, 2]: widths up
    to `percent` % of each row's `lengths` [K, B], each band ending inside them."""
    most = (lengths * percent // 100).unsqueeze(-1)  # [K, B, 1]
    width = torch.minimum((u[..., 0] * (most + 1)).floor().long(), most)  # [K, B, N]
    room = lengths.unsqueeze(-1) - width  # [K, B, N], >= 0
    start = torch.minimum((u[..., 1] * (room + 1)).floor().long(), room)
    at = torch.arange(size, device=u.device)  # [size]
    inside = (at >= start.unsqueeze(-1)) & (at < (start + width).unsqueeze(-1))  # [K, B, N, size]
    return inside.any(dim=-2)


def _mix(
    batch: Batch, index: torch.Tensor, lam: torch.Tensor, specs: Sequence[InputSpec], c: int
) -> None:
    """Each member's vector views and class targets mixed with its rows `index` [K, B]
    by its `lam` [K, 1]."""
    labelled = batch.labels >= 0
    one_hot = F.one_hot(batch.labels.clamp_min(0), c).float() * labelled.unsqueeze(-1)
    targets = one_hot if batch.soft is None else batch.soft
    for name in (s.name for s in specs if s.gathered == "vector"):
        batch.x[name] = _mixed(batch.x[name], index, lam)
    batch.soft = _mixed(targets, index, lam)


def _mixed(x: torch.Tensor, index: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """lam x + (1 - lam) x[index] along the batch axis of `x` [K, B, ...]."""
    spread = index.view(*index.shape, *[1] * (x.dim() - 2)).expand_as(x)
    weight = lam.view(*lam.shape, *[1] * (x.dim() - 2))
    return weight * x + (1 - weight) * x.gather(1, spread)
