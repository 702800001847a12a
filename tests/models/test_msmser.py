"""MSMSER: shapes, training, ablations, padding invariance, RMM, evaluation masking, and
its members under `Ensemble` (vmap)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest
import torch
from torch.nn.attention import sdpa_kernel

from ser.models import FeatureInfo, ModelConfig, build_model, plan_inputs
from ser.models.batch import Batch, InputSpec
from ser.models.msmser import MSMSER
from ser.models.nn.attention import STACKED_BACKENDS, Attention
from ser.train.engine.ensemble import Ensemble

AUDIO = FeatureInfo("hubert", "audio", "frame", 10)
TEXT = FeatureInfo("mpnet", "text", "token", 12)
TINY = {"d_model": 16, "heads": 2, "layers": 1, "dropout": 0.0}
LR = 3e-3  # at 1e-2 the tiny post-norm transformer stalls on a plateau for some seeds
VARIANTS = {
    "full": ([AUDIO, TEXT], {}),
    "no-encoder": ([AUDIO, TEXT], {"encoder": False}),
    "no-selfatt": ([AUDIO, TEXT], {"selfatt": False}),
    "no-mit": ([AUDIO, TEXT], {"fusion": "concat"}),
    "text": ([TEXT], {}),
    "audio": ([AUDIO], {}),
    "no-rmm": ([AUDIO, TEXT], {"rmm": False}),
}
# SDPA has no vmap batching rule on the CPU: vmap runs it member by member, and says so.
vmap_fallback = pytest.mark.filterwarnings("ignore:There is a performance drop")


def build(
    features: Sequence[FeatureInfo] = (AUDIO, TEXT), seed: int = 0, **options: object
) -> MSMSER:
    options = {"fusion": "mit", **TINY, **options}
    if options["fusion"] == "mit":
        options = {"decoder_layers": 1, "queries": 4, **options}
    config = ModelConfig(**options)  # type: ignore[arg-type]
    _, specs = plan_inputs(config, list(features))
    model = build_model(config, specs, n_classes=4, seed=seed)
    assert isinstance(model, MSMSER)
    return model


def specs_of(model: MSMSER) -> list[InputSpec]:
    return list(model.inputs)


def with_x(batch: Batch, name: str, value: torch.Tensor) -> Batch:
    return dataclasses.replace(batch, x={**batch.x, name: value})


def by_modality(model: MSMSER, batch: Batch) -> dict[str, torch.Tensor]:
    """The batch's frame masks {modality: [B, T]}, as `dropped` takes them."""
    return {m: batch.mask[model.spec(m).name] for m in model.modalities}


