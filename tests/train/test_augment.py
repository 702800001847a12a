"""The training side's batches drawn and changed (`ser.train.augment`): `--sampler
balanced`, `--augment mask`, `--mixup`. Each changes what a training step sees when on,
nothing when off (the same batches, bit for bit), draws the same for the same seed, never
touches padding or validation and test sides, is recorded only when on, and refuses the
models and targets it does not go with."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ser.corpus.labels import get_label_set
from ser.errors import ConfigError
from ser.export.reproduce import train_command
from ser.models import ModelConfig
from ser.models.batch import Batch, InputSpec
from ser.report.runs import settings_label
from ser.runs.record import RECORD, read
from ser.train.augment import Augment, augment_of
from ser.train.batches import Batches, StackedSides
from ser.train.data import load_data
from ser.train.features import resolve_features
from ser.train.recipe import TrainConfig, train
from tests.train.conftest import small_config
from tests.train.engine.test_ensemble import model_of
from tests.train.test_data import make_store

SEQ = InputSpec("hubert-base.L12", "audio", 3, "sequence")
VEC = InputSpec("is13", "audio", 4, "vector")
# A dialog model (the fusion study's).
DIALOG = {
    "features": ("is13", "bert-tiny"),
    "model": ModelConfig(fusion="attention", fusion_at="middle", d_model=8, heads=2),
}
# A model of sequence inputs: MSMSER's tiny, deterministic one.
MIT = dict(zip(("features", "model"), model_of("msmser"), strict=True))


@pytest.fixture(scope="module")
def data() -> Any:
    store = make_store()
    return load_data(store, resolve_features(store, ["hubert", "is13"]), get_label_set("6"))


def _side(data: Any, specs: list[InputSpec], seed: int = 3, **options: Any) -> Batches:
    rows = np.arange(len(data))
    return Batches(data, rows, specs, "utterance", 4, shuffle=True, seed=seed, **options)


def _epoch(sides: list[Batches]) -> list[Batch]:
    return [batch for _, batch, _ in StackedSides(sides).epoch()]


def _same(a: list[Batch], b: list[Batch]) -> bool:
    return all(
        torch.equal(x.labels, y.labels)
        and all(torch.equal(x.x[n], y.x[n]) for n in x.x)
        and (x.soft is None) == (y.soft is None)
        for x, y in zip(a, b, strict=True)
    ) and len(a) == len(b)


def test_the_defaults_change_nothing(data: Any) -> None:
    plain = _epoch([_side(data, [SEQ, VEC])])
    asked = _epoch([_side(data, [SEQ, VEC], sampler="shuffle", augment=None)])
    assert _same(plain, asked) and all(b.soft is None for b in asked)
    # an augmenter that draws no mask and no mix changes neither the batches nor their order
    idle = _epoch([_side(data, [SEQ, VEC], augment=Augment((0, 0), (0, 0)))])
    assert _same(plain, idle)


def test_a_balanced_sampler_draws_classes_evenly_with_as_many_batches(data: Any) -> None:
    rows = np.flatnonzero(data.labels != 0)  # class 0 left out: it is never drawn
    skewed = np.concatenate([rows, np.flatnonzero(data.labels == 1).repeat(8)])
    make = lambda s: Batches(data, skewed, [SEQ], "utterance", 4, shuffle=True, seed=1, sampler=s)  # noqa: E731
    shuffled, balanced = make("shuffle"), make("balanced")
    counts = np.zeros(len(data.classes))
    for _ in range(20):
        plans = balanced.plans()
        assert len(plans) == len(shuffled.plans()) == len(balanced)
        drawn = np.concatenate([p.positions for p in plans])
        assert len(drawn) == len(skewed)
        counts += np.bincount(data.labels[drawn], minlength=len(counts))
    present = np.unique(data.labels[skewed])
    share = counts[present] / counts.sum()
    assert counts[0] == 0 and np.allclose(share, 1 / len(present), atol=0.03)
    again = make("balanced")
    first = [p.positions.tolist() for p in again.plans()]
    assert first == [p.positions.tolist() for p in make("balanced").plans()]  # same seed
    # bucketed: each batch's lengths close, far closer than in batches drawn unbucketed
    lengths = data.features[SEQ.name].lengths_np
    ranges = lambda batches: np.mean([np.ptp(lengths[b]) for b in batches])  # noqa: E731
    drawn = np.random.default_rng(0).permutation(
        np.concatenate([p.positions for p in again.plans()])
    )
    unbucketed = [drawn[i : i + 4] for i in range(0, len(drawn), 4)]
    assert ranges([p.positions for p in again.plans()]) < 0.5 * ranges(unbucketed)


def test_masks_zero_real_frames_only_and_repeat_with_the_seed(data: Any) -> None:
    augment = Augment(time=(2, 50), features=(1, 34))
    plain = _epoch([_side(data, [SEQ, VEC])])
    masked = _epoch([_side(data, [SEQ, VEC], augment=augment)])
    again = _epoch([_side(data, [SEQ, VEC], augment=augment)])
    assert _same(masked, again) and not _same(masked, plain)
    for p, m in zip(plain, masked, strict=True):
        assert torch.equal(p.x["is13"], m.x["is13"])  # vectors untouched
        x, y, real = p.x[SEQ.name], m.x[SEQ.name], p.mask[SEQ.name]
        changed = (x != y).any(-1)  # [K, B, T]
        assert not (changed & ~real).any()  # padding never touched
        assert torch.all((y == x) | (y == 0))  # only zeroed
    # one member stacked with another draws what it draws alone
    pair = _epoch([_side(data, [SEQ], augment=augment), _side(data, [SEQ], 9, augment=augment)])
    alone = _epoch([_side(data, [SEQ], augment=augment)])
    for a, b in zip(pair, alone, strict=True):
        rows = b.x[SEQ.name].shape[1:3]
        assert torch.equal(a.x[SEQ.name][0, : rows[0], : rows[1]], b.x[SEQ.name][0])


def test_mixup_mixes_vectors_and_targets_of_real_rows(data: Any) -> None:
    augment = Augment(mixup=0.4)
    plain = _epoch([_side(data, [VEC]), _side(data, [VEC], 5)])
    mixed = _epoch([_side(data, [VEC], augment=augment), _side(data, [VEC], 5, augment=augment)])
    assert _same(mixed, _epoch([_side(data, [VEC], augment=augment),
                                _side(data, [VEC], 5, augment=augment)]))  # fmt: skip
    assert not _same(mixed, plain)
    for p, m in zip(plain, mixed, strict=True):
        labelled = p.labels >= 0
        assert m.soft is not None and torch.equal(m.labels, p.labels)
        sums = m.soft.sum(-1)
        assert torch.allclose(sums[labelled], torch.ones(())) and not sums[~labelled].any()
        assert not m.x["is13"][~labelled].any()  # padding stays zeros
        # each row lies between its own vector and another real row's
        lam = m.soft.gather(-1, p.labels.clamp_min(0).unsqueeze(-1)).squeeze(-1)
        assert torch.all(lam[labelled] >= 0) and torch.all(lam[labelled] <= 1 + 1e-6)


def test_validation_and_test_sides_are_never_changed(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Of every side a run stacks, only the training sides (shuffled) draw or change."""
    seen: list[tuple[bool, bool, bool]] = []
    original = StackedSides.__init__

    def spy(self: StackedSides, sides: list[Batches], static: bool = False) -> None:
        for side in sides:
            seen.append((side.rng is not None, side.draws.augment is not None, side.balanced))
        original(self, sides, static)

    monkeypatch.setattr(StackedSides, "__init__", spy)
    on = {"sampler": "balanced", "mixup": 0.2, "final": True}
    train(small_config(store_path, tmp_path, epochs=1, protocol="session5", **on))
    assert {(True, True, True), (False, False, False)} == set(seen)
    plain = Batches(make_store_data(), np.arange(6), [VEC], "utterance", 4, sampler="balanced")
    assert not plain.balanced  # unshuffled (evaluation): nothing drawn


