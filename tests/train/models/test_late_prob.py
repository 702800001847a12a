"""Zhou et al.'s late probability fusion: CNN padding invariance, fusion maths, training."""

from __future__ import annotations

import pytest
import torch

from ser.train.batch import Batch, InputSpec
from ser.train.models import FeatureInfo, ModelConfig, build_model, plan_inputs
from ser.train.models.late_prob import BranchStage, LateProbFusion
from ser.train.nn.noise import Dropper

LOGMEL = FeatureInfo("logmel80", "audio", "frame", 20)
BERT = FeatureInfo("bert", "text", "token", 16)


def build(**kw: object) -> LateProbFusion:
    options = {"d_model": 16, "cnn_channels": (4, 4, 8, 8, 8), **kw}
    config = ModelConfig(fusion="late-prob", **options)  # type: ignore[arg-type]
    _, specs = plan_inputs(config, [LOGMEL, BERT])
    torch.manual_seed(0)
    model = build_model(config, specs, n_classes=5)
    assert isinstance(model, LateProbFusion)
    return model


def specs_of(model: LateProbFusion) -> list[InputSpec]:
    return list(model.inputs)


def test_paper_defaults_and_views() -> None:
    config = ModelConfig(fusion="late-prob")
    unit, specs = plan_inputs(config, [LOGMEL, BERT])
    assert unit == "utterance"
    assert [(s.name, s.view) for s in specs] == [("logmel80", "sequence"), ("bert", "vector")]
    model = build_model(config, specs, n_classes=5)
    assert isinstance(model, LateProbFusion)
    assert [b.conv.c_out for b in model.cnn.blocks] == [32, 64, 128, 256, 256]
    assert model.dropout_p == [0.6]
    assert model.audio_fuse.weight.shape == (1, 5, 5)


@pytest.mark.parametrize("loss", ["single", "perspective"])
def test_loss_drops_on_a_small_batch(loss: str, utterance_batch, train_steps) -> None:
    model = build(loss=loss, dropout=0.0)
    batch = utterance_batch(specs_of(model), n_classes=5, batch_size=10)
    first, last = train_steps(model, batch, steps=60)
    assert last < 0.6 * first


def test_padding_frames_do_not_change_logits(utterance_batch, pad_more) -> None:
    model = build().eval()
    lengths = {"logmel80": [1, 2, 3, 31, 32, 33, 47, 64]}  # odd, even, shorter than 2^5
    batch = utterance_batch(specs_of(model), lengths=lengths, batch_size=8, n_classes=5)
    with torch.no_grad():
        out, out_padded = model(batch), model(pad_more(batch, extra=13))
    torch.testing.assert_close(out_padded.logits, out.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_padded.aux["audio"], out.aux["audio"], atol=1e-5, rtol=1e-5)


def test_cnn_on_a_padded_batch_equals_each_utterance_alone(utterance_batch) -> None:
    model = build().eval()
    lengths = [5, 17, 2, 40]
    batch = utterance_batch(specs_of(model), lengths={"logmel80": lengths}, batch_size=4)
    x, mask = batch.x["logmel80"][None], batch.mask["logmel80"][None]  # [K=1, B, T, F]
    keep = Dropper(None, [0.0])
    with torch.no_grad():
        together = model.cnn(x, mask, keep)
        alone = torch.cat(
            [model.cnn(x[:, i : i + 1, :n], mask[:, i : i + 1, :n], keep) for i, n in
             enumerate(lengths)],
            dim=1,
        )  # fmt: skip
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


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


@pytest.mark.parametrize("modality", ["audio", "text"])
def test_branch_stage_trains_that_branch_only(modality: str, utterance_batch) -> None:
    model = build(dropout=0.0)
    assert model.config.staged is True  # the paper's procedure is the default
    stage = BranchStage(model, modality)
    own = {id(p) for p in model.branch(modality).parameters()}
    assert {id(p) for p in stage.parameters()} == own
    batch = utterance_batch(specs_of(model), n_classes=5, batch_size=10)
    with torch.no_grad():
        assert torch.equal(stage(batch).logits, model(batch).aux[modality])
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.SGD(stage.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        stage.loss(stage(batch), batch).backward()
        optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    prefix = "cnn." if modality == "audio" else "text_head."
    assert changed and all(n.startswith(prefix) for n in changed)


def test_staged_applies_to_late_prob_only() -> None:
    from ser.errors import ConfigError
    from ser.train.models.config import resolve

    assert resolve(ModelConfig(fusion="late-prob", staged=False)).staged is False
    assert [name for name, _ in build().stages()] == ["audio", "text"]
    assert build(staged=False).stages() == []
    with pytest.raises(ConfigError, match="staged does not apply to fusion 'mit'"):
        resolve(ModelConfig(fusion="mit", staged=True))
    with pytest.raises(ValueError, match="no 'video' branch"):
        BranchStage(build(), "video")
