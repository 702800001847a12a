"""Small random batches and a few-step trainer for the model tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from ser.models import SerModel
from ser.models.batch import Batch, InputSpec

MakeBatch = Callable[..., Batch]


def _utterance_batch(
    specs: list[InputSpec],
    lengths: dict[str, list[int]] | None = None,
    batch_size: int = 6,
    n_classes: int = 4,
    seed: int = 0,
    pad_to: int | None = None,
) -> Batch:
    """Sequence views padded with garbage (not zeros) so leaks show; labels follow x."""
    g = torch.Generator().manual_seed(seed)
    lengths = lengths or {}
    x: dict[str, torch.Tensor] = {}
    mask: dict[str, torch.Tensor] = {}
    labels = torch.arange(batch_size) % n_classes  # [B]
    for spec in specs:
        if spec.view == "vector":
            x[spec.name] = torch.randn(batch_size, spec.dim, generator=g) + labels[:, None]
            continue
        lens = lengths.get(spec.name, [3 + (i % 4) for i in range(batch_size)])
        t = pad_to or max(lens)
        seq = torch.randn(batch_size, t, spec.dim, generator=g) + labels[:, None, None]
        m = torch.arange(t)[None, :] < torch.tensor(lens)[:, None]  # [B, T]
        garbage = torch.randn(batch_size, t, spec.dim, generator=g) * 50
        x[spec.name] = torch.where(m[..., None], seq, garbage)
        mask[spec.name] = m
    return Batch(x=x, mask=mask, labels=labels, index=torch.arange(batch_size))


def _dialog_batch(
    specs: list[InputSpec],
    lengths: list[int] | None = None,
    n_classes: int = 4,
    seed: int = 0,
    pad_to: int | None = None,
) -> Batch:
    """Dialogs of vector views; padded utterances hold garbage and label -100."""
    g = torch.Generator().manual_seed(seed)
    lengths = lengths or [5, 3, 4]
    b, u = len(lengths), pad_to or max(lengths)
    utt_mask = torch.arange(u)[None, :] < torch.tensor(lengths)[:, None]  # [B, U]
    labels = torch.randint(0, n_classes, (b, u), generator=g)
    x = {}
    for spec in specs:
        real = torch.randn(b, u, spec.dim, generator=g) + labels[..., None]
        x[spec.name] = torch.where(utt_mask[..., None], real, torch.randn(b, u, spec.dim) * 50)
    labels = labels.masked_fill(~utt_mask, -100)
    index = torch.arange(b * u).reshape(b, u).masked_fill(~utt_mask, -1)
    return Batch(x=x, mask={}, labels=labels, index=index, utt_mask=utt_mask)


def _pad_more(batch: Batch, extra: int = 9, seed: int = 99) -> Batch:
    """`batch` with `extra` more padded positions of garbage on every sequence / dialog."""
    g = torch.Generator().manual_seed(seed)

    def grow(x: torch.Tensor) -> torch.Tensor:
        shape = (x.shape[0], extra, *x.shape[2:])
        return torch.cat([x, torch.randn(shape, generator=g) * 100], dim=1)

    def grow_mask(m: torch.Tensor) -> torch.Tensor:
        return torch.cat([m, m.new_zeros(m.shape[0], extra)], dim=1)

    dialog = batch.utt_mask is not None
    x = {k: grow(v) if dialog or k in batch.mask else v for k, v in batch.x.items()}
    mask = {k: grow_mask(v) for k, v in batch.mask.items()}
    if not dialog:
        return Batch(x=x, mask=mask, labels=batch.labels, index=batch.index)
    assert batch.utt_mask is not None
    b = batch.labels.shape[0]
    labels = torch.cat([batch.labels, batch.labels.new_full((b, extra), -100)], dim=1)
    index = torch.cat([batch.index, batch.index.new_full((b, extra), -1)], dim=1)
    return Batch(x=x, mask=mask, labels=labels, index=index, utt_mask=grow_mask(batch.utt_mask))


def _train(model: SerModel, batch: Batch, steps: int = 40, lr: float = 1e-2) -> tuple[float, float]:
    """(first loss, last loss) after `steps` Adam steps on one batch."""
    torch.manual_seed(0)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = model.loss(model(batch), batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses[0], losses[-1]


@pytest.fixture
def utterance_batch() -> MakeBatch:
    return _utterance_batch


@pytest.fixture
def dialog_batch() -> MakeBatch:
    return _dialog_batch


@pytest.fixture
def pad_more() -> Callable[..., Batch]:
    return _pad_more


@pytest.fixture
def train_steps() -> Callable[..., tuple[float, float]]:
    return _train