def make_store_data() -> Any:
    store = make_store()
    return load_data(store, resolve_features(store, ["is13"]), get_label_set("6"))


def _options(**changes: Any) -> TrainConfig:
    model = ModelConfig(fusion="none")
    return TrainConfig(store="s.zarr", features=("is13",), model=model, **changes)


def test_mask_options_resolve_and_refuse() -> None:
    assert augment_of(_options(augment="mask")) == Augment((2, 10), (2, 10))
    assert augment_of(_options(augment="mask", mask_time=(0, 0))) == Augment((0, 0), (2, 10))
    with pytest.raises(ConfigError, match="add --augment mask"):
        augment_of(_options(mask_time=(2, 10)))
    with pytest.raises(ConfigError, match="give N,W"):
        augment_of(_options(augment="mask", mask_features=(2, 101)))


def test_runs_record_train_and_resume_with_the_options(store_path: Path, tmp_path: Path) -> None:
    base = small_config(store_path, tmp_path, epochs=2, protocol="session5")
    plain = train(base)
    on = replace(base, sampler="balanced", mixup=0.2)
    record = train(on)
    assert record.name == plain.name + "_sampler-balanced_mixup0.2"
    assert record.config["sampler"] == "balanced" and record.config["mixup"] == 0.2
    off = ("sampler", "augment", "mixup", "mask_time", "mask_features", "views")
    assert {k: plain.config[k] for k in off} == dict.fromkeys(off)  # recorded, off
    assert record.folds[0].curves != plain.folds[0].curves  # its steps saw other batches
    assert train(on).folds == record.folds  # resumed: the same config, nothing retrained
    again = train(replace(on, out=str(tmp_path / "again")))
    assert again.folds[0].curves == record.folds[0].curves  # same seed, same numbers
    with pytest.raises(ConfigError, match="mixup"):
        train(replace(on, mixup=0.3, name=record.name))  # another config: no resume
    mit = replace(base, **MIT, epochs=1)
    masked = train(replace(mit, augment="mask"))
    assert masked.name.endswith("_augment-mask")
    assert read(Path(masked.config["out"]) / masked.name / RECORD).config["mask_time"] == [2, 10]
    # `ser report` shows them, the model card's command repeats them
    assert "sampler=balanced, mixup=0.2" in settings_label(record)
    assert "augment=mask, mask_time=[2,10]" in settings_label(masked)
    assert "--augment mask --mask-time 2,10 --mask-features 2,10" in train_command(masked)
    assert "--sampler balanced --mixup 0.2" in train_command(record)


