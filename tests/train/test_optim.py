"""MemberAdam: K independent Adams (torch.optim.Adam's update) over stacked weights."""

from __future__ import annotations

import torch

from ser.train.optim import MemberAdam


def test_each_member_moves_as_its_own_torch_adam_and_skips_inactive_steps() -> None:
    torch.manual_seed(0)
    stacked = torch.nn.Parameter(torch.randn(2, 3, 4))  # K = 2 members of a [3, 4] weight
    alone = [torch.nn.Parameter(stacked[k].detach().clone()) for k in range(2)]
    lrs, decays = [1e-2, 3e-3], [0.0, 1e-2]
    ours = MemberAdam([stacked], lr=lrs, weight_decay=decays)
    theirs = [
        torch.optim.Adam([p], lr=lr, weight_decay=wd, foreach=False)
        for p, lr, wd in zip(alone, lrs, decays, strict=True)
    ]
    targets = torch.randn(5, 2, 3, 4)
    activity = [(True, True), (True, False), (True, True), (False, True), (True, True)]
    for target, active in zip(targets, activity, strict=True):
        ours.zero_grad()
        ((stacked - target) ** 2).sum().backward()
        ours.step(active)
        for k, (p, opt) in enumerate(zip(alone, theirs, strict=True)):
            if active[k]:
                opt.zero_grad()
                ((p - target[k]) ** 2).sum().backward()
                opt.step()
    for k in range(2):
        torch.testing.assert_close(stacked[k].detach(), alone[k].detach(), rtol=1e-5, atol=1e-6)
    assert ours.steps.tolist() == [4.0, 4.0]


def test_fp16_overflow_skips_that_member_only_and_halves_its_scale() -> None:
    stacked = torch.nn.Parameter(torch.ones(2, 3))
    opt = MemberAdam([stacked], lr=[0.1, 0.1], weight_decay=[0.0, 0.0], scaled=True)
    opt.zero_grad()
    stacked.grad = torch.tensor([[1.0, 1.0, 1.0], [float("inf"), 1.0, 1.0]]) * opt.scale[:, None]
    before = stacked.detach().clone()
    opt.step([True, True])
    assert not torch.equal(stacked[0], before[0]) and torch.equal(stacked[1], before[1])
    assert opt.scale.tolist() == [2.0**16, 2.0**15]
    assert opt.steps.tolist() == [1.0, 0.0]
