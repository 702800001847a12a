"""A member trained in an ensemble is the member trained alone (ser.train.engine.ensemble, group).

`ser train` trains the (seed, fold) runs that share a group key as the members of one
`Ensemble` (torch.func); with `members_at_once=1` it trains them one after another.
Without randomness (dropout 0, RMM off) each member gets the same per-epoch losses,
selected epoch and test predictions either way, to float tolerance, for every family.
With randomness on, a stacked member is the same model drawing other random numbers:
its draws are its own (two identical members of one stack diverge) and K stacked seeds
score what K separate seeds score, within the seed-to-seed spread.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import ser.train.checkpoint as checkpoint_module
import ser.train.prepare as prepare_module
from ser.models import FAMILIES, FamilyConfig, ModelConfig
from ser.runs.record import RunRecord
from ser.train import batches
from ser.train.engine.ensemble import Ensemble
from ser.train.recipe import TrainConfig, train, train_many
from tests.registries import registered_families, tiny_features
from tests.stores import add_layer_sets, labelled_store
from tests.train.conftest import small_config
from tests.train.spies import Groups

SETS = {
    "hubert-tiny.L2": ("hubert", "audio", "frame", 6, "float16"),
    "is13": ("is13", "audio", "utterance", 7, "float32"),
    "bert-tiny": ("bert", "text", "token", 5, "float16"),
}

# Members a stack may take: all of them (the CPU's default is 1, one after another).
STACKED = 64

# Beyond every registered family's small model without randomness (`Family.tiny`, on
# the inputs tests/registries.py picks), the variants whose code differs most, also
# without randomness: MSMSER's concat, layered inputs (`.L*`), each member's own layer
# mix, in a stage too (late_prob).
VARIANTS = {
    "msmser-concat": (
        ("hubert-tiny.L2", "bert-tiny"),
        ModelConfig(
            fusion="concat", d_model=8, heads=2, layers=1, eval_mask="text", dropout=0.0, rmm=False
        ),
    ),
    "dialog-layers": (
        ("tiny-hubert.L*", "tiny-bert.L*"),
        ModelConfig(
            fusion="add", fusion_at="logits", loss="perspective", d_model=8, heads=2, dropout=0.0
        ),
    ),
    "late_prob-layers": (
        ("tiny-hubert.L*", "tiny-bert.L*"),
        ModelConfig(fusion="late-prob", d_model=8, cnn_channels=(2, 3), dropout=0.0),
    ),
}


def model_of(family: str) -> tuple[tuple[str, ...], FamilyConfig]:
    """(features, model) of a registered family's small model or of a variant."""
    if family in VARIANTS:
        return VARIANTS[family]
    return tiny_features(family), FAMILIES[family].tiny_config()


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "features.zarr"
    store = labelled_store(path, SETS, per_dialog=8)
    add_layer_sets(store, "tiny-hubert", ("hubert", "audio", "frame", 6, "float16"), range(3))
    add_layer_sets(store, "tiny-bert", ("bert", "text", "token", 5, "float16"), range(3))
    return path


def config(store: Path, out: Path, family: str, **changes: Any) -> TrainConfig:
    features, model = model_of(family)
    base = small_config(store, out, features=features, model=model, batch_size=4, seeds=2)
    return replace(base, **{"patience": 2, "name": family, "members_at_once": STACKED, **changes})


def run(cfg: TrainConfig) -> tuple[RunRecord, dict[tuple[int, str], Any], int]:
    """(record, {(seed, fold): (manifest rows, predicted classes) of its test}, groups)."""
    predictions: dict[tuple[int, str], Any] = {}
    original = checkpoint_module.save_fold_checkpoint

    def spy(run, key, state, zscore, **extra):  # type: ignore[no-untyped-def]
        test = extra["test"]
        predictions[(extra["seed"], extra["fold"])] = (test["rows"], test["pred"])
        return original(run, key, state, zscore, **extra)

    groups = Groups()
    checkpoint_module.save_fold_checkpoint = spy  # type: ignore[assignment]
    try:
        record = train(cfg, groups)
    finally:
        checkpoint_module.save_fold_checkpoint = original  # type: ignore[assignment]
    return record, predictions, len(groups.started)


