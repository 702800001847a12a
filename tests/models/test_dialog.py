"""Wu et al.'s fusion study: all 24 Table 2 cells, fusion maths, padding and gaps, the
stock modules it reproduces, and members under torch.func (ser.train.engine.ensemble)."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ser.models import FeatureInfo, ModelConfig, build_model, plan_inputs
from ser.models.batch import Batch, InputSpec
from ser.models.dialog import BiGRU, DialogModel, Fuse, SelfAttention, side_by_side
from ser.train.engine.ensemble import Ensemble

AUDIO = FeatureInfo("is13", "audio", "utterance", 30)
TEXT = FeatureInfo("bert", "text", "token", 24)
POSITIONS = ["early", "middle", "late", "logits"]
CELLS = list(
    itertools.product(["add", "concat", "attention"], POSITIONS, ["single", "perspective"])
)


def build(
    fusion: str, at: str | None, loss: str = "single", features=(AUDIO, TEXT), seed: int = 0, **kw
) -> DialogModel:
    config = ModelConfig(fusion=fusion, fusion_at=at, loss=loss, d_model=16, heads=2, **kw)
    unit, specs = plan_inputs(config, list(features))
    assert unit == "dialog" and all(s.view == "vector" for s in specs)
    model = build_model(config, specs, n_classes=4, seed=seed)
    assert isinstance(model, DialogModel)
    return model


def specs_of(model: DialogModel) -> list[InputSpec]:
    return list(model.inputs)


def branch(model: DialogModel, modality: str) -> Any:
    """That modality's stages (loosely typed: the tests reach into them)."""
    return model.branch(modality)


def test_paper_defaults() -> None:
    config = ModelConfig(fusion="add", fusion_at="logits", loss="perspective")
    _, specs = plan_inputs(config, [AUDIO, TEXT])
    model = build_model(config, specs, n_classes=4, seed=0)
    assert isinstance(model, DialogModel)
    audio, text = branch(model, "audio"), branch(model, "text")
    assert audio[1].gru.weight_ih_l0.shape == (150, 100)  # Bi-GRU of 2 x 50
    assert audio[1].gru.weight_hh_l0_reverse.shape == (150, 50)
    assert text[2].heads == 4
    assert {m.p for m in model.modules() if isinstance(m, nn.Dropout)} == {0.2}
    assert audio[0].fc.weight.shape == (100, 30)  # FC to 100, no ReLU
    assert text[3].hidden.weight.shape == (100, 100)  # FC + ReLU, FC
    assert text[2].out.bias.abs().sum() == 0 and text[2].qkv.bias.abs().sum() == 0
    assert model.summed_loss  # eq. 3: a sum over utterances


def test_a_set_of_d_dimensions_goes_in_unchanged() -> None:
    config = ModelConfig(fusion="add", fusion_at="logits", loss="perspective")
    _, specs = plan_inputs(config, [FeatureInfo("a100", "audio", "utterance", 100), TEXT])
    model = build_model(config, specs, n_classes=4, seed=0)
    assert isinstance(model, DialogModel)
    assert branch(model, "audio")[0].fc is None and branch(model, "text")[0].fc is not None


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
    for name, p in model.named_parameters():  # every module is used
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert (out.logits[~batch.utt_mask] == 0).all()


@pytest.mark.slow
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


@pytest.mark.parametrize("at", ["early", "middle", "late"])
def test_perspective_heads_read_each_modality_at_the_fusion_point(at: str, dialog_batch) -> None:
    """EF/MF/LF: L_a and L_t come from a linear head d -> C on that modality's
    representation where it is fused (the input FC's, Bi-GRU's or self-attention's
    output); LGF: from the branches' own logits, which ADD sums into the fused ones."""
    model = build("add", at, "perspective").eval()
    batch = dialog_batch(specs_of(model))
    mask = batch.utt_mask
    with torch.no_grad():
        out = model(batch)
        for m in ("audio", "text"):
            x = batch.x[model.spec(m).name]
            for stage in branch(model, m):
                x = stage(x, mask)
            assert x.shape[-1] == 16  # d, the fused width
            want = model.aux_heads[m](x).masked_fill(~mask[..., None], 0.0)
            torch.testing.assert_close(out.aux[m], want)


