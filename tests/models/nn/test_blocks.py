"""Mask helpers, attention pooling, frame scaling, the MLP head, dropout (nn.blocks)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from ser.models.nn.blocks import (
    MLP,
    AttentionPool,
    Dropout,
    FrameScale,
    ensure_length,
    keep_one,
    masked_mean,
    sinusoidal_positions,
)


def test_keep_one_switches_on_position_zero_of_empty_rows_only() -> None:
    mask = torch.tensor([[[False, True, False], [False, False, False]]])  # [1, 2, 3]
    want = torch.tensor([[[False, True, False], [True, False, False]]])
    assert torch.equal(keep_one(mask), want)
    assert torch.equal(mask, torch.tensor([[[False, True, False], [False, False, False]]]))


def test_ensure_length_pads_an_empty_batch_to_one_masked_position() -> None:
    x, mask = torch.randn(2, 3, 4, 5), torch.ones(2, 3, 4, dtype=torch.bool)
    same = ensure_length(x, mask)
    assert same[0] is x and same[1] is mask
    x1, mask1 = ensure_length(torch.zeros(2, 3, 0, 5), torch.zeros(2, 3, 0, dtype=torch.bool))
    assert x1.shape == (2, 3, 1, 5) and not bool(x1.any())
    assert mask1.shape == (2, 3, 1) and not bool(mask1.any())


def test_masked_mean_over_real_positions_any_leading_dims() -> None:
    x = torch.randn(2, 3, 4, 5)
    mask = torch.rand(2, 3, 4) < 0.6
    mask[0, 0] = False  # an empty row: zeros
    got = masked_mean(x, mask)  # [2, 3, 5]
    for i in range(2):
        for j in range(3):
            rows = x[i, j][mask[i, j]]
            want = rows.mean(dim=0) if len(rows) else torch.zeros(5)
            torch.testing.assert_close(got[i, j], want)


def test_sinusoidal_positions_are_vaswanis_for_odd_and_even_widths() -> None:
    for dim in (6, 7):
        pe = sinusoidal_positions(9, dim, torch.device("cpu"))
        assert pe.shape == (9, dim)
        for pos in (0, 3, 8):
            for i in range(dim):
                angle = pos / 10000 ** ((i - i % 2) / dim)
                want = math.sin(angle) if i % 2 == 0 else math.cos(angle)
                assert abs(pe[pos, i].item() - want) < 1e-5


def test_attention_pool_ignores_padding_and_stays_finite_on_empty_rows() -> None:
    torch.manual_seed(0)
    pool = AttentionPool(4)
    x = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.bool)
    junk = torch.where(mask.unsqueeze(-1), x, torch.randn(3, 5, 4) * 1e3)
    out = pool(junk, mask)  # [B, D]
    assert out.shape == (3, 4) and torch.isfinite(out).all()
    torch.testing.assert_close(out[:2], pool(x, mask)[:2])
    torch.testing.assert_close(out[0], pool(x[:1, :3])[0])  # mask None: every position
    weights = torch.softmax(pool.score(x[1]).squeeze(-1), dim=0)  # [T]
    torch.testing.assert_close(out[1], weights @ x[1])
    torch.testing.assert_close(out[2], junk[2, 0])  # no real position: the first


def test_frame_scale_multiplies_each_frame_by_a_gate_in_zero_one() -> None:
    torch.manual_seed(0)
    scale = FrameScale(4)
    x = torch.randn(2, 3, 4)
    out = scale(x)
    gate = out / x  # [B, T, D], one value per frame
    assert out.shape == x.shape
    torch.testing.assert_close(gate, gate[..., :1].expand_as(gate))
    assert bool(((gate > 0) & (gate < 1)).all())


@pytest.mark.parametrize("act", [None, torch.tanh])
def test_mlp_is_linear_act_dropout_linear(
    act: Callable[[torch.Tensor], torch.Tensor] | None,
) -> None:
    """ReLU unless told (late_prob's text head: tanh)."""
    torch.manual_seed(0)
    mlp = MLP(5, 7, 3, dropout=0.5) if act is None else MLP(5, 7, 3, dropout=0.5, act=act)
    x = torch.randn(4, 5)
    hidden = (act or torch.relu)(x @ mlp.hidden.weight.T + mlp.hidden.bias)
    want = hidden @ mlp.out.weight.T + mlp.out.bias
    torch.testing.assert_close(mlp.eval()(x), want)
    mlp.train()
    assert mlp(x).shape == (4, 3)
    assert not torch.allclose(mlp(x), mlp(x))  # dropout draws in training


def test_dropout_keeps_1_minus_p_scaled_and_its_gradient_follows_the_mask() -> None:
    torch.manual_seed(0)
    drop = Dropout(0.3)
    x = torch.ones(200_000, requires_grad=True)
    out = drop(x)
    kept = out > 0
    # 200k draws: the kept share's std is ~0.001, so 0.005 is ~5 std.
    assert abs(kept.float().mean().item() - 0.7) < 0.005
    assert torch.allclose(out[kept], torch.tensor(1 / 0.7))
    out.sum().backward()
    assert x.grad is not None
    assert torch.equal(x.grad, kept.float() / 0.7)
    drop.eval()
    assert torch.equal(drop(x), x)  # identity outside training, as nn.Dropout


def test_dropout_draws_a_mask_per_member_under_vmap() -> None:
    from torch.func import vmap

    drop = Dropout(0.5)
    out = vmap(drop, randomness="different")(torch.ones(2, 1000))  # [K, 1000]
    assert not torch.equal(out[0] > 0, out[1] > 0)  # one mask for both would be equal
    same = vmap(drop, randomness="same")(torch.ones(2, 1000))
    assert torch.equal(same[0], same[1])
