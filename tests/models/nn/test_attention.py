"""Attention and the post-norm layers (ser.models.nn.attention) against PyTorch's own
transformer layers with copied weights, their initialisation, key masks, and vmap."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from ser.models.nn import attention
from ser.models.nn.attention import Attention, DecoderLayer, EncoderLayer, FeedForward, key_mask

D, HEADS = 8, 2


def copy_attention(ours: Attention, ref: nn.MultiheadAttention) -> None:
    """`ref` (PyTorch's attention: one in-projection [3d, d], q rows first) given ours."""
    if ours.cross:
        weight = torch.cat([ours.q.weight, ours.kv.weight])  # [3d, d]
        bias = torch.cat([ours.q.bias, ours.kv.bias])
    else:
        weight, bias = ours.qkv.weight, ours.qkv.bias
    ref.in_proj_weight.copy_(weight)
    ref.in_proj_bias.copy_(bias)
    ref.out_proj.load_state_dict(ours.out.state_dict())


def copy_feedforward(ours: FeedForward, ref: nn.Module) -> None:
    ref.linear1.load_state_dict(ours.up.state_dict())  # type: ignore[union-attr]
    ref.linear2.load_state_dict(ours.down.state_dict())  # type: ignore[union-attr]


def lengths_mask(lengths: list[int], t: int) -> torch.Tensor:
    return torch.arange(t) < torch.tensor(lengths)[:, None]  # [B, T]


@torch.no_grad()
def reference_encoder(ours: EncoderLayer) -> nn.TransformerEncoderLayer:
    ref = nn.TransformerEncoderLayer(
        D, HEADS, 4 * D, dropout=0.1, batch_first=True, norm_first=False
    )
    copy_attention(ours.attn, ref.self_attn)
    copy_feedforward(ours.ff, ref)
    ref.norm1.load_state_dict(ours.norm1.state_dict())
    ref.norm2.load_state_dict(ours.norm2.state_dict())
    return ref


@torch.no_grad()
def reference_decoder(ours: DecoderLayer) -> nn.TransformerDecoderLayer:
    ref = nn.TransformerDecoderLayer(
        D, HEADS, 4 * D, dropout=0.1, batch_first=True, norm_first=False
    )
    copy_attention(ours.self_attn, ref.self_attn)
    copy_attention(ours.cross_attn, ref.multihead_attn)
    copy_feedforward(ours.ff, ref)
    for i in (1, 2, 3):
        getattr(ref, f"norm{i}").load_state_dict(getattr(ours, f"norm{i}").state_dict())
    return ref


def perturb(module: nn.Module) -> None:
    """Random values in every parameter (zero biases and unit norms would hide mistakes)."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.1)


def twins(layer: Any, reference: Any, seed: int) -> tuple[Any, nn.Module]:
    """Our `layer` with random weights and torch's (`reference`) holding them, in eval mode."""
    torch.manual_seed(seed)
    ours = layer(D, HEADS, dropout=0.1).eval()
    perturb(ours)
    return ours, reference(ours).eval()


def test_encoder_layer_is_torchs_with_copied_weights() -> None:
    """Eval mode: nn.TransformerEncoderLayer's outputs at real frames and input gradients."""
    ours, ref = twins(EncoderLayer, reference_encoder, 0)
    keep = lengths_mask([5, 3, 1], 5)  # [B, T]
    x = torch.randn(3, 5, D, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    got = ours(x, key_mask(keep))
    want = ref(x_ref, src_key_padding_mask=~keep)
    torch.testing.assert_close(got[keep], want[keep], atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(got) * keep.unsqueeze(-1)
    (got * weights).sum().backward()
    (want * weights).sum().backward()
    assert x.grad is not None and x_ref.grad is not None
    torch.testing.assert_close(x.grad, x_ref.grad, atol=1e-5, rtol=1e-5)


def test_decoder_layer_is_torchs_with_copied_weights() -> None:
    """Eval mode: nn.TransformerDecoderLayer's outputs (queries unmasked, memory keys
    masked) and gradients to the queries and the memory."""
    ours, ref = twins(DecoderLayer, reference_decoder, 1)
    keep = lengths_mask([6, 2, 4], 6)  # [B, S]
    queries = torch.randn(3, 4, D, requires_grad=True)
    memory = torch.randn(3, 6, D, requires_grad=True)
    q_ref, m_ref = (t.detach().clone().requires_grad_() for t in (queries, memory))
    got = ours(queries, memory, key_mask(keep))
    want = ref(q_ref, m_ref, memory_key_padding_mask=~keep)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(got)
    (got * weights).sum().backward()
    (want * weights).sum().backward()
    for ours_grad, ref_grad in ((queries.grad, q_ref.grad), (memory.grad, m_ref.grad)):
        assert ours_grad is not None and ref_grad is not None
        torch.testing.assert_close(ours_grad, ref_grad, atol=1e-5, rtol=1e-5)


def test_layers_drop_after_each_sublayer_and_inside_the_feedforward() -> None:
    encoder, decoder = EncoderLayer(D, HEADS, 0.1), DecoderLayer(D, HEADS, 0.1)
    drops = [m for m in encoder.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 3 and all(m.p == 0.1 for m in drops)  # 2 sublayers + the ff
    assert sum(isinstance(m, nn.Dropout) for m in decoder.modules()) == 4
    x, keys = torch.randn(2, 5, D), key_mask(torch.ones(2, 5, dtype=torch.bool))
    encoder.train()
    assert not torch.allclose(encoder(x, keys), encoder(x, keys))
    encoder.eval()
    torch.testing.assert_close(encoder(x, keys), encoder(x, keys))


def test_initialisation_is_xavier_in_projections_and_linear_defaults() -> None:
    torch.manual_seed(0)
    self_attn, cross = Attention(64, 4), Attention(64, 4, cross=True)
    for linear, fan_out in ((self_attn.qkv, 192), (cross.q, 64), (cross.kv, 128)):
        bound = math.sqrt(6.0 / (64 + fan_out))
        assert linear.weight.abs().max() <= bound
        assert linear.weight.abs().max() > 0.9 * bound
        assert not linear.bias.any()
    out_bound = 1 / math.sqrt(64)  # nn.Linear's default: weight and bias U(+-1/sqrt(d_in))
    assert 0.9 * out_bound < self_attn.out.weight.abs().max() <= out_bound
    assert self_attn.out.bias.abs().max() > 0


def test_key_mask_shape_and_rows_without_keys_stay_finite() -> None:
    keep = lengths_mask([3, 0], 4)  # [B, Tk]; the second row has no key at all
    mask = key_mask(keep)
    assert mask.shape == (2, 1, 1, 4)
    assert torch.equal(mask[1, 0, 0], torch.tensor([True, False, False, False]))
    attn = Attention(D, HEADS, cross=True)
    memory = torch.randn(2, 4, D).masked_fill(~keep.unsqueeze(-1), 0.0)  # padding zeroed
    out = attn(torch.randn(2, 3, D), memory, mask)
    assert out.shape == (2, 3, D) and torch.isfinite(out).all()


@pytest.mark.filterwarnings("ignore:There is a performance drop")
def test_layers_under_vmap_equal_each_member_alone() -> None:
    torch.manual_seed(0)
    layers = [EncoderLayer(D, HEADS, 0.1).eval() for _ in range(2)]
    params, buffers = stack_module_state(layers)
    base = EncoderLayer(D, HEADS, 0.1).eval().to("meta")
    x = torch.randn(2, 3, 5, D)  # [K, B, T, D]
    keep = torch.rand(2, 3, 5) < 0.7
    keys = key_mask(keep)  # [K, B, 1, 1, T]

    def one(p: dict, b: dict, x1: torch.Tensor, k1: torch.Tensor) -> torch.Tensor:
        return functional_call(base, (p, b), (x1, k1))

    out = vmap(one)(params, buffers, x, keys)
    for k, layer in enumerate(layers):
        torch.testing.assert_close(out[k], layer(x[k], keys[k]), atol=1e-5, rtol=1e-5)


def test_sdpa_takes_the_projections_dtype_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under autocast the projections give bf16; SDPA runs on them with autocast off: its
    own cast under vmap broke the backward in bf16 on CUDA (benchmarks/README.md)."""
    seen: list[tuple[bool, torch.dtype]] = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(q: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        seen.append((torch.is_autocast_enabled("cpu"), q.dtype))
        return sdpa(q, *args, **kwargs)

    monkeypatch.setattr(attention.F, "scaled_dot_product_attention", spy)
    layer = Attention(8, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(torch.randn(2, 5, 8))
    out.float().sum().backward()
    assert seen == [(False, torch.bfloat16)]
