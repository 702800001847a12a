"""The training loop (ser.train.loop): selection on validation only, early stopping, masks."""

from __future__ import annotations

import torch
from torch import nn

from ser.train.batch import Batch
from ser.train.loop import LoopConfig, adam, evaluate, fit
from ser.train.models.base import ModelOutput
from ser.train.optim import Adam

CLASSES = ("neu", "hap", "sad", "ang")
VAL_ROWS = range(0, 8)
TEST_ROWS = range(100, 108)


def _batch(rows: range) -> Batch:
    index = torch.tensor(list(rows))
    labels = index % 4
    return Batch(x={"f": torch.zeros(len(index), 2)}, mask={}, labels=labels, index=index)


class EpochOracle(nn.Module):
    """Right on validation only after epoch `val_good`, on test only after `test_good`.

    The epoch lives in a buffer, so restoring the best state restores its behaviour.
    """

    unit = "utterance"

    def __init__(self, val_good: int, test_good: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.epoch: torch.Tensor
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))
        self.val_good, self.test_good = val_good, test_good
        self.eval_mask: str | None = None
        self.masks_seen: list[tuple[bool, str | None]] = []

    def set_epoch(self, epoch: int, total: int) -> None:
        self.epoch.fill_(epoch + 1)

    def forward(self, batch: Batch) -> ModelOutput:
        self.masks_seen.append((self.training, self.eval_mask))
        is_test = batch.index >= 100
        good_epoch = torch.where(is_test, torch.tensor(self.test_good), torch.tensor(self.val_good))
        right = (self.epoch == good_epoch) | self.training
        pred = torch.where(right, batch.labels, (batch.labels + 1) % 4)
        logits = nn.functional.one_hot(pred, 4).float() + self.w * 0
        return ModelOutput(logits)

    def loss(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        return (self.w - 1).pow(2).sum() + out.logits.sum() * 0


def test_best_epoch_is_chosen_on_validation_not_test() -> None:
    model = EpochOracle(val_good=2, test_good=4)
    config = LoopConfig(epochs=5, lr=0.1)
    result = fit(
        model, [_batch(range(200, 216))], [_batch(VAL_ROWS)], [_batch(TEST_ROWS)], CLASSES, config
    )
    assert result.best_epoch == 2
    assert result.curves.val_ua == [0.0, 100.0, 0.0, 0.0, 0.0]
    assert result.curves.epoch == [1, 2, 3, 4, 5]
    # The test ran with epoch 2's state, which is wrong on test (epoch 4 would be right).
    assert int(model.epoch) == 2
    assert result.test.metrics.ua == 0.0
    assert sorted(result.test.index.tolist()) == list(TEST_ROWS)


def test_early_stopping_stops_after_patience() -> None:
    model = EpochOracle(val_good=1, test_good=1)
    config = LoopConfig(epochs=20, lr=0.1, patience=3)
    result = fit(
        model, [_batch(range(200, 204))], [_batch(VAL_ROWS)], [_batch(TEST_ROWS)], CLASSES, config
    )
    assert result.curves.epoch == [1, 2, 3, 4]
    assert result.best_epoch == 1 and result.test.metrics.ua == 100.0


def test_eval_mask_applies_at_test_only() -> None:
    model = EpochOracle(val_good=1, test_good=1)
    config = LoopConfig(epochs=2, lr=0.1, eval_mask="text")
    fit(model, [_batch(range(200, 204))], [_batch(VAL_ROWS)], [_batch(TEST_ROWS)], CLASSES, config)
    # train (mask off), val (mask off) twice, then test with the mask.
    assert model.masks_seen == [(True, None), (False, None)] * 2 + [(False, "text")]
    assert model.eval_mask is None  # restored afterwards


class Linear(nn.Module):
    unit = "utterance"

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 4)
        self.eval_mask = None

    def set_epoch(self, epoch: int, total: int) -> None:
        pass

    def forward(self, batch: Batch) -> ModelOutput:
        return ModelOutput(self.fc(batch.x["f"]))

    def loss(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        return nn.functional.cross_entropy(out.logits, batch.labels)


def _separable(n: int, offset: int, seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    centres = torch.tensor([[3.0, 0.0], [0.0, 3.0], [-3.0, 0.0], [0.0, -3.0]])
    x = centres[labels] + 0.5 * torch.randn(n, 2, generator=g)
    return Batch(x={"f": x}, mask={}, labels=labels, index=torch.arange(offset, offset + n))


def test_fit_learns_and_reports_mean_losses() -> None:
    torch.manual_seed(0)
    model = Linear()
    train = [_separable(32, 0, s) for s in range(4)]
    result = fit(
        model,
        train,
        [_separable(40, 500, 9)],
        [_separable(40, 900, 10)],
        CLASSES,
        LoopConfig(epochs=30, lr=0.05),
    )
    assert result.test.metrics.ua > 95
    assert result.curves.train_loss[-1] < result.curves.train_loss[0] / 3
    # The recorded val loss is the mean CE over utterances.
    again = evaluate(model, [_separable(40, 500, 9)], CLASSES)
    logits = model(_separable(40, 500, 9)).logits
    want = nn.functional.cross_entropy(logits, torch.arange(40) % 4).item()
    assert abs(again.loss - want) < 1e-5


def test_dialog_predictions_skip_padding() -> None:
    model = Linear()
    x = torch.randn(2, 3, 2)
    labels = torch.tensor([[0, 1, -100], [2, -100, -100]])
    mask = labels != -100
    index = torch.where(mask, torch.tensor([[5, 6, 0], [7, 0, 0]]), -1)

    class Dialog(Linear):
        unit = "dialog"

        def loss(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
            flat = out.logits.reshape(-1, 4)
            return nn.functional.cross_entropy(flat, batch.labels.reshape(-1), ignore_index=-100)

    dialog = Dialog()
    dialog.load_state_dict(model.state_dict())
    batch = Batch(x={"f": x}, mask={}, labels=labels, index=index, utt_mask=mask)
    result = evaluate(dialog, [batch], CLASSES)
    assert result.index.tolist() == [5, 6, 7]
    assert result.y_true.tolist() == [0, 1, 2]
    assert result.metrics.n == 3


def test_adam_is_fused_on_cpu_and_matches_the_plain_update() -> None:
    torch.manual_seed(0)
    model, reference = Linear(), Linear()
    reference.load_state_dict(model.state_dict())
    config = LoopConfig(epochs=1, lr=0.01, weight_decay=1e-3)
    optimizer = adam(model, config)
    assert isinstance(optimizer, Adam)
    plain = torch.optim.Adam(reference.parameters(), lr=0.01, weight_decay=1e-3, foreach=False)
    batch = _separable(16, 0, 0)
    for net, opt in ((model, optimizer), (reference, plain)):
        for _ in range(5):
            opt.zero_grad()
            net.loss(net(batch), batch).backward()
            opt.step()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)
