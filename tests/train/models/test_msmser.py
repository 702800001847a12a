"""MSMSER: training, ablations, padding invariance, RMM and evaluation masking."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ser.errors import ConfigError
from ser.train.batch import Batch, InputSpec
from ser.train.models import FeatureInfo, ModelConfig, build_model, plan_inputs
from ser.train.models.msmser import MSMSER
from ser.train.nn.attention import Attention

AUDIO = FeatureInfo("hubert", "audio", "frame", 10)
TEXT = FeatureInfo("mpnet", "text", "token", 12)
TINY = {"d_model": 16, "heads": 2, "layers": 1, "dropout": 0.0}


def build(features: list[FeatureInfo] = [AUDIO, TEXT], **options: object) -> MSMSER:  # noqa: B006
    options = {"fusion": "mit", **TINY, **options}
    if options["fusion"] == "mit":
        options = {"decoder_layers": 1, "queries": 4, **options}
    config = ModelConfig(**options)  # type: ignore[arg-type]
    _, specs = plan_inputs(config, features)
    torch.manual_seed(0)
    model = build_model(config, specs, n_classes=4)
    assert isinstance(model, MSMSER)
    return model


def specs_of(model: MSMSER) -> list[InputSpec]:
    return list(model.inputs)


def with_x(batch: Batch, name: str, value: torch.Tensor) -> Batch:
    return dataclasses.replace(batch, x={**batch.x, name: value})


def test_paper_defaults() -> None:
    _, specs = plan_inputs(ModelConfig(fusion="mit"), [AUDIO, TEXT])
    model = build_model(ModelConfig(fusion="mit"), specs, n_classes=4)
    assert isinstance(model, MSMSER)
    assert tuple(model.queries.value.shape) == (1, 30, 768)  # [K, L, d]
    assert model.decoder[0].self_attn.heads == 8
    assert model.config.rmm and model.unit == "utterance"


@pytest.mark.parametrize(
    ("features", "options"),
    [
        ([AUDIO, TEXT], {}),  # Full
        ([AUDIO, TEXT], {"encoder": False}),  # w/o Encoder
        ([AUDIO, TEXT], {"selfatt": False}),  # w/o SelfAtt
        ([AUDIO, TEXT], {"fusion": "concat"}),  # w/o MIT
        ([TEXT], {}),  # Text
        ([AUDIO], {}),  # Audio
        ([AUDIO, TEXT], {"rmm": False}),  # w/o RMM
    ],
    ids=["full", "no-encoder", "no-selfatt", "no-mit", "text", "audio", "no-rmm"],
)
def test_every_variant_learns_a_small_batch(
    features: list[FeatureInfo], options: dict[str, object], utterance_batch, train_steps
) -> None:
    model = build(features, **options)
    batch = utterance_batch(specs_of(model))
    first, last = train_steps(model, batch, steps=30)
    assert last < 0.5 * first


def test_ablation_switches_remove_their_modules() -> None:
    assert len(build(encoder=False).branches["audio"].encoder) == 0
    assert build(selfatt=False).branches["text"].scale is None
    no_mit = build(fusion="concat")
    assert not hasattr(no_mit, "decoder") and not hasattr(no_mit, "queries")
    assert build([TEXT]).modalities == ["text"]


@pytest.mark.parametrize("fusion", ["mit", "concat"])
def test_padding_frames_do_not_change_logits(fusion: str, utterance_batch, pad_more) -> None:
    model = build(fusion=fusion).eval()
    lengths = {"hubert": [2, 7, 5, 1, 4, 6], "mpnet": [3, 1, 4, 6, 2, 5]}
    tight = utterance_batch(specs_of(model), lengths=lengths, seed=1)
    padded = pad_more(tight)
    with torch.no_grad():
        torch.testing.assert_close(model(padded).logits, model(tight).logits, atol=1e-5, rtol=1e-5)


def test_each_sample_is_independent_of_its_batch(utterance_batch) -> None:
    model = build().eval()
    batch = utterance_batch(specs_of(model), seed=2)
    one = Batch(
        x={k: v[:1, : int(batch.mask[k][0].sum())] for k, v in batch.x.items()},
        mask={k: v[:1, : int(v[0].sum())] for k, v in batch.mask.items()},
        labels=batch.labels[:1],
        index=batch.index[:1],
    )
    with torch.no_grad():
        torch.testing.assert_close(model(one).logits, model(batch).logits[:1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fusion", ["mit", "concat"])
@pytest.mark.parametrize(("masked", "name"), [("text", "mpnet"), ("audio", "hubert")])
def test_eval_mask_makes_outputs_independent_of_that_modality(
    fusion: str, masked: str, name: str, utterance_batch
) -> None:
    model = build(fusion=fusion).eval()
    batch = utterance_batch(specs_of(model), seed=3)
    changed = with_x(batch, name, torch.randn_like(batch.x[name]) * 10)
    with torch.no_grad():
        assert not torch.allclose(model(batch).logits, model(changed).logits, atol=1e-4)
        model.eval_mask = masked
        torch.testing.assert_close(model(batch).logits, model(changed).logits)
        model.train()  # eval_mask only acts in eval mode
        assert not torch.allclose(model(batch).logits, model(changed).logits, atol=1e-4)


def test_eval_mask_from_config_and_refused_without_both_modalities() -> None:
    assert build(eval_mask="audio").eval_mask == ("audio",)  # one per member
    single = build([AUDIO])
    with pytest.raises(ConfigError, match="eval mask 'text'"):
        single.eval_mask = "text"


def test_set_epoch_follows_the_rmm_schedule() -> None:
    model = build()
    assert model.rmm_p == [0.0]  # nothing masked before the loop starts the schedule
    for epoch, p in [(0, 0.8), (35, 0.4), (69, 0.8 / 70), (70, 0.0), (99, 0.0)]:
        model.set_epoch(epoch, 100)
        assert model.rmm_p == pytest.approx([p])
    no_rmm = build(rmm=False)
    no_rmm.set_epoch(0, 100)
    assert no_rmm.rmm_p == [0.0]
    single = build([TEXT])
    single.set_epoch(0, 100)
    assert single.rmm_p == [0.0]


def test_rmm_masks_with_the_scheduled_frequencies(utterance_batch) -> None:
    model = build(d_model=8, heads=1, queries=2).train()
    batch = utterance_batch(specs_of(model), batch_size=2000)
    torch.manual_seed(0)
    for epoch, p in [(0, 0.8), (35, 0.4), (80, 0.0)]:
        model.set_epoch(epoch, 100)
        with torch.no_grad():
            model(batch)
        text, audio = model.last_dropped["text"][0], model.last_dropped["audio"][0]
        assert not bool((text & audio).any())  # at most one modality per sample
        applied = (text | audio).float().mean().item()
        assert applied == pytest.approx(p, abs=0.04)
        if p > 0:
            share = text.float().sum().item() / max(1.0, (text | audio).float().sum().item())
            assert share == pytest.approx(0.6, abs=0.05)


@pytest.mark.parametrize(
    ("masked", "name", "span"), [("text", "mpnet", "tail"), ("audio", "hubert", "head")]
)
def test_rmm_masks_the_attention_and_output_ignores_masked_features(
    masked: str, name: str, span: str, utterance_batch
) -> None:
    model = build().train()  # dropout 0: train mode differs from eval only by RMM
    model.set_epoch(0, 100)
    batch = utterance_batch(specs_of(model), batch_size=32, seed=4)
    seen: list[torch.Tensor] = []
    # The decoder's key mask [K B, 1, 1, S] of the one member: [B, S].
    model.decoder[0].register_forward_pre_hook(lambda _m, args: seen.append(~args[2][:, 0, 0]))
    changed = with_x(batch, name, torch.randn_like(batch.x[name]) * 10)
    torch.manual_seed(5)
    out = model(batch).logits
    dropped = model.last_dropped[masked][0]
    torch.manual_seed(5)
    out_changed = model(changed).logits
    assert torch.equal(model.last_dropped[masked][0], dropped)  # same draws under the same seed
    assert 0 < int(dropped.sum()) < 32
    t_audio = batch.x["hubert"].shape[1]
    ignored = seen[0][:, t_audio:] if span == "tail" else seen[0][:, :t_audio]  # True = ignored
    assert bool(ignored[dropped].all())  # the dropped modality's attention mask is all off
    assert not bool(ignored[~dropped].all(dim=1).any())  # others keep their real frames
    torch.testing.assert_close(out[dropped], out_changed[dropped])
    differs = (out[~dropped] - out_changed[~dropped]).abs().amax(dim=1) > 1e-4
    assert bool(differs.all())


def test_rmm_never_leaves_a_sample_without_memory(utterance_batch) -> None:
    model = build().train()
    model.set_epoch(0, 100)
    batch = utterance_batch(specs_of(model), batch_size=64)
    batch.mask["mpnet"][:32] = False  # no tokens: an empty transcript
    torch.manual_seed(0)
    out = model(batch)
    assert not bool(model.last_dropped["audio"][0, :32].any())
    assert bool(model.last_dropped["audio"][0, 32:].any())
    loss = model.loss(out, batch)
    loss.backward()
    assert torch.isfinite(out.logits).all() and torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_utterance_level_set_as_length_one_sequence(utterance_batch, train_steps) -> None:
    is13 = FeatureInfo("is13", "audio", "utterance", 20)
    model = build([is13, TEXT])
    assert model.spec("audio").view == "sequence"
    batch = utterance_batch(specs_of(model), lengths={"is13": [1] * 6})
    first, last = train_steps(model, batch, steps=30)
    assert last < 0.5 * first


def test_attention_keeps_off_cudnn_backend(utterance_batch) -> None:
    """cuDNN's fused attention builds a plan per sequence length (a slow first epoch on
    GPUs); the model's attention runs with every other backend, and only inside forward."""
    model = build()
    seen = []
    for layer in model.modules():
        if isinstance(layer, Attention):
            layer.register_forward_pre_hook(
                lambda *_: seen.append(torch.backends.cuda.cudnn_sdp_enabled())
            )
    before = torch.backends.cuda.cudnn_sdp_enabled()
    model(utterance_batch(specs_of(model)))
    assert seen and not any(seen)
    assert torch.backends.cuda.cudnn_sdp_enabled() == before