def test_logits_fusion_adds_the_branches_own_logits(dialog_batch) -> None:
    model = build("add", "logits", "perspective").eval()
    assert len(model.aux_heads) == 0
    batch = dialog_batch(specs_of(model))
    with torch.no_grad():
        out = model(batch)
    torch.testing.assert_close(out.logits, out.aux["audio"] + out.aux["text"])


@pytest.mark.parametrize("at", POSITIONS)
def test_padded_utterances_do_not_change_logits(at: str, dialog_batch, pad_more) -> None:
    """Extra padded utterances holding junk change no real utterance's logits."""
    model = build("attention", at, "perspective").eval()
    batch = dialog_batch(specs_of(model))
    padded = pad_more(batch)
    with torch.no_grad():
        out, out_padded = model(batch), model(padded)
    torch.testing.assert_close(out_padded.logits[:, :5], out.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_padded.aux["text"][:, :5], out.aux["text"], atol=1e-5, rtol=1e-5)
    assert (out_padded.logits[:, 5:] == 0).all()


def test_a_gap_inside_a_dialog_is_skipped_like_a_missing_utterance(dialog_batch) -> None:
    model = build("add", "middle").eval()
    batch = dialog_batch(specs_of(model), lengths=[5])
    keep = torch.tensor([0, 1, 3, 4])
    holed = Batch(
        x=batch.x,
        mask={},
        labels=batch.labels,
        index=batch.index,
        utt_mask=torch.tensor([[True, True, False, True, True]]),
    )
    without = Batch(
        x={k: v[:, keep] for k, v in batch.x.items()},
        mask={},
        labels=batch.labels[:, keep],
        index=batch.index[:, keep],
        utt_mask=torch.ones(1, 4, dtype=torch.bool),
    )
    with torch.no_grad():
        out_holed, out_without = model(holed).logits, model(without).logits
    torch.testing.assert_close(out_holed[:, keep], out_without, atol=1e-5, rtol=1e-5)
    assert (out_holed[:, 2] == 0).all()


@pytest.mark.parametrize("at", POSITIONS)
def test_a_dialog_with_no_real_utterance_gives_finite_zeros(at: str, dialog_batch) -> None:
    """A padded slot of the batch (every label -100): finite zero outputs, finite
    gradients, in training mode with dropout."""
    model = build("attention", at, "perspective").train()
    batch = dialog_batch(specs_of(model))
    assert batch.utt_mask is not None
    batch.utt_mask[1] = False
    batch.labels[1] = -100
    out = model(batch)
    assert (out.logits[1] == 0).all() and torch.isfinite(out.logits).all()
    model.loss(out, batch).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


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
    torch.manual_seed(0)
    a, t = torch.randn(2, 3, 8), torch.randn(2, 3, 8)  # [B, U, d]
    torch.testing.assert_close(Fuse("add", 8)(a, t), a + t)
    concat = Fuse("concat", 8)
    assert concat.proj.bias is None and concat.proj.weight.shape == (8, 16)  # W_f: d x 2d
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
    assert model.fuse is None and len(model.branch("text")) == 4 and len(model.shared) == 0
    batch = dialog_batch(specs_of(model))
    out = model(batch)
    assert out.logits.shape == (3, 5, 4) and out.aux == {}
    first, last = train_steps(model, batch, steps=40)
    assert last < 0.5 * first


def test_shared_stages_follow_the_fusion_position() -> None:
    depth = {at: len(build("add", at).shared) for at in POSITIONS}
    assert depth == {"early": 3, "middle": 2, "late": 1, "logits": 0}
    branch = {at: len(build("add", at).branch("audio")) for at in POSITIONS}
    assert branch == {"early": 1, "middle": 2, "late": 3, "logits": 4}
    assert len(build("add", "early", "perspective").aux_heads) == 2
    assert len(build("add", "early", "single").aux_heads) == 0