@pytest.mark.slow
@pytest.mark.parametrize("family", [*registered_families(), *VARIANTS])
def test_stacked_members_equal_separate_runs_without_randomness(
    family: str, store_path: Path, tmp_path: Path
) -> None:
    stacked, stacked_predictions, groups = run(config(store_path, tmp_path / "stacked", family))
    alone, alone_predictions, runs = run(
        config(store_path, tmp_path / "alone", family, members_at_once=1)
    )
    assert runs == 10 and groups <= 5  # 5 folds x 2 seeds: the seeds of a fold stacked
    for a, b in zip(stacked.folds, alone.folds, strict=True):
        assert (a.seed, a.fold) == (b.seed, b.fold)
        for curve in ("train_loss", "val_loss", "val_ua"):
            np.testing.assert_allclose(a.curves[curve], b.curves[curve], rtol=1e-4, atol=1e-5)
        assert a.best_epoch == b.best_epoch
        assert a.to_json().keys() == b.to_json().keys()
        for name, weights in a.layer_weights.items():
            np.testing.assert_allclose(weights, b.layer_weights[name], rtol=1e-4, atol=1e-6)
        for name, stage in a.stages.items():
            np.testing.assert_allclose(
                stage.curves["train_loss"], b.stages[name].curves["train_loss"], rtol=1e-4
            )
    assert stacked_predictions == alone_predictions


