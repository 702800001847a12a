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


def _kernels(opt: MemberAdam, active: list[bool]) -> int:
    """Operators one `step` runs that would launch work on a GPU, at any nesting depth
    (a foreach operator over tensors of different shapes runs one per tensor there)."""
    from torch.profiler import ProfilerActivity, profile

    views = {"view", "as_strided", "reshape", "narrow", "slice", "select", "item",
             "_local_scalar_dense", "empty", "empty_strided", "alias", "detach"}  # fmt: skip
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        opt.step(active)
    names = [e.name.removeprefix("aten::") for e in prof.events() if e.name.startswith("aten::")]
    return sum(name not in views for name in names)


def test_a_step_costs_the_same_few_operators_for_3_or_30_parameter_tensors() -> None:
    counts = []
    for n in (3, 30):
        params = [torch.nn.Parameter(torch.randn(4, i + 1, 3)) for i in range(n)]
        opt = MemberAdam(params, lr=[1e-3] * 4, weight_decay=[0.0] * 4)
        for p in params:
            p.grad = torch.randn_like(p)
        counts.append(_kernels(opt, [True, False, True, True]))
    # The same operators whatever the number of tensors: Adam's formulas once per group
    # of members over the one buffer (78 at any depth, public operators only).
    assert counts[0] == counts[1] <= 80


def test_parameters_become_rows_of_one_buffer_with_their_values() -> None:
    params = [torch.nn.Parameter(torch.randn(3, 2, 5)), torch.nn.Parameter(torch.randn(3, 4))]
    before = [p.detach().clone() for p in params]
    opt = MemberAdam(params, lr=[1e-3] * 3, weight_decay=[0.0] * 3)
    assert opt.flat.shape == (3, 14)
    for p, value in zip(params, before, strict=True):
        assert torch.equal(p.detach(), value)
        assert p.untyped_storage().data_ptr() == opt.flat.untyped_storage().data_ptr()
    opt.flat[1].zero_()  # member 1's row is member 1's weights
    assert not params[0][1].any() and not params[1][1].any() and params[0][0].any()


def test_mixed_dtypes_or_member_counts_are_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="one dtype"):
        MemberAdam(
            [torch.nn.Parameter(torch.ones(2, 3)), torch.nn.Parameter(torch.ones(2, 3).double())],
            lr=[0.1, 0.1],
            weight_decay=[0.0, 0.0],
        )
    with pytest.raises(ValueError, match="2 members"):
        MemberAdam([torch.nn.Parameter(torch.ones(3, 3))], lr=[0.1, 0.1], weight_decay=[0.0, 0.0])


def test_fp16_steps_unscale_each_member_by_its_own_scale() -> None:
    """The fused kernel divides each member's gradients by that member's scale: a scaled
    step equals an unscaled one on the true gradients."""
    torch.manual_seed(1)
    start, grad = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    scaled, plain = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    ours = MemberAdam([scaled], lr=[0.1, 0.2, 0.3], weight_decay=[0.0, 0.1, 0.0], scaled=True)
    reference = MemberAdam([plain], lr=[0.1, 0.2, 0.3], weight_decay=[0.0, 0.1, 0.0])
    ours.scale = torch.tensor([2.0**16, 2.0**10, 4.0])  # members with different scales
    for _ in range(3):
        scaled.grad = grad * ours.scale.view(3, 1, 1)
        plain.grad = grad.clone()
        ours.step([True, True, True])
        reference.step([True, True, True])
    torch.testing.assert_close(scaled.detach(), plain.detach(), rtol=0, atol=0)
