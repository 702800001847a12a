"""Zhou et al.'s late probability fusion: CNN padding invariance, fusion maths, staged
training, and the model under `Ensemble` (vmap)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from ser.errors import ConfigError
from ser.models import FeatureInfo, ModelConfig, build_model, plan_inputs
from ser.models.batch import Batch, InputSpec
from ser.models.late_prob import BranchStage, LateProbFusion, MaskedConvBlock
from ser.train.engine.ensemble import Ensemble

LOGMEL = FeatureInfo("logmel80", "audio", "frame", 20)
BERT = FeatureInfo("bert", "text", "token", 16)


def build(seed: int = 0, **kw: Any) -> LateProbFusion:
    options = {"d_model": 16, "cnn_channels": (4, 4, 8, 8, 8), **kw}
    config = ModelConfig(fusion="late-prob", **options)
    _, specs = plan_inputs(config, [LOGMEL, BERT])
    torch.manual_seed(seed)
    return LateProbFusion(config, specs, n_classes=5)


def specs_of(model: LateProbFusion) -> list[InputSpec]:
    return list(model.inputs)


def test_paper_defaults_and_views() -> None:
    config = ModelConfig(fusion="late-prob")
    unit, specs = plan_inputs(config, [LOGMEL, BERT])
    assert unit == "utterance"
    assert [(s.name, s.view) for s in specs] == [("logmel80", "sequence"), ("bert", "vector")]
    model = build_model(config, specs, n_classes=5, seed=0)
    assert isinstance(model, LateProbFusion)
    convs = [m for m in model.cnn.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256, 256]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.6, 0.6]
    assert model.cnn.hidden.weight.shape == (256, 256 * 1)  # 20 mels pooled 5 times: 1
    assert model.audio_fuse.weight.shape == (5, 5) and model.text_fuse.weight.shape == (5, 5)


def test_output_shapes(utterance_batch) -> None:
    model = build()
    batch = utterance_batch(specs_of(model), n_classes=5, batch_size=7)
    out = model(batch)
    assert out.logits.shape == (7, 5)
    assert {m: v.shape for m, v in out.aux.items()} == {"audio": (7, 5), "text": (7, 5)}


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["single", "perspective"])
def test_loss_drops_on_a_small_batch(loss: str, utterance_batch, train_steps) -> None:
    model = build(loss=loss, dropout=0.0)
    batch = utterance_batch(specs_of(model), n_classes=5, batch_size=10)
    first, last = train_steps(model, batch, steps=60)
    assert last < 0.6 * first


def test_masked_conv_block_is_torchs_layers_on_a_full_sequence() -> None:
    torch.manual_seed(0)
    block = MaskedConvBlock(2, 3)
    x = torch.randn(4, 2, 7, 9)  # [B, C, T, F], odd T and F: ceil mode keeps the last
    out, pooled = block(x, torch.ones(4, 7, dtype=torch.bool))
    expected = F.max_pool2d(F.leaky_relu(block.conv(x)), 2, ceil_mode=True)
    torch.testing.assert_close(out, expected)
    assert out.shape == (4, 3, 4, 5) and pooled.shape == (4, 4) and bool(pooled.all())


def test_masked_conv_block_pools_the_mask() -> None:
    block = MaskedConvBlock(1, 2)
    mask = torch.arange(6)[None, :] < torch.tensor([0, 1, 2, 3, 6])[:, None]  # [B, T]
    _, pooled = block(torch.randn(5, 1, 6, 4), mask)
    want = torch.tensor([[0, 0, 0], [1, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]]).bool()
    assert torch.equal(pooled, want)


def test_padding_frames_do_not_change_logits(utterance_batch, pad_more) -> None:
    model = build().eval()
    lengths = {"logmel80": [1, 2, 3, 31, 32, 33, 47, 64]}  # odd, even, shorter than 2^5
    batch = utterance_batch(specs_of(model), lengths=lengths, batch_size=8, n_classes=5)
    with torch.no_grad():
        out, out_padded = model(batch), model(pad_more(batch, extra=13))
    torch.testing.assert_close(out_padded.logits, out.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_padded.aux["audio"], out.aux["audio"], atol=1e-5, rtol=1e-5)


def test_padded_frames_holding_inf_and_nan_change_nothing(utterance_batch) -> None:
    model = build().eval()
    batch = utterance_batch(specs_of(model), lengths={"logmel80": [3, 9, 5, 12]}, batch_size=4)
    x, mask = batch.x["logmel80"], batch.mask["logmel80"]
    junk = torch.full_like(x, float("inf"))
    junk[::2] = float("nan")
    poisoned = Batch(
        {**batch.x, "logmel80": torch.where(mask[..., None], x, junk)},
        batch.mask,
        batch.labels,
        batch.index,
    )
    with torch.no_grad():
        torch.testing.assert_close(model(poisoned).logits, model(batch).logits)


def test_cnn_on_a_padded_batch_equals_each_utterance_alone(utterance_batch) -> None:
    model = build().eval()
    lengths = [5, 17, 2, 40]
    batch = utterance_batch(specs_of(model), lengths={"logmel80": lengths}, batch_size=4)
    x, mask = batch.x["logmel80"], batch.mask["logmel80"]  # [B, T, F], [B, T]
    with torch.no_grad():
        together = model.cnn(x, mask)
        alone = torch.cat(
            [model.cnn(x[i : i + 1, :n], mask[i : i + 1, :n]) for i, n in enumerate(lengths)]
        )
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_samples_without_frames_stay_finite(utterance_batch) -> None:
    """A sample with no frames (or a padded slot of the batch, label -100) and a batch
    whose frames are all gone: finite outputs, loss and gradients."""
    model = build(loss="perspective")
    batch = utterance_batch(specs_of(model), lengths={"logmel80": [0, 4, 0, 9]}, batch_size=4)
    batch.labels[2] = -100  # the loop's padded batch slot
    empty = Batch(
        {**batch.x, "logmel80": batch.x["logmel80"][:, :0]},
        {"logmel80": batch.mask["logmel80"][:, :0]},
        batch.labels,
        batch.index,
    )  # [B, T=0, F]
    for b in (batch, empty):
        model.zero_grad()
        out = model(b)
        loss = model.loss(out, b)
        loss.backward()
        assert torch.isfinite(out.logits).all() and torch.isfinite(loss)
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    with torch.no_grad():  # no frames: the CNN sees the same zeros whatever the padding
        torch.testing.assert_close(model(batch).aux["audio"][0], model(empty).aux["audio"][0])


def test_fusion_is_a_linear_layer_per_modality_on_probabilities(utterance_batch) -> None:
    model = build().eval()
    batch = utterance_batch(specs_of(model), n_classes=5)
    with torch.no_grad():
        out = model(batch)
        p_audio = torch.softmax(out.aux["audio"], -1)
        p_text = torch.softmax(out.aux["text"], -1)
        expected = model.audio_fuse(p_audio) + model.text_fuse(p_text)
    torch.testing.assert_close(out.logits, expected)


def test_text_changes_the_output(utterance_batch) -> None:
    model = build().eval()
    batch = utterance_batch(specs_of(model), n_classes=5)
    changed = Batch(
        {**batch.x, "bert": batch.x["bert"] + 3.0}, batch.mask, batch.labels, batch.index
    )
    with torch.no_grad():
        assert not torch.allclose(model(batch).logits, model(changed).logits)


# --- staged training -------------------------------------------------------------------


@pytest.mark.parametrize("modality", ["audio", "text"])
def test_branch_stage_trains_that_branch_only(modality: str, utterance_batch) -> None:
    model = build(dropout=0.0)
    assert model.config.staged is True  # the paper's procedure is the default
    stages = dict(model.stages())
    stage = stages[modality]
    assert isinstance(stage, BranchStage) and stage.eval_mask is None
    own = {id(p) for p in model.branch(modality).parameters()}
    assert {id(p) for p in stage.parameters()} == own
    batch = utterance_batch(specs_of(model), n_classes=5, batch_size=10)
    with torch.no_grad():
        assert torch.equal(stage(batch).logits, model(batch).aux[modality])
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.SGD(stage.parameters(), lr=0.1)
    for epoch in range(3):
        stage.set_epoch(epoch, 3)
        optimizer.zero_grad()
        stage.loss(stage(batch), batch).backward()
        optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    prefix = "cnn." if modality == "audio" else "text_head."
    own_names = {n for n, _ in model.named_parameters() if n.startswith(prefix)}
    assert changed == own_names


def test_branch_stage_loss_is_cross_entropy_on_its_logits(utterance_batch) -> None:
    model = build(loss="perspective")
    stage = model.stage("audio")
    batch = utterance_batch(specs_of(model), n_classes=5)
    out = stage(batch)
    assert out.aux == {}
    torch.testing.assert_close(stage.loss(out, batch), F.cross_entropy(out.logits, batch.labels))


def test_a_deep_copied_stage_runs_its_own_branch(utterance_batch) -> None:
    model = build(dropout=0.0)
    stage = model.stage("audio")
    twin = copy.deepcopy(stage)
    assert not {id(p) for p in twin.parameters()} & {id(p) for p in model.parameters()}
    assert [n for n, _ in twin.named_parameters()] == [n for n, _ in stage.named_parameters()]
    batch = utterance_batch(specs_of(model), n_classes=5)
    with torch.no_grad():
        torch.testing.assert_close(twin(batch).logits, stage(batch).logits)
        for p in twin.parameters():
            p.add_(1.0)
        assert not torch.allclose(twin(batch).logits, stage(batch).logits)


def test_staged_applies_to_late_prob_only() -> None:
    assert ModelConfig(fusion="late-prob", staged=False).staged is False
    assert [name for name, _ in build().stages()] == ["audio", "text"]
    assert build(staged=False).stages() == []
    with pytest.raises(ConfigError, match="--staged does not apply to fusion 'mit'"):
        ModelConfig(fusion="mit", staged=True)
    with pytest.raises(ValueError, match="no 'video' branch"):
        build().stage("video")


# --- under the ensemble (torch.func.vmap over members) ---------------------------------


def stacked(batches: list[Batch]) -> tuple[Any, ...]:
    """The members' batches as `Ensemble.call` arguments: every tensor [K, ...]."""
    return (
        {n: torch.stack([b.x[n] for b in batches]) for n in batches[0].x},
        {n: torch.stack([b.mask[n] for b in batches]) for n in batches[0].mask},
        torch.stack([b.labels for b in batches]),
        torch.stack([b.index for b in batches]),
    )