def stock_gru(stage: BiGRU, d_in: int) -> nn.GRU:
    gru = nn.GRU(d_in, stage.gru.hidden, batch_first=True, bidirectional=True)
    gru.load_state_dict(stage.gru.state_dict())  # the same names and layout
    return gru


def stock_attention(attention: SelfAttention, d: int) -> nn.MultiheadAttention:
    mha = nn.MultiheadAttention(d, attention.heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(attention.qkv.weight)
        mha.in_proj_bias.copy_(attention.qkv.bias)
        mha.out_proj.weight.copy_(attention.out.weight)
        mha.out_proj.bias.copy_(attention.out.bias)
    return mha.eval()


def test_self_attention_is_nn_multihead_attention() -> None:
    """Eval mode: nn.MultiheadAttention's outputs with a key padding mask at real
    utterances, 0 at padded ones; finite zeros for a dialog with no real utterance
    (where nn.MultiheadAttention gives NaN)."""
    torch.manual_seed(0)
    attention = SelfAttention(16, 4, dropout=0.2).eval()
    mha = stock_attention(attention, 16)
    mask = torch.arange(7) < torch.tensor([7, 3, 1, 0])[:, None]  # [B, U]
    x = torch.randn(4, 7, 16)
    got = attention(x, mask)
    want, _ = mha(x, x, x, key_padding_mask=~mask, need_weights=False)
    torch.testing.assert_close(got[:3][mask[:3]], want[:3][mask[:3]], atol=1e-6, rtol=1e-5)
    assert (got[~mask] == 0).all() and torch.isfinite(got).all()


def test_self_attention_initialisation_is_nn_multihead_attentions() -> None:
    """Xavier-uniform input projection with zero bias, nn.Linear's output weight with
    zero bias (nn.MultiheadAttention._reset_parameters)."""
    torch.manual_seed(0)
    d = 64
    attention = SelfAttention(d, 4, dropout=0.0)
    xavier = (6 / (d + 3 * d)) ** 0.5
    w = attention.qkv.weight
    assert w.abs().max() <= xavier and w.abs().max() > 0.95 * xavier
    assert attention.out.weight.abs().max() <= d**-0.5
    assert (attention.qkv.bias == 0).all() and (attention.out.bias == 0).all()


def test_attention_dropout_falls_on_the_weights() -> None:
    """In training the attention weights are dropped (rows no longer sum to one): a value
    tensor of ones then gives outputs other than out.bias + out.weight @ 1."""
    torch.manual_seed(0)
    attention = SelfAttention(8, 2, dropout=0.5)
    nn.init.eye_(attention.qkv.weight[16:])  # v = x
    x, mask = torch.ones(1, 6, 8), torch.ones(1, 6, dtype=torch.bool)
    uniform = attention.eval()(x, mask)
    assert torch.allclose(uniform, uniform[:, :1].expand_as(uniform))
    assert not torch.allclose(attention.train()(x, mask), uniform)


def _reference_logits(model: DialogModel, batch: Batch) -> dict[str, torch.Tensor]:
    """The logits-ADD model computed with stock modules: FC, nn.GRU over packed sequences
    of each dialog's real utterances, nn.MultiheadAttention with a key padding mask,
    FC + ReLU, FC (the published code's After_fusion in eval mode)."""
    mask = batch.utt_mask
    assert mask is not None
    lengths = mask.sum(1)
    out = {}
    for m in model.modalities:
        fc, bigru, attention, classifier = branch(model, m)
        x = fc.fc(batch.x[model.spec(m).name])
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        gru = stock_gru(bigru, x.shape[-1])
        y, _ = pad_packed_sequence(gru(packed)[0], batch_first=True, total_length=x.shape[1])
        mha = stock_attention(attention, y.shape[-1])
        y, _ = mha(y, y, y, key_padding_mask=~mask, need_weights=False)
        logits = classifier.fc(torch.relu(classifier.hidden(y)))
        out[m] = logits * mask.unsqueeze(-1)
    out["fused"] = out["audio"] + out["text"]
    return out


def test_paper_model_computes_what_stock_modules_compute(dialog_batch) -> None:
    model = build("add", "logits", "perspective").eval()
    batch = dialog_batch(specs_of(model))
    with torch.no_grad():
        want = _reference_logits(model, batch)
        got = model(batch)
    torch.testing.assert_close(got.logits, want["fused"], atol=1e-5, rtol=1e-4)
    for m in ("audio", "text"):
        torch.testing.assert_close(got.aux[m], want[m], atol=1e-5, rtol=1e-4)


def test_side_by_side_bigrus_equal_separate_runs(dialog_batch) -> None:
    """Both modalities' Bi-GRUs step together; each sees only its own weights and input."""
    model = build("add", "logits", "perspective").eval()
    mask = dialog_batch(specs_of(model)).utt_mask
    xs = list(torch.randn(2, *mask.shape, 16).unbind(0))  # M of [B, U, d]
    stages = [branch(model, m)[1] for m in ("audio", "text")]
    together = side_by_side(stages, xs, mask)
    for stage, x, y in zip(stages, xs, together, strict=True):
        torch.testing.assert_close(y, stage(x, mask), atol=1e-6, rtol=1e-5)


# Members under torch.func: `Ensemble` runs each member's module on its own batch slot.


def _member(model: Any, x: Any, labels: torch.Tensor, utt_mask: torch.Tensor) -> Any:
    """One member: (logits, aux, loss) on its own batch."""
    batch = Batch(x=x, mask={}, labels=labels, index=labels, utt_mask=utt_mask)
    out = model(batch)
    return out.logits, out.aux, model.loss(out, batch)


def _stacked(batches: list[Batch]) -> tuple[Any, ...]:
    x = {k: torch.stack([b.x[k] for b in batches]) for k in batches[0].x}
    utt = torch.stack([b.utt_mask for b in batches if b.utt_mask is not None])
    return x, torch.stack([b.labels for b in batches]), utt


@pytest.mark.parametrize("at", POSITIONS)
def test_ensemble_members_in_eval_mode_equal_the_modules_alone(at: str, dialog_batch) -> None:
    models = [build("attention", at, "perspective", seed=s) for s in (0, 1)]
    batches = [
        dialog_batch(specs_of(models[0]), lengths=[5, 3, 4], seed=0),
        dialog_batch(specs_of(models[0]), lengths=[2, 5, 0], seed=1),  # a padded slot too
    ]
    ensemble = Ensemble(models)
    ensemble.eval()
    with torch.no_grad():
        logits, aux, loss = ensemble.call(_member, *_stacked(batches))
        for k, (model, batch) in enumerate(zip(models, batches, strict=True)):
            want_logits, want_aux, want_loss = _member(
                model.eval(), batch.x, batch.labels, batch.utt_mask
            )
            torch.testing.assert_close(logits[k], want_logits, atol=1e-5, rtol=1e-5)
            for m in ("audio", "text"):
                torch.testing.assert_close(aux[m][k], want_aux[m], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(loss[k], want_loss, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("at", ["early", "logits"])
def test_ensemble_members_draw_their_own_dropout_and_get_every_gradient(
    at: str, dialog_batch
) -> None:
    """Two members with identical weights and inputs differ in training (each draws
    its own dropout masks); a backward of the stacked loss reaches every parameter."""
    model = build("concat", at, "perspective", dropout=0.3)
    batch = dialog_batch(specs_of(model))
    ensemble = Ensemble([model, copy.deepcopy(model)])
    ensemble.train()
    logits, _, loss = ensemble.call(_member, *_stacked([batch, batch]))
    assert not torch.allclose(logits[0], logits[1])
    loss.sum().backward()
    for name, p in ensemble.params.items():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
