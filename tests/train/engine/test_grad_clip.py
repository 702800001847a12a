"""`--grad-clip`: each member's gradient scaled as `torch.nn.utils.clip_grad_norm_`
scales one model's, a stacked member's as it would be alone; a clipped run trains
otherwise than an unclipped one, and never shares its members."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from ser.train.engine.ensemble import Ensemble
from ser.train.engine.loop import clip_gradients
from ser.train.recipe import train_many
from tests.train.conftest import SETS, small_config


def _backward(ensemble: Ensemble, x: torch.Tensor) -> None:
    ensemble.call(lambda module, x: (module(x) ** 2).sum(), x).sum().backward()


@pytest.mark.parametrize("max_norm", [0.05, 1e6])
def test_each_member_is_clipped_as_torch_clips_it_alone(max_norm: float) -> None:
    torch.manual_seed(0)
    members = [nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)) for _ in range(3)]
    alone = copy.deepcopy(members)
    x = torch.randn(3, 5, 4)  # [K, B, 4]
    stacked = Ensemble(members)
    _backward(stacked, x)
    clip_gradients(stacked, max_norm)
    for k, module in enumerate(alone):
        one = Ensemble([copy.deepcopy(module)])  # a member alone, through ser's path
        _backward(one, x[k : k + 1])  # [1, B, 4]
        clip_gradients(one, max_norm)
        (module(x[k]) ** 2).sum().backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm)
        for (name, p), q, r in zip(
            module.named_parameters(), one.parameters(), stacked.parameters(), strict=True
        ):
            assert p.grad is not None and q.grad is not None and r.grad is not None
            torch.testing.assert_close(q.grad, p.grad, msg=name)
            torch.testing.assert_close(r.grad[k], p.grad, msg=name)


def test_a_clipped_run_trains_apart_and_otherwise(
    labelled_stores: Callable[..., Path], tmp_path: Path
) -> None:
    store = labelled_stores({"is13": SETS["is13"]})
    base = small_config(store, tmp_path, protocol="session5", epochs=2, members_at_once=8)
    plain, clipped = train_many(
        [replace(base, name="plain"), replace(base, name="clipped", grad_clip=1e-3)]
    )
    assert clipped.config["grad_clip"] == 1e-3 and plain.config["grad_clip"] is None
    assert clipped.name.endswith("clipped")
    losses = [run.folds[0].curves.train_loss for run in (plain, clipped)]
    assert losses[0] != losses[1]