def unstacked(batch: Batch) -> tuple[Any, ...]:
    return batch.x, batch.mask, batch.labels, batch.index


def forward(module: Any, x: Any, mask: Any, labels: Any, index: Any) -> tuple[Any, ...]:
    batch = Batch(x, mask, labels, index)
    out = module(batch)
    return out.logits, out.aux, module.loss(out, batch)


def member_batches(model: LateProbFusion, utterance_batch) -> list[Batch]:
    lengths = {"logmel80": [0, 3, 11, 6, 1]}  # a member's sample without frames too
    return [
        utterance_batch(specs_of(model), lengths=lengths, batch_size=5, n_classes=5, seed=s)
        for s in (1, 2)
    ]


def module_of(model: LateProbFusion, which: str) -> nn.Module:
    return model if which == "model" else model.stage(which)


@pytest.mark.parametrize("which", ["model", "audio", "text"])
def test_ensemble_eval_gives_each_member_what_it_gives_alone(which: str, utterance_batch) -> None:
    models = [build(seed=s, loss="perspective") for s in (0, 1)]
    members = [module_of(m, which).eval() for m in models]
    batches = member_batches(models[0], utterance_batch)
    ensemble = Ensemble(members)
    ensemble.eval()
    with torch.no_grad():
        logits, aux, loss = ensemble.call(forward, *stacked(batches))
        for k, (member, batch) in enumerate(zip(members, batches, strict=True)):
            alone_logits, alone_aux, alone_loss = forward(member, *unstacked(batch))
            torch.testing.assert_close(logits[k], alone_logits, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(loss[k], alone_loss, atol=1e-5, rtol=1e-5)
            for m, v in aux.items():
                torch.testing.assert_close(v[k], alone_aux[m], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(logits[0], logits[1])


@pytest.mark.parametrize("which", ["model", "audio", "text"])
def test_ensemble_members_draw_their_own_dropout(which: str, utterance_batch) -> None:
    member = module_of(build(dropout=0.5), which)
    ensemble = Ensemble([member, copy.deepcopy(member)])  # equal weights
    batch = member_batches(build(), utterance_batch)[0]
    ensemble.train()
    torch.manual_seed(0)
    with torch.no_grad():
        logits, _, _ = ensemble.call(forward, *stacked([batch, batch]))
    assert torch.isfinite(logits).all()
    assert not torch.allclose(logits[0], logits[1])
    ensemble.eval()
    with torch.no_grad():
        logits, _, _ = ensemble.call(forward, *stacked([batch, batch]))
    torch.testing.assert_close(logits[0], logits[1])


@pytest.mark.parametrize(
    ("which", "loss"),
    [("model", "single"), ("model", "perspective"), ("audio", "single"), ("text", "single")],
)
def test_ensemble_gradients_reach_every_parameter(which: str, loss: str, utterance_batch) -> None:
    models = [build(seed=s, loss=loss) for s in (0, 1)]
    ensemble = Ensemble([module_of(m, which) for m in models])
    batches = member_batches(models[0], utterance_batch)
    ensemble.train()
    _, _, losses = ensemble.call(forward, *stacked(batches))  # [K]
    losses.sum().backward()
    names = {n for n, _ in module_of(models[0], which).named_parameters()}
    assert set(ensemble.params) == names
    for name, p in ensemble.params.items():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert all(p.grad[k].abs().sum() > 0 for k in range(2)), name
