"""Wu et al.'s fusion study: all 24 Table 2 cells, fusion maths, padding and gaps."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ser.train.batch import Batch, InputSpec
from ser.train.models import FeatureInfo, ModelConfig, build_model, plan_inputs
from ser.train.models.dialog import DialogModel, Fuse, SelfAttention, side_by_side
from ser.train.nn.noise import Dropper
from ser.train.nn.stacked import init_members
from ser.train.stack import stack_batches

AUDIO = FeatureInfo("is13", "audio", "utterance", 30)
TEXT = FeatureInfo("bert", "text", "token", 24)
CELLS = list(
    itertools.product(
        ["add", "concat", "attention"],
        ["early", "middle", "late", "logits"],
        ["single", "perspective"],
    )
)


def build(
    fusion: str, at: str | None, loss: str = "single", features=(AUDIO, TEXT), **kw
) -> DialogModel:
    config = ModelConfig(fusion=fusion, fusion_at=at, loss=loss, d_model=16, heads=2, **kw)
    unit, specs = plan_inputs(config, list(features))
    assert unit == "dialog" and all(s.view == "vector" for s in specs)
    torch.manual_seed(0)
    model = build_model(config, specs, n_classes=4)
    assert isinstance(model, DialogModel)
    return model


def specs_of(model: DialogModel) -> list[InputSpec]:
    return list(model.inputs)


def test_paper_defaults() -> None:
    config = ModelConfig(fusion="add", fusion_at="logits", loss="perspective")
    _, specs = plan_inputs(config, [AUDIO, TEXT])
    model = build_model(config, specs, n_classes=4)
    assert isinstance(model, DialogModel)
    forward, backward = model.branches["audio"][1].gru.directions
    assert forward.w_ih.shape == backward.w_ih.shape == (1, 100, 150)  # Bi-GRU of 2 x 50
    assert model.branches["text"][2].heads == 4
    assert model.dropout_p == [0.2]
    assert model.branches["audio"][0].fc.weight.shape == (1, 30, 100)  # FC to 100, no ReLU
    assert model.branches["text"][3].hidden.weight.shape == (1, 100, 100)  # FC + ReLU, FC
    assert model.branches["text"][2].out.bias.abs().sum() == 0  # nn.MultiheadAttention's
    assert model.summed_loss  # eq. 3: a sum over utterances


def test_a_set_of_d_dimensions_goes_in_unchanged() -> None:
    config = ModelConfig(fusion="add", fusion_at="logits", loss="perspective")
    _, specs = plan_inputs(config, [FeatureInfo("a100", "audio", "utterance", 100), TEXT])
    model = build_model(config, specs, n_classes=4)
    assert isinstance(model, DialogModel)
    assert model.branches["audio"][0].fc is None and model.branches["text"][0].fc is not None


@pytest.mark.parametrize(("fusion", "at", "loss"), CELLS, ids=["-".join(c) for c in CELLS])
def test_all_24_cells_run_forward_and_backward(
    fusion: str, at: str, loss: str, dialog_batch
) -> None:
    model = build(fusion, at, loss)
    batch = dialog_batch(specs_of(model))
    out = model(batch)
    assert out.logits.shape == (3, 5, 4)
    if loss == "perspective" or at == "logits":
        assert set(out.aux) == {"audio", "text"}
        assert all(v.shape == out.logits.shape for v in out.aux.values())
    model.loss(out, batch).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)  # every module is used
    assert (out.logits[~batch.utt_mask] == 0).all()


@pytest.mark.parametrize(
    ("fusion", "at", "loss"),
    [
        ("add", "logits", "perspective"),
        ("attention", "early", "single"),
        ("concat", "middle", "perspective"),
    ],
)
def test_loss_drops_on_a_small_batch(
    fusion: str, at: str, loss: str, dialog_batch, train_steps
) -> None:
    model = build(fusion, at, loss, dropout=0.0)
    batch = dialog_batch(specs_of(model))
    first, last = train_steps(model, batch, steps=40)
    assert last < 0.5 * first


def test_perspective_loss_is_the_sum_of_three_cross_entropies(dialog_batch) -> None:
    model = build("add", "late", "perspective")
    batch = dialog_batch(specs_of(model))
    out = model(batch)
    ce = torch.nn.functional.cross_entropy
    labels = batch.labels.reshape(-1)
    expected = sum(
        ce(t.reshape(-1, 4), labels) for t in (out.logits, out.aux["audio"], out.aux["text"])
    )
    torch.testing.assert_close(model.loss(out, batch), expected)


@pytest.mark.parametrize("at", ["early", "logits"])
def test_padded_utterances_do_not_change_logits(at: str, dialog_batch, pad_more) -> None:
    model = build("attention", at, "perspective").eval()
    batch = dialog_batch(specs_of(model))
    padded = pad_more(batch)
    with torch.no_grad():
        out, out_padded = model(batch), model(padded)
    torch.testing.assert_close(out_padded.logits[:, :5], out.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_padded.aux["text"][:, :5], out.aux["text"], atol=1e-5, rtol=1e-5)


def test_a_gap_inside_a_dialog_is_skipped_like_a_missing_utterance(dialog_batch) -> None:
    model = build("add", "middle").eval()
    batch = dialog_batch(specs_of(model), lengths=[5])
    keep = torch.tensor([0, 1, 3, 4])
    holed = Batch(
        x=batch.x, mask={}, labels=batch.labels, index=batch.index,
        utt_mask=torch.tensor([[True, True, False, True, True]]),
    )  # fmt: skip
    without = Batch(
        x={k: v[:, keep] for k, v in batch.x.items()}, mask={}, labels=batch.labels[:, keep],
        index=batch.index[:, keep], utt_mask=torch.ones(1, 4, dtype=torch.bool),
    )  # fmt: skip
    with torch.no_grad():
        out_holed, out_without = model(holed).logits, model(without).logits
    torch.testing.assert_close(out_holed[:, keep], out_without, atol=1e-5, rtol=1e-5)
    assert (out_holed[:, 2] == 0).all()


def test_context_matters(dialog_batch) -> None:
    """The Bi-GRU and self-attention mix utterances: changing one moves its neighbours."""
    model = build("add", "early").eval()
    batch = dialog_batch(specs_of(model))
    changed = {k: v.clone() for k, v in batch.x.items()}
    changed["bert"][0, 0] += 5.0
    with torch.no_grad():
        a = model(batch).logits
        b = model(Batch(changed, {}, batch.labels, batch.index, batch.utt_mask)).logits
    assert not torch.allclose(a[0, 1], b[0, 1])
    torch.testing.assert_close(a[1:], b[1:])  # other dialogs untouched


def test_fusion_methods() -> None:
    a, t = torch.randn(1, 2, 3, 8), torch.randn(1, 2, 3, 8)  # [K, B, U, d]
    torch.testing.assert_close(Fuse(1, "add", 8)(a, t), a + t)
    concat = Fuse(1, "concat", 8)
    init_members(concat, [0])
    assert concat.proj.bias is None
    torch.testing.assert_close(concat(a, t), torch.cat([a, t], -1) @ concat.proj.weight[0])
    attention = Fuse(1, "attention", 8)
    init_members(attention, [0])
    torch.testing.assert_close(attention(a, a), a)  # weights over modalities sum to 1
    z = attention(a, t)
    lam = ((z - t) * (a - t)).sum(-1) / ((a - t) ** 2).sum(-1)  # z = lam a + (1 - lam) t
    torch.testing.assert_close(
        z, lam[..., None] * a + (1 - lam[..., None]) * t, atol=1e-5, rtol=1e-5
    )
    assert ((lam > 0) & (lam < 1)).all()


def test_unimodal_framework_with_context(dialog_batch, train_steps) -> None:
    model = build("none", None, features=(TEXT,), context=True, dropout=0.0)
    assert model.fuse is None and len(model.branches["text"]) == 4 and len(model.shared) == 0
    batch = dialog_batch(specs_of(model))
    out = model(batch)
    assert out.logits.shape == (3, 5, 4) and out.aux == {}
    first, last = train_steps(model, batch, steps=40)
    assert last < 0.5 * first


def test_shared_stages_follow_the_fusion_position() -> None:
    depth = {at: len(build("add", at).shared) for at in ["early", "middle", "late", "logits"]}
    assert depth == {"early": 3, "middle": 2, "late": 1, "logits": 0}
    assert len(build("add", "early", "perspective").aux_heads) == 2
    assert len(build("add", "early", "single").aux_heads) == 0


def stock_gru(direction_pairs, d_in: int, hidden: int) -> nn.GRU:
    """nn.GRU holding member 0's weights of the stacked (forward, backward) directions."""
    gru = nn.GRU(d_in, hidden, batch_first=True, bidirectional=True)
    fwd, bwd = direction_pairs
    with torch.no_grad():
        for suffix, d in (("", fwd), ("_reverse", bwd)):
            getattr(gru, f"weight_ih_l0{suffix}").copy_(d.w_ih[0].T)
            getattr(gru, f"weight_hh_l0{suffix}").copy_(d.w_hh[0].T)
            getattr(gru, f"bias_ih_l0{suffix}").copy_(d.b_ih[0, 0])
            getattr(gru, f"bias_hh_l0{suffix}").copy_(d.b_hh[0, 0])
    return gru