def test_layers_over_the_same_keys_share_one_key_mask(monkeypatch, utterance_batch) -> None:
    """The key mask (`keep_one`, a few operations) is made once per branch and once for
    the decoder, not once per attention layer."""
    import ser.train.nn.attention as attention

    calls = []
    original = attention.keep_one
    monkeypatch.setattr(attention, "keep_one", lambda m: calls.append(m) or original(m))
    model = build(layers=2, decoder_layers=2).train()
    model(utterance_batch(specs_of(model), batch_size=4))
    assert len(calls) == 3  # audio branch, text branch, decoder memory


def test_positions_come_from_a_table_made_once(utterance_batch) -> None:
    from torch.utils._python_dispatch import TorchDispatchMode

    from ser.train.nn.layers import sinusoidal_positions

    class Sines(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            self.count += func.__name__.startswith("sin")
            return func(*args, **(kwargs or {}))

    model = build().eval()
    batch = utterance_batch(specs_of(model), batch_size=4)
    model(batch)
    with Sines() as sines:
        model(batch)
    assert sines.count == 0
    d, cpu = model.config.d_model, torch.device("cpu")
    first = model._positions(7, cpu)
    for length in (5000, 7):  # a longer table, then rows of it
        torch.testing.assert_close(
            model._positions(length, cpu), sinusoidal_positions(length, d, cpu)
        )
    # The outgrown table is kept, unchanged: a step replayed from a CUDA graph reads it.
    assert any(first.untyped_storage().data_ptr() == t.data_ptr() for t in model._outgrown)


def test_without_rmm_a_training_step_draws_no_modality_masks(monkeypatch, utterance_batch) -> None:
    from ser.train.nn.noise import Noise

    drawn: list[object] = []
    original = Noise.lanes
    monkeypatch.setattr(Noise, "lanes", lambda self, *a: drawn.append(a) or original(self, *a))
    model = build(rmm=False).train()  # dropout 0 too: no draw at all
    model.set_epoch(0, 100)
    out = model(utterance_batch(specs_of(model), batch_size=4))
    assert drawn == []
    assert not any(bool(d.any()) for d in model.last_dropped.values())
    assert torch.isfinite(out.logits).all()
    with_rmm = build().train()
    with_rmm.set_epoch(0, 100)
    with_rmm(utterance_batch(specs_of(model), batch_size=4))  # RMM on: it draws
    assert len(drawn) == 1