def record_drops(model: MSMSER) -> list[dict[str, torch.Tensor]]:
    """The list every later forward appends its `dropped` draw to (run outside vmap)."""
    seen: list[dict[str, torch.Tensor]] = []
    original = model.dropped

    def spy(masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        seen.append(original(masks))
        return seen[-1]

    model.dropped = spy  # type: ignore[method-assign]
    return seen


def run_members(ensemble: Ensemble, batch: Batch, loss: bool = False) -> torch.Tensor:
    """Every member on the same batch: logits [K, B, C], or the losses [K]."""
    k = ensemble.members

    def stack(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: torch.stack([t] * k) for name, t in tensors.items()}

    def one(module: MSMSER, x: dict, mask: dict, labels: torch.Tensor) -> torch.Tensor:
        member = Batch(x=x, mask=mask, labels=labels, index=labels)
        out = module(member)
        return module.loss(out, member) if loss else out.logits

    return ensemble.call(one, stack(batch.x), stack(batch.mask), torch.stack([batch.labels] * k))


def test_paper_defaults() -> None:
    _, specs = plan_inputs(ModelConfig(fusion="mit"), [AUDIO, TEXT])
    model = build_model(ModelConfig(fusion="mit"), specs, n_classes=4)
    assert isinstance(model, MSMSER)
    assert tuple(model.queries.shape) == (30, 768)  # [L, d]
    assert model.queries.std().item() == pytest.approx(0.02, rel=0.1)
    assert tuple(model.type_codes.weight.shape) == (2, 768)  # N(0, 1), as nn.Embedding
    assert model.decoder[0].self_attn.heads == 8
    assert len(model.decoder) == 2 and len(model.branches["audio"].encoder) == 2
    assert model.config.rmm


@pytest.mark.parametrize(("features", "options"), VARIANTS.values(), ids=VARIANTS.keys())
def test_every_variant_gives_finite_logits_of_the_right_shape(
    features: list[FeatureInfo], options: dict[str, object], utterance_batch
) -> None:
    """[B, C] logits in train and eval mode, RMM on, with a sample that has no frames at
    all (a padded batch slot) and with a zero-length batch."""
    model = build(features, **options)
    model.set_epoch(0, 10)
    names = [s.name for s in specs_of(model)]
    batch = utterance_batch(specs_of(model), lengths={n: [3, 0, 5, 2, 1, 4] for n in names})
    empty = Batch(
        x={n: batch.x[n][:, :0] for n in names},
        mask={n: batch.mask[n][:, :0] for n in names},
        labels=batch.labels,
        index=batch.index,
    )
    for train in (True, False):
        model.train(train)
        for b in (batch, empty):
            logits = model(b).logits
            assert logits.shape == (6, 4) and torch.isfinite(logits).all()


@pytest.mark.slow
@pytest.mark.parametrize(("features", "options"), VARIANTS.values(), ids=VARIANTS.keys())
def test_every_variant_learns_a_small_batch(
    features: list[FeatureInfo], options: dict[str, object], utterance_batch, train_steps
) -> None:
    model = build(features, **options)
    batch = utterance_batch(specs_of(model))
    first, last = train_steps(model, batch, steps=50, lr=LR)
    assert last < 0.5 * first


def test_ablation_switches_remove_their_modules() -> None:
    assert len(build(encoder=False).branches["audio"].encoder) == 0
    assert isinstance(build(selfatt=False).branches["text"].scale, torch.nn.Identity)
    no_mit = build(fusion="concat")
    assert not hasattr(no_mit, "decoder") and not hasattr(no_mit, "queries")
    assert no_mit.head.hidden.in_features == 2 * 16  # the two pooled branches, concatenated
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


@pytest.mark.parametrize("masked", ["text", "audio"])
def test_eval_mask_zeroes_the_modality_memory_rows_and_keys(masked: str, utterance_batch) -> None:
    """MIT: the masked modality's memory rows are zero and its keys off; w/o MIT: its
    pooled vector (its half of the head's input) is zero."""
    model = build().eval()
    model.eval_mask = masked
    seen: list[tuple[torch.Tensor, ...]] = []
    model.decoder[0].register_forward_pre_hook(lambda _m, args: seen.append(args))
    batch = utterance_batch(specs_of(model), seed=6)
    model(batch)
    _, memory, keys = seen[0]  # [B, S, d], [B, 1, 1, S]
    t_audio = batch.x["hubert"].shape[1]
    span = slice(t_audio, None) if masked == "text" else slice(0, t_audio)
    assert bool((memory[:, span] == 0).all()) and not bool(keys[:, 0, 0, span].any())
    kept = slice(0, t_audio) if masked == "text" else slice(t_audio, None)
    assert torch.equal(keys[:, 0, 0, kept], batch.mask["hubert" if masked == "text" else "mpnet"])

    no_mit = build(fusion="concat").eval()
    no_mit.eval_mask = masked
    inputs: list[torch.Tensor] = []
    no_mit.head.register_forward_pre_hook(lambda _m, args: inputs.append(args[0]))
    no_mit(batch)
    half = slice(0, 16) if masked == "audio" else slice(16, 32)  # [audio d | text d]
    assert bool((inputs[0][:, half] == 0).all())
    assert bool((inputs[0] != 0).any(dim=1).all())


def test_eval_mask_from_config() -> None:
    assert build(eval_mask="audio").eval_mask == "audio"
    assert build([AUDIO]).eval_mask is None


def test_set_epoch_follows_the_rmm_schedule() -> None:
    model = build()
    assert model.rmm_p == 0.0  # nothing masked before the loop starts the schedule
    for epoch, p in [(0, 0.8), (35, 0.4), (69, 0.8 / 70), (70, 0.0), (99, 0.0)]:
        model.set_epoch(epoch, 100)
        assert isinstance(model.rmm_p, float) and model.rmm_p == pytest.approx(p)
    no_rmm = build(rmm=False)
    no_rmm.set_epoch(0, 100)
    assert no_rmm.rmm_p == 0.0
    single = build([TEXT])
    single.set_epoch(0, 100)
    assert single.rmm_p == 0.0


def test_rmm_masks_with_the_scheduled_frequencies(utterance_batch) -> None:
    model = build(d_model=8, heads=1, queries=2).train()
    masks = by_modality(model, utterance_batch(specs_of(model), batch_size=2000))
    torch.manual_seed(0)
    for epoch, p in [(0, 0.8), (35, 0.4), (80, 0.0)]:
        model.set_epoch(epoch, 100)
        drops = model.dropped(masks)
        text, audio = drops["text"], drops["audio"]
        assert not bool((text & audio).any())  # at most one modality per sample
        applied = (text | audio).float().mean().item()
        assert applied == pytest.approx(p, abs=0.04)
        if p > 0:
            share = text.float().sum().item() / max(1.0, (text | audio).float().sum().item())
            assert share == pytest.approx(0.6, abs=0.05)


def test_rmm_at_p_one_drops_one_modality_of_every_sample_that_has_both(utterance_batch) -> None:
    model = build(rmm_p0=1.0).train()
    model.set_epoch(0, 10)
    assert model.rmm_p == 1.0
    seen = record_drops(model)
    lengths = {"hubert": [3, 0, 4, 0, 2, 5] * 4, "mpnet": [2, 3, 0, 0, 4, 1] * 4}
    batch = utterance_batch(specs_of(model), lengths=lengths, batch_size=24)
    torch.manual_seed(1)
    logits = model(batch).logits
    assert torch.isfinite(logits).all()
    audio, text = seen[0]["audio"], seen[0]["text"]
    has_audio, has_text = batch.mask["hubert"].any(dim=1), batch.mask["mpnet"].any(dim=1)
    both = has_audio & has_text
    assert torch.equal((audio ^ text)[both], torch.ones(int(both.sum()), dtype=torch.bool))
    assert not bool((audio & text).any())
    # Never the modality of a sample whose other modality has no frames.
    assert not bool(audio[~has_text].any()) and not bool(text[~has_audio].any())
    assert bool(text[both].any()) and bool(audio[both].any())


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
    # The decoder's key mask [B, 1, 1, S] as [B, S], True = ignored.
    model.decoder[0].register_forward_pre_hook(lambda _m, args: seen.append(~args[2][:, 0, 0]))
    drops = record_drops(model)
    changed = with_x(batch, name, torch.randn_like(batch.x[name]) * 10)
    torch.manual_seed(5)
    out = model(batch).logits
    torch.manual_seed(5)
    out_changed = model(changed).logits
    dropped = drops[0][masked]
    assert torch.equal(drops[1][masked], dropped)  # same draws under the same seed
    assert 0 < int(dropped.sum()) < 32
    t_audio = batch.x["hubert"].shape[1]
    ignored = seen[0][:, t_audio:] if span == "tail" else seen[0][:, :t_audio]
    assert bool(ignored[dropped].all())  # the dropped modality's attention mask is all off
    assert not bool(ignored[~dropped].all(dim=1).any())  # others keep their real frames
    torch.testing.assert_close(out[dropped], out_changed[dropped])
    differs = (out[~dropped] - out_changed[~dropped]).abs().amax(dim=1) > 1e-4
    assert bool(differs.all())


def test_rmm_without_mit_zeroes_the_dropped_pooled_vector(utterance_batch) -> None:
    model = build(fusion="concat", rmm_p0=1.0).train()
    model.set_epoch(0, 10)
    drops = record_drops(model)
    inputs: list[torch.Tensor] = []
    model.head.register_forward_pre_hook(lambda _m, args: inputs.append(args[0]))
    model(utterance_batch(specs_of(model), batch_size=16, seed=7))
    audio, text = drops[0]["audio"], drops[0]["text"]
    assert bool((audio ^ text).all())  # p = 1: every sample loses one
    halves = {"audio": inputs[0][:, :16], "text": inputs[0][:, 16:]}
    for modality, dropped in drops[0].items():
        assert bool((halves[modality][dropped] == 0).all())
        assert bool((halves[modality][~dropped] != 0).any(dim=1).all())


def test_rmm_never_leaves_a_sample_without_memory(utterance_batch) -> None:
    model = build().train()
    model.set_epoch(0, 100)
    drops = record_drops(model)
    batch = utterance_batch(specs_of(model), batch_size=64)
    batch.mask["mpnet"][:32] = False  # no tokens: an empty transcript
    torch.manual_seed(0)
    out = model(batch)
    assert not bool(drops[0]["audio"][:32].any())
    assert bool(drops[0]["audio"][32:].any())
    loss = model.loss(out, batch)
    loss.backward()
    assert torch.isfinite(out.logits).all() and torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_without_rmm_or_dropout_a_training_step_draws_nothing(utterance_batch) -> None:
    model = build(rmm=False).train()  # dropout 0 too
    model.set_epoch(0, 100)
    batch = utterance_batch(specs_of(model), batch_size=4)
    state = torch.get_rng_state()
    model(batch)
    assert torch.equal(torch.get_rng_state(), state)
    with_rmm = build().train()
    with_rmm.set_epoch(0, 100)
    with_rmm(batch)  # RMM on: it draws
    assert not torch.equal(torch.get_rng_state(), state)


def test_utterance_level_set_as_length_one_sequence(utterance_batch, train_steps) -> None:
    is13 = FeatureInfo("is13", "audio", "utterance", 20)
    model = build([is13, TEXT])
    assert model.spec("audio").view == "sequence"
    batch = utterance_batch(specs_of(model), lengths={"is13": [1] * 6})
    first, last = train_steps(model, batch, steps=50, lr=LR)
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
    """The key mask is made once per branch and once for the decoder, not once per
    attention layer."""
    import ser.models.nn.attention as attention

    calls = []
    original = attention.keep_one
    monkeypatch.setattr(attention, "keep_one", lambda m: calls.append(m) or original(m))
    model = build(layers=2, decoder_layers=2).train()
    model(utterance_batch(specs_of(model), batch_size=4))
    assert len(calls) == 3  # audio branch, text branch, decoder memory


def test_positions_come_from_a_table_made_once(monkeypatch, utterance_batch) -> None:
    import ser.models.msmser as msmser
    from ser.models.nn.blocks import sinusoidal_positions

    made = []
    monkeypatch.setattr(
        msmser, "sinusoidal_positions", lambda *a: made.append(a) or sinusoidal_positions(*a)
    )
    model = build().eval()
    batch = utterance_batch(specs_of(model), batch_size=4)
    model(batch)
    model(batch)
    assert len(made) == 1  # one table for both modalities and both steps
    d, cpu = 16, torch.device("cpu")
    for length in (7, 5000, 7):  # rows of the table, a longer table, rows of it
        torch.testing.assert_close(
            model._positions(length, cpu), sinusoidal_positions(length, d, cpu)
        )
    assert len(made) == 2


@vmap_fallback
@pytest.mark.parametrize("fusion", ["mit", "concat"])
def test_members_under_vmap_equal_the_module_alone(fusion: str, utterance_batch) -> None:
    members = [build(fusion=fusion, seed=s, dropout=0.1).eval() for s in (0, 1)]
    batch = utterance_batch(specs_of(members[0]), lengths={"hubert": [3, 0, 5, 2, 7, 4]})
    ensemble = Ensemble(members)
    ensemble.eval()
    with torch.no_grad():
        stacked = run_members(ensemble, batch)
        for k, member in enumerate(members):
            torch.testing.assert_close(stacked[k], member(batch).logits, atol=1e-5, rtol=1e-5)
        ensemble.base.eval_mask = "text"  # a plain attribute every member reads
        members[1].eval_mask = "text"
        torch.testing.assert_close(
            run_members(ensemble, batch)[1], members[1](batch).logits, atol=1e-5, rtol=1e-5
        )


@vmap_fallback
@pytest.mark.parametrize("options", [{"dropout": 0.3, "rmm": False}, {"rmm_p0": 1.0}])
def test_members_under_vmap_draw_their_own_dropout_and_rmm(
    options: dict[str, object], utterance_batch
) -> None:
    """Two members with the same weights and batch differ in training: each draws its own
    dropout masks, or (dropout 0) its own modality masks."""
    members = [build(**options), build(**options)]
    ensemble = Ensemble(members)
    ensemble.train()
    ensemble.base.set_epoch(0, 10)
    batch = utterance_batch(specs_of(members[0]), batch_size=16)
    torch.manual_seed(0)
    logits = run_members(ensemble, batch)
    assert torch.isfinite(logits).all()
    assert not torch.allclose(logits[0], logits[1], atol=1e-4)
    ensemble.eval()
    same = run_members(ensemble, batch)
    torch.testing.assert_close(same[0], same[1])


@vmap_fallback
@pytest.mark.parametrize("fusion", ["mit", "concat"])
def test_gradients_reach_every_parameter_of_every_member(fusion: str, utterance_batch) -> None:
    members = [build(fusion=fusion, seed=s, dropout=0.1) for s in (0, 1)]
    ensemble = Ensemble(members)
    ensemble.train()
    ensemble.base.set_epoch(0, 10)
    batch = utterance_batch(specs_of(members[0]), lengths={"mpnet": [3, 0, 5, 2, 1, 4]})
    losses = run_members(ensemble, batch, loss=True)  # [K]
    assert losses.shape == (2,)
    losses.sum().backward()
    for name, param in ensemble.params.items():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        if name.endswith("score.bias"):
            # A pooling score's bias shifts every score alike, which softmax undoes: its
            # gradient is 0 up to rounding (exactly 0 for some draws), for every member.
            assert param.grad.abs().max() < 1e-5, name
            continue
        assert bool((param.grad.flatten(1) != 0).any(dim=1).all()), name  # each member


def test_attention_keeps_a_backend_its_caller_switched_off(utterance_batch) -> None:
    """Stacked members are called with the memory-efficient kernel off (its backward fails
    under vmap on CUDA): the model's own choice of backends keeps it off."""
    model = build()
    seen = []
    for layer in model.modules():
        if isinstance(layer, Attention):
            layer.register_forward_pre_hook(
                lambda *_: seen.append(torch.backends.cuda.mem_efficient_sdp_enabled())
            )
    with sdpa_kernel(STACKED_BACKENDS):
        model(utterance_batch(specs_of(model)))
    assert seen and not any(seen)
