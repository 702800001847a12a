"""Wu et al.'s fusion study: all 24 Table 2 cells, fusion maths, padding and gaps."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ser.train.batch import Batch, InputSpec
from ser.train.losses import perspective_loss
from ser.train.models import FeatureInfo, ModelConfig, build_model, native, plan_inputs
from ser.train.models.base import ModelOutput
from ser.train.models.dialog import (
    DialogModel,
    Fuse,
    SelfAttention,
    run_side_by_side,
)
from ser.train.models.linear import onednn_available

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
    gru = model.branches["audio"][1].gru
    assert (gru.input_size, gru.hidden_size, gru.bidirectional) == (100, 50, True)
    attn = model.branches["text"][2].attn
    assert (attn.embed_dim, attn.num_heads, attn.dropout) == (100, 4, 0.2)
    assert model.branches["audio"][0].fc.in_features == 30


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
    a, t = torch.randn(2, 3, 8), torch.randn(2, 3, 8)
    torch.testing.assert_close(Fuse("add", 8)(a, t), a + t)
    concat = Fuse("concat", 8)
    assert concat.proj.bias is None
    torch.testing.assert_close(concat(a, t), torch.cat([a, t], -1) @ concat.proj.weight.T)
    attention = Fuse("attention", 8)
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


def _reference_logits(model: DialogModel, batch: Batch) -> dict[str, torch.Tensor]:
    """The logits-ADD model computed with stock modules: nn.GRU over packed sequences of
    each dialog's real utterances and nn.MultiheadAttention with a key padding mask."""
    mask = batch.utt_mask
    assert mask is not None
    lengths = mask.sum(1)
    out = {}
    for m in model.modalities:
        fc, bigru, attention, classifier = model.branches[m]
        x = torch.relu(fc.fc(batch.x[model.spec(m).name]))  # real utterances lead each dialog
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        y, _ = pad_packed_sequence(bigru.gru(packed)[0], batch_first=True, total_length=x.shape[1])
        y, _ = attention.attn(y, y, y, key_padding_mask=~mask, need_weights=False)
        out[m] = classifier.fc(y * mask.unsqueeze(-1)) * mask.unsqueeze(-1)
    out["fused"] = out["audio"] + out["text"]
    return out


def test_paper_model_computes_what_stock_modules_compute(dialog_batch, path: str) -> None:
    """Forward and gradients of the default cell (dropout off) against `_reference_logits`."""
    model = build("add", "logits", "perspective", dropout=0.0)
    batch = dialog_batch(specs_of(model), lengths=[5, 3, 4, 1])
    results = []
    for compute in (model, lambda b: _reference_logits(model, b)):
        model.zero_grad()
        out = compute(batch)
        if isinstance(out, ModelOutput):
            out = {"fused": out.logits, **out.aux}
        perspective_loss(out["fused"], out["audio"], out["text"], batch.labels).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append(({k: v.detach() for k, v in out.items()}, grads))
    (out, grads), (ref_out, ref_grads) = results
    for key in ("fused", "audio", "text"):
        torch.testing.assert_close(out[key], ref_out[key], atol=1e-5, rtol=1e-5)
    assert grads.keys() == ref_grads.keys() and len(grads) == len(list(model.parameters()))
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_self_attention_matches_nn_multihead_attention(path: str) -> None:
    torch.manual_seed(0)
    modules = [SelfAttention(16, 4, dropout=0.2).eval() for _ in range(2)]
    xs = [torch.randn(3, 7, 16) for _ in range(2)]
    mask = torch.tensor([[1] * 7, [1, 1, 1, 0, 0, 0, 0], [1, 0, 1, 1, 0, 1, 0]], dtype=torch.bool)
    together = SelfAttention.lockstep(modules, torch.stack(xs), mask)
    for module, x, y in zip(modules, xs, together.unbind(0), strict=True):
        want, _ = module.attn(x, x, x, key_padding_mask=~mask, need_weights=False)
        want = want * mask.unsqueeze(-1)
        torch.testing.assert_close(y, want, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(module(x, mask), want, atol=1e-6, rtol=1e-5)
    empty = torch.zeros(3, 7, dtype=torch.bool)
    assert (modules[0](xs[0], empty) == 0).all()  # no NaN for a dialog without utterances


def test_dialog_model_runs_on_the_kernels_where_built(dialog_batch) -> None:
    """The default cell's Bi-GRUs and attentions take the C kernels on a CPU that has them."""
    if native.kernels() is None:
        pytest.skip("no C kernels here")
    model = build("add", "logits", "perspective")
    batch = dialog_batch(specs_of(model))
    kinds = _backward_nodes(model.loss(model(batch), batch))
    assert kinds.count("_LayerBackward") == 1 and kinds.count("_CoreBackward") == 1
    with native.disabled():
        kinds = _backward_nodes(model.loss(model(batch), batch))
    assert "_LayerBackward" not in kinds and "_RecurrenceBackward" in kinds


def _backward_nodes(loss: torch.Tensor) -> list[str]:
    seen, todo, kinds = set(), [loss.grad_fn], []
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        kinds.append(type(node).__name__)
        todo += [next_node for next_node, _ in node.next_functions]
    return kinds


def test_side_by_side_stages_equal_separate_runs(dialog_batch) -> None:
    """Both modalities' Bi-GRUs (and attentions) run as one; each must see only its own
    weights and input."""
    model = build("add", "logits", "perspective").eval()
    batch = dialog_batch(specs_of(model))
    assert batch.utt_mask is not None
    mask = batch.utt_mask
    xs = torch.randn(2, *mask.shape, 16)  # [M, B, U, d]
    for depth in (1, 2):
        stages = [model.branches[m][depth] for m in ("audio", "text")]
        together = run_side_by_side(stages, list(xs.unbind(0)), mask)
        assert isinstance(together, torch.Tensor) and together.shape == xs.shape
        for stage, x, y in zip(stages, xs, together, strict=True):
            torch.testing.assert_close(y, stage(x, mask), atol=1e-6, rtol=1e-5)


@pytest.mark.skipif(not onednn_available(), reason="PyTorch built without oneDNN")
def test_linear_layers_multiply_on_onednn(dialog_batch) -> None:
    """Input FCs, the Bi-GRUs' input projections and the attentions' projections (8 layers
    for two modalities) run on oneDNN in float32 on the CPU (`linear.py`)."""
    model = build("add", "logits", "perspective")
    batch = dialog_batch(specs_of(model))
    kinds = _backward_nodes(model.loss(model(batch), batch))
    assert kinds.count("_OneDnnLinearBackward") == 8
