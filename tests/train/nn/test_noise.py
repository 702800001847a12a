"""Per-member random streams (ser.train.nn.noise): stacked draws land where, and are what,
one copy per member would make, in a number of operations that does not grow with K."""

from __future__ import annotations

import math

import pytest
import torch

from ser.train.nn.noise import LANES, Noise, Streams


def streams(k: int) -> Streams:
    return Streams([torch.Generator().manual_seed(100 + i) for i in range(k)])


def reference(
    noise: Noise, members: list[bool], shape: tuple[int, ...], axes: tuple
) -> torch.Tensor:  # type: ignore[type-arg]
    """One copy per member into its own box: what `Noise.lanes` must equal."""
    out = torch.full((len(members), *shape), LANES - 1, dtype=torch.int16)
    for k, m in enumerate(members):
        box = noise.box(k, shape, axes)
        if m and 0 not in box:
            region = (k, *(slice(0, n) for n in box))
            out[region] = noise.streams.take(k, math.prod(box)).view(box)
    return out


SIZES = {"batch": [3, 0, 2, 3, 1], "t": [5, 0, 7, 2, 0]}  # member 1 has no batch this step


@pytest.mark.parametrize("one_launch", [False, True])
@pytest.mark.parametrize("device_extents", [False, True])
@pytest.mark.parametrize(
    "members", [[True] * 5, [True, True, False, True, False], [False, False, True, False, False]]
)
def test_stacked_lanes_equal_one_copy_per_member(
    members: list[bool], device_extents: bool, one_launch: bool
) -> None:
    extents = {"batch": torch.tensor([3, 0, 2, 3, 1]), "t": torch.tensor([5, 1, 7, 2, 1])}
    for shape, axes in (((3, 7, 4), ("batch", "t", None)), ((3, 2, 7), ("batch", None, "t")),
                        ((6,), (None,)), ((3, 7), ("batch", "t"))):  # fmt: skip
        ext = dict(extents) if device_extents else {}
        stacked = Noise(streams(5), SIZES, extents=ext, one_launch=one_launch)
        alone = Noise(streams(5), SIZES)
        for _ in range(2):  # a second site of the same shape reuses the kept mask
            got = stacked.lanes(members, shape, axes, torch.device("cpu"))
            assert torch.equal(got, reference(alone, members, shape, axes)), (shape, axes)


def test_operations_a_dropout_takes_do_not_grow_with_members(op_count) -> None:  # type: ignore[no-untyped-def]
    counts = []
    for k in (3, 12):
        sizes = {"batch": [4] * k, "t": [6 + i % 3 for i in range(k)]}
        noise = Noise(streams(k), sizes, one_launch=True)  # as on a GPU
        x = torch.ones(k, 4, 8, 16)
        noise.dropout(x, [0.1] * k, ("batch", "t", None))  # warm: pools drawn, constants made
        with op_count() as count:
            noise.dropout(x, [0.1] * k, ("batch", "t", None))
        counts.append(count.count)
    # Slices of each member's pool are views (no kernel on a GPU); one copy per member
    # into its box, as before, made 3 more launches a member.
    assert counts[0] == counts[1], counts


def test_dropout_in_bf16_costs_no_conversion(op_count) -> None:  # type: ignore[no-untyped-def]
    """The keep scale is kept in the dropped tensor's dtype: a bf16 dropout (autocast on a
    GPU) takes as many operations as a float32 one, and keeps the same entries."""
    counts, outs = [], []
    for dtype in (torch.float32, torch.bfloat16):
        noise = Noise(streams(3), {"batch": [4] * 3, "t": [6] * 3}, one_launch=True)
        x = torch.ones(3, 4, 6, 8, dtype=dtype)
        noise.dropout(x, [0.25] * 3, ("batch", "t", None))  # warm: pools drawn, constants made
        noise.streams.next_step()
        with op_count() as count:
            outs.append(noise.dropout(x, [0.25] * 3, ("batch", "t", None)))
        counts.append(count.count)
    assert counts[0] == counts[1], counts
    assert outs[1].dtype == torch.bfloat16
    torch.testing.assert_close(outs[1], outs[0].to(torch.bfloat16))