def stock_attention(attention: SelfAttention, d: int) -> nn.MultiheadAttention:
    mha = nn.MultiheadAttention(d, attention.heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(attention.qkv.weight[0].T)
        mha.in_proj_bias.copy_(attention.qkv.bias[0, 0])
        mha.out_proj.weight.copy_(attention.out.weight[0].T)
        mha.out_proj.bias.copy_(attention.out.bias[0, 0])
    return mha.eval()


def _reference_logits(model: DialogModel, batch: Batch) -> dict[str, torch.Tensor]:
    """The logits-ADD model computed with stock modules: FC, nn.GRU over packed sequences
    of each dialog's real utterances, nn.MultiheadAttention with a key padding mask,
    FC + ReLU, FC (the published code's After_fusion in eval mode)."""
    mask = batch.utt_mask
    assert mask is not None
    lengths = mask.sum(1)
    out = {}
    for m in model.modalities:
        fc, bigru, attention, classifier = model.branches[m]
        x = batch.x[model.spec(m).name] @ fc.fc.weight[0] + fc.fc.bias[0]
        gru = stock_gru(list(bigru.gru.directions), x.shape[-1], x.shape[-1] // 2)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        y, _ = pad_packed_sequence(gru(packed)[0], batch_first=True, total_length=x.shape[1])
        mha = stock_attention(attention, y.shape[-1])
        y, _ = mha(y, y, y, key_padding_mask=~mask, need_weights=False)
        h = torch.relu(y @ classifier.hidden.weight[0] + classifier.hidden.bias[0])
        logits = h @ classifier.fc.weight[0] + classifier.fc.bias[0]
        out[m] = logits * mask.unsqueeze(-1)
    out["fused"] = out["audio"] + out["text"]
    return out


def test_paper_model_computes_what_stock_modules_compute(dialog_batch) -> None:
    model = build("add", "logits", "perspective").eval()
    batch = dialog_batch(specs_of(model))
    want = _reference_logits(model, batch)
    got = model(batch)
    torch.testing.assert_close(got.logits, want["fused"], atol=1e-5, rtol=1e-4)
    for m in ("audio", "text"):
        torch.testing.assert_close(got.aux[m], want[m], atol=1e-5, rtol=1e-4)


def test_side_by_side_stages_equal_separate_runs(dialog_batch) -> None:
    """Both modalities' Bi-GRUs run as one recurrence; each must see only its own
    weights and input."""
    model = build("add", "logits", "perspective").eval()
    batch = stack_batches([dialog_batch(specs_of(model))])
    mask = batch.utt_mask
    assert mask is not None
    xs = list(torch.randn(2, *mask.shape, 16).unbind(0))  # M of [K, B, U, d]
    drop = Dropper(None, [0.0])
    stages = [model.branches[m][1] for m in ("audio", "text")]
    together = side_by_side(stages, xs, mask, drop)
    for stage, x, y in zip(stages, xs, together, strict=True):
        torch.testing.assert_close(y, stage(x, mask, drop), atol=1e-6, rtol=1e-5)