@pytest.mark.parametrize(
    "options",
    [
        {"augment": "mask", **MIT},
        {"mixup": 0.4, "sampler": "balanced", "model": ModelConfig(fusion="none", dropout=0.0)},
    ],
)
def test_a_graphed_run_sees_the_eager_runs_batches(
    store_path: Path, tmp_path: Path, options: dict[str, Any]
) -> None:
    """The augmentation happens on the data side: a graphed step (on the CPU, the graphed
    path's copies of each batch) trains on the batches the eager one does."""
    base = small_config(store_path, tmp_path, epochs=2, protocol="session5", **options)
    eager = train(replace(base, out=str(tmp_path / "eager")))
    graphed = train(replace(base, out=str(tmp_path / "graphed"), step="graphed"))
    assert graphed.execution.step == "graphed"
    for a, b in zip(eager.folds, graphed.folds, strict=True):
        np.testing.assert_allclose(a.curves["train_loss"], b.curves["train_loss"], rtol=1e-5)
        np.testing.assert_allclose(a.curves["val_loss"], b.curves["val_loss"], rtol=1e-5)


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"mixup": 0.2, **MIT}, "--mixup mixes utterance vectors"),
        ({"mixup": 0.2, "target": "attributes"}, "--mixup mixes class targets"),
        ({"augment": "mask"}, "--augment mask masks frames of sequence inputs"),
        ({"sampler": "balanced", **DIALOG}, "--sampler balanced draws utterances"),
        ({"mixup": 0.2, **DIALOG}, "--mixup mixes utterance vectors"),
    ],
)
def test_refusals(store_path: Path, tmp_path: Path, changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        train(small_config(store_path, tmp_path, **changes))
