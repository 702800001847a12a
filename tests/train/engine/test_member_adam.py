"""Stacked members of unequal epochs (`ser.train.engine.member_adam`): torch's Adam arithmetic per
member, and a member without a batch left exactly as it was; graphed LOSO members stacked
whatever their steps an epoch, equal to the members trained one at a time."""

from __future__ import annotations

import doctest
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

import ser.train.engine.member_adam as member_adam_module
from ser.train.engine.member_adam import MemberAdam
from ser.train.recipe import train
from tests.stores import labelled_store
from tests.train.engine.test_steps import SETS, config


def _grads(steps: int, members: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(members, 4, 3, generator=generator) for _ in range(steps)]


def test_an_active_member_steps_as_torch_adam() -> None:
    stacked = torch.nn.Parameter(torch.linspace(-1, 1, 12).view(1, 4, 3))
    alone = torch.nn.Parameter(stacked.detach()[0].clone())
    ours = MemberAdam([stacked], lr=0.01, weight_decay=0.1)
    theirs = torch.optim.Adam([alone], lr=0.01, weight_decay=0.1, foreach=False)
    for grad in _grads(20, 1):
        stacked.grad, alone.grad = grad.clone(), grad[0].clone()
        ours.step()
        theirs.step()
    torch.testing.assert_close(stacked.detach()[0], alone.detach(), rtol=1e-5, atol=1e-6)
    state = ours.state[stacked]
    torch.testing.assert_close(state["exp_avg_sq"][0], theirs.state[alone]["exp_avg_sq"])


def test_a_masked_member_is_the_member_trained_alone_bit_for_bit() -> None:
    """Member 1 has no batch at steps 3, 4 and 7 (its epochs end earlier): its weights,
    moments and step count are untouched there, and at the end equal those of member 1
    trained alone on its own steps, bit for bit."""
    start = torch.linspace(-1, 1, 24).view(2, 4, 3)
    stacked = torch.nn.Parameter(start.clone())
    alone = torch.nn.Parameter(start[1:].clone())
    both, one = MemberAdam([stacked], lr=0.01), MemberAdam([alone], lr=0.01)
    for i, grad in enumerate(_grads(10, 2)):
        present = i not in (3, 4, 7)
        stacked.grad = grad.clone()
        both.active.copy_(torch.tensor([True, present]))
        before = (stacked.detach()[1].clone(), both.counts[1].clone())
        both.step()
        if not present:
            assert torch.equal(stacked.detach()[1], before[0])
            assert torch.equal(both.counts[1], before[1])
            continue
        alone.grad = grad[1:].clone()
        one.step()
    assert torch.equal(stacked.detach()[1:], alone.detach())
    for name in ("exp_avg", "exp_avg_sq"):
        assert torch.equal(both.state[stacked][name][1:], one.state[alone][name])
    assert both.counts.tolist() == [10.0, 7.0]


def test_graphed_loso_members_stack_whatever_their_steps(tmp_path: Path) -> None:
    """LOSO's five folds take different steps an epoch (labels shuffled across sessions,
    batches of 3): graphed, they train as one stack (the shorter members masked at the end
    of each epoch) and score as each trained alone."""
    store = tmp_path / "unequal.zarr"
    labelled_store(store, SETS, shuffle=3)
    settings = config(store, tmp_path / "stacked", "graphed", protocol="loso", epochs=2)
    settings = replace(settings, batch_size=3)
    stacked = train(replace(settings, members_at_once=5))
    alone = train(replace(settings, out=str(tmp_path / "alone"), members_at_once=1))
    assert stacked.execution.stacked == 5 and alone.execution.stacked == 1
    assert {f.stacked for f in stacked.folds} == {5}  # one group
    eager = train(replace(settings, out=str(tmp_path / "eager"), members_at_once=5, step="eager"))
    assert max(f.stacked for f in eager.folds) < 5  # eager stacks only equal steps
    for a, b in zip(alone.folds, stacked.folds, strict=True):
        np.testing.assert_allclose(a.curves["train_loss"], b.curves["train_loss"], rtol=1e-4)
        np.testing.assert_allclose(a.curves["val_loss"], b.curves["val_loss"], rtol=1e-4)


def test_doctests() -> None:
    assert doctest.testmod(member_adam_module).failed == 0