@pytest.mark.slow
def test_members_never_see_another_members_validation_or_test(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every stacked training batch: member k's slot holds only member k's training
    utterances (its fold's training side), never another fold's validation or test."""
    from ser.cache import FeatureStore

    manifest = FeatureStore.open(store_path).manifest
    sessions = np.asarray(manifest.column("session"))
    seen: list[torch.Tensor] = []
    original = batches.StackedSides.gather

    def spy(self, plans, pos, *views):  # type: ignore[no-untyped-def]
        out = original(self, plans, pos, *views)
        if torch.is_grad_enabled():  # a training step (evaluation runs without gradients)
            seen.append(out.index.clone())
        return out

    monkeypatch.setattr(batches.StackedSides, "gather", spy)
    cfg = config(
        store_path, tmp_path, "msmser", patience=None, epochs=2, protocol="session5", seeds=3
    )
    record, _, groups = run(cfg)
    assert groups == 1
    held_out = {(f.seed, f.fold): set(f.test_groups) | set(f.val_groups) for f in record.folds}
    order = [(f.seed, f.fold) for f in record.folds]
    assert seen
    for index in seen:  # [K, B] manifest rows, -1 = padding
        for k, key in enumerate(order):
            rows = index[k][index[k] >= 0].numpy()
            assert not set(sessions[rows].tolist()) & held_out[key]


@pytest.mark.slow
def test_one_group_key_stacks_runs_that_share_model_and_optimiser(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train_many` (what the sweep calls): runs with the same model and optimiser
    settings stack whatever their names and patience; another lr or model does not.
    All four read the same data, loaded once, the store named by any path."""
    base = config(store_path, tmp_path / "many", "unimodal", protocol="session5", seeds=1)
    same = [replace(base, name="a"), replace(base, name="b", patience=1)]
    other = [
        replace(base, name="c", lr=5e-3, store=os.path.relpath(store_path)),
        replace(base, name="d", model=replace(base.model, d_model=6)),
    ]
    loads: list[Any] = []
    load = prepare_module.load_data
    monkeypatch.setattr(prepare_module, "load_data", lambda *a: loads.append(a) or load(*a))
    groups = Groups()
    records = train_many([*same, *other], groups)
    assert len(groups.started) == 3  # {a, b}, {c}, {d}
    assert [r.name for r in records] == ["a", "b", "c", "d"]
    assert len(loads) == 1


@pytest.mark.slow
def test_each_member_draws_its_own_randomness(store_path: Path, tmp_path: Path) -> None:
    """Two runs alike in all but a patience neither reaches (same seed, weights, batch
    order), dropout on: trained alone they draw the same masks and agree; stacked, each
    draws its own and they part. One dropout mask for the whole stack would make them
    agree here too. (Runs alike in every training setting train once: test_shared_training.)"""
    base = config(
        store_path,
        tmp_path,
        "unimodal",
        protocol="session5",
        seeds=1,
        patience=None,
        model=ModelConfig(fusion="none", d_model=8, dropout=0.5),
    )
    twins = [replace(base, name="twin_a"), replace(base, name="twin_b", patience=100)]
    alone = [train(replace(t, out=str(tmp_path / "alone"), members_at_once=1)) for t in twins]
    together = train_many(
        [replace(t, out=str(tmp_path / "stacked"), members_at_once=STACKED) for t in twins]
    )
    assert together[0].folds[0].stacked == 2
    losses = [[r.folds[0].curves["train_loss"] for r in rs] for rs in (alone, together)]
    assert losses[0][0] == losses[0][1]
    assert losses[1][0][0] != losses[1][1][0]  # the first epoch already differs


@pytest.mark.slow
def test_the_cpu_stacks_the_unimodal_mlp_by_default_and_a_member_is_its_run_alone(
    store_path: Path, tmp_path: Path
) -> None:
    """On the CPU the unimodal MLP's members on narrow inputs stack by default (which
    families at which widths: each family's cost's `stack_width`, tested in tests/runtime). A
    default-stacked member without randomness is its run alone; with dropout, see
    `test_stacked_seeds_score_as_separate_seeds` (the same family, stacked)."""
    stacked, stacked_predictions, groups = run(
        config(store_path, tmp_path / "default", "unimodal", members_at_once=None)
    )
    alone, alone_predictions, runs = run(
        config(store_path, tmp_path / "alone", "unimodal", members_at_once=1)
    )
    assert runs == 10 and groups <= 5 and stacked.folds[0].stacked > 1
    for a, b in zip(stacked.folds, alone.folds, strict=True):
        np.testing.assert_allclose(a.curves["val_loss"], b.curves["val_loss"], rtol=1e-4)
        assert a.best_epoch == b.best_epoch
    assert stacked_predictions == alone_predictions


@pytest.fixture(scope="module")
def weak_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store whose classes are hard to tell apart: seeds spread, dropout matters."""
    path = tmp_path_factory.mktemp("weak") / "features.zarr"
    labelled_store(path, SETS, per_dialog=8, signal=0.7)
    return path


@pytest.mark.slow
def test_stacked_seeds_score_as_separate_seeds(weak_store: Path, tmp_path: Path) -> None:
    """With dropout on, 16 seeds stacked and the same 16 one after another give the same
    mean test UA within the seed-to-seed spread: |difference of the means| <= 3 standard
    errors of that difference. Measured here (seeds 0-15, 16-31, 32-47): standard errors
    2.6, 2.9, 3.4 UA points (seed std 7-10), differences 2.1, 0.8, 1.3. Together with the
    twins above: a stacked member is the same model, drawing its own numbers."""
    model = ModelConfig(fusion="none", d_model=16, dropout=0.5)
    base = small_config(weak_store, tmp_path, model=model, protocol="session5", val="none")
    base = replace(base, epochs=8, batch_size=4, seeds=16, members_at_once=STACKED)
    stacked = train(replace(base, name="stacked"))
    alone = train(replace(base, name="alone", members_at_once=1))
    ua = [np.array([f.metrics.ua for f in r.folds]) for r in (stacked, alone)]
    assert len(set(ua[0].round(6))) > 1  # the seeds do differ
    error = np.sqrt(ua[0].var(ddof=1) / 16 + ua[1].var(ddof=1) / 16)
    assert abs(ua[0].mean() - ua[1].mean()) <= 3 * error, (ua, error)


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden, self.out = torch.nn.Linear(5, 7), torch.nn.Linear(7, 3)
        self.drop = torch.nn.Dropout(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(torch.relu(self.hidden(x))))


def test_adam_over_stacked_members_steps_each_as_alone() -> None:
    """The executor's contract at its smallest: three modules stacked, ten Adam steps on
    the sum of their losses, equal each module stepped alone by its own Adam."""
    from ser.train.engine.ensemble import Ensemble

    torch.manual_seed(0)
    modules = [Tiny() for _ in range(3)]
    alone = [Tiny() for _ in range(3)]
    for a, m in zip(alone, modules, strict=True):
        a.load_state_dict(m.state_dict())
    ensemble = Ensemble(modules)
    stacked_adam = torch.optim.Adam(ensemble.parameters(), lr=1e-2, weight_decay=1e-3)
    own = [torch.optim.Adam(a.parameters(), lr=1e-2, weight_decay=1e-3) for a in alone]
    for _ in range(10):
        x, y = torch.randn(3, 4, 5), torch.randint(0, 3, (3, 4))  # a batch per member
        loss = ensemble.call(lambda m, x, y: torch.nn.functional.cross_entropy(m(x), y), x, y)
        stacked_adam.zero_grad()
        loss.sum().backward()
        stacked_adam.step()
        for k, (a, opt) in enumerate(zip(alone, own, strict=True)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(a(x[k]), y[k]).backward()
            opt.step()
    for k, a in enumerate(alone):
        for name, t in ensemble.member_state(k).items():
            torch.testing.assert_close(t, a.state_dict()[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("members", [1, 3])
def test_stacked_members_never_attend_on_the_memory_efficient_kernel(members: int) -> None:
    """Under vmap the memory-efficient kernel's backward fails on CUDA: stacked members are
    called with it switched off, a model alone as its caller left it."""
    seen: list[bool] = []

    def look(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        seen.append(torch.backends.cuda.mem_efficient_sdp_enabled())
        return module(x)

    ensemble = Ensemble([nn.Linear(3, 2) for _ in range(members)])
    ensemble.call(look, torch.randn(members, 4, 3))
    assert seen == [members == 1]
    assert torch.backends.cuda.mem_efficient_sdp_enabled()  # restored after the call


def test_a_member_alone_trains_its_modules_own_parameters_in_place() -> None:
    """An ensemble of one (compiled steps' one member, any member alone): the optimiser's
    leaves are the module's own parameters, the loop's stacked view of them writes
    through, and a member's state and write-back are a plain state dict."""
    torch.manual_seed(0)
    module = nn.Linear(3, 2)
    alone = Ensemble([module])
    assert [id(p) for p in alone.parameters()] == [id(p) for p in module.parameters()]
    x = torch.randn(1, 5, 3)  # [K=1, B, 3]
    out = alone.call(lambda m, v: m(v), x)  # [1, B, 2]
    torch.testing.assert_close(out[0], module(x[0]))
    with torch.no_grad():
        alone.state()["bias"].copy_(torch.tensor([[1.0, 2.0]]))  # the tracker's load_best
    assert module.bias.tolist() == [1.0, 2.0]
    other = nn.Linear(3, 2)
    alone.write_back([other])
    assert torch.equal(other.weight, module.weight) and other.bias.tolist() == [1.0, 2.0]


def test_a_member_alone_trains_as_its_module_by_hand_bit_for_bit() -> None:
    """One member trains in place, never as a stack of one cut from every parameter each
    step: the same draws, losses and weights as its module trained by hand, bit for bit,
    with dropout on and fused Adam as the loop uses it."""

    class Dropped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner, self.drop = Tiny(), nn.Dropout(0.3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(self.drop(x))

    torch.manual_seed(0)
    one, copy = Dropped(), Dropped()
    copy.load_state_dict(one.state_dict())
    ensemble = Ensemble([one])

    def in_ensemble(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ensemble.call(lambda m, x, y: nn.functional.cross_entropy(m(x), y), x, y)

    def by_hand(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(copy(x[0]), y[0]).unsqueeze(0)

    ways = [(in_ensemble, ensemble.parameters()), (by_hand, list(copy.parameters()))]
    data = [(torch.randn(1, 4, 5), torch.randint(0, 3, (1, 4))) for _ in range(5)]
    losses: list[list[torch.Tensor]] = [[], []]
    for i, (step, leaves) in enumerate(ways):
        adam = torch.optim.Adam(leaves, lr=1e-2, fused=True)
        one.train(), copy.train()
        torch.manual_seed(1)  # both draw the same dropout masks
        for x, y in data:
            loss = step(x, y)
            loss.sum().backward()
            adam.step()
            adam.zero_grad(set_to_none=True)
            losses[i].append(loss.detach())
    assert all(torch.equal(a, b) for a, b in zip(*losses, strict=True))
    for name, t in ensemble.member_state(0).items():
        assert torch.equal(t, copy.state_dict()[name]), name
