"""The wav2vec2 family's forward: the conv front end over the padded batch (a GPU's way)
gives what it gives over each utterance's own samples (the CPU's), within float rounding,
for every norm the family has; bucketed lengths keep a shard's conv shapes few."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest
import torch

import ser.extract.conv_products
import ser.extract.wav2vec2
from ser.extract.conv_products import GroupedConvProduct
from ser.extract.plan import plan_shards
from ser.extract.speech import SpeechExtractor, SpeechOptions
from ser.extract.wav2vec2 import bucket_length, masked_group_norm
from ser.synth.tiny import save_tiny_hubert, save_tiny_speech

CPU = torch.device("cpu")
LENGTHS = (16000, 9000, 4001, 9000, 700, 12345)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("w2v")
    return {
        "hubert-group": save_tiny_hubert(root / "hubert-group", feat_extract_norm="group"),
        "hubert-layer": save_tiny_hubert(root / "hubert-layer", feat_extract_norm="layer"),
        "wav2vec2": save_tiny_speech(root / "wav2vec2", "wav2vec2"),
        "wavlm": save_tiny_speech(root / "wavlm", "wavlm"),
    }


def waves(lengths: tuple[int, ...] = LENGTHS) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


def loaded(folder: Path) -> SpeechExtractor:
    extractor = SpeechExtractor(SpeechOptions(model=str(folder), layers="all", precision="fp32"))
    extractor.load(CPU)
    return extractor


@pytest.mark.slow
@pytest.mark.parametrize(
    ("front_end", "positional"), [("conv", "conv"), ("matmul", "conv"), ("matmul", "matmul")]
)
@pytest.mark.parametrize("name", ["hubert-group", "hubert-layer", "wav2vec2", "wavlm"])
def test_the_batched_front_end_gives_each_utterances_own_frames(
    models: dict[str, Path],
    name: str,
    front_end: str,
    positional: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ser.extract.wav2vec2, "FRONT_END", front_end)
    monkeypatch.setattr(ser.extract.wav2vec2, "POSITIONAL", positional)
    extractor = loaded(models[name])
    frames, model, layers = extractor.frames, extractor.model, extractor.layers
    inputs = waves()
    with torch.inference_mode():
        each = frames.hidden(model, inputs, layers, CPU, batched=False)
        batched = frames.hidden(model, inputs, layers, CPU, batched=True)
    swapped = isinstance(model.encoder.pos_conv_embed.conv, GroupedConvProduct)
    assert swapped == (positional == "matmul")  # each ran first, on cuDNN's conv
    assert each.lengths == batched.lengths
    assert batched.states.shape == each.states.shape  # [B, L, T, D]: padding cropped
    for i, n in enumerate(each.lengths):
        torch.testing.assert_close(
            batched.states[i, :, :n], each.states[i, :, :n], rtol=1e-4, atol=1e-4
        )


@pytest.mark.parametrize("front_end", ["conv", "matmul"])
def test_without_the_mask_the_group_norm_would_see_the_padding(
    models: dict[str, Path], front_end: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the masked norm is for: the plain GroupNorm over the padded batch moves a
    short utterance's frames."""
    monkeypatch.setattr(ser.extract.wav2vec2, "FRONT_END", front_end)
    extractor = loaded(models["hubert-group"])
    conv = extractor.model.feature_extractor
    short, long = waves((4000, 16000))
    padded = torch.zeros(2, 16000)
    padded[0, :4000], padded[1] = torch.from_numpy(short), torch.from_numpy(long)
    with torch.inference_mode():
        alone = conv(torch.from_numpy(short)[None])  # [1, C, T]
        plain = conv(padded)[:1, :, : alone.shape[-1]]
        masked = extractor.frames._conv_batched(extractor.model, [short, long], CPU)
    assert (plain - alone).abs().max() > 1e-2
    torch.testing.assert_close(masked[:1, : alone.shape[-1]].transpose(1, 2), alone)


@pytest.mark.parametrize("groups", [1, 4, 8])
def test_masked_group_norm_is_group_norm_over_each_inputs_frames(groups: int) -> None:
    norm = torch.nn.GroupNorm(groups, 8)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = torch.randn(3, 8, 20)
    counts = torch.tensor([20, 13, 5])
    out = masked_group_norm(x, counts, norm)
    for b, n in enumerate(counts.tolist()):
        expected = norm(x[b : b + 1, :, :n])
        torch.testing.assert_close(out[b : b + 1, :, :n], expected, rtol=1e-5, atol=1e-5)


def test_bucket_length_pads_under_an_eighth_and_is_monotone() -> None:
    lengths = np.arange(1, 600_000, 997)
    buckets = np.array([bucket_length(int(n)) for n in lengths])
    assert (buckets >= lengths).all() and (buckets - lengths <= lengths / 8 + 1).all()
    assert (np.diff(buckets) >= 0).all()
    assert bucket_length(int(buckets[100])) == buckets[100]  # a bucket is its own bucket


def test_a_shard_meets_few_conv_shapes() -> None:
    """IEMOCAP-shaped durations in the GPU's batches: per 256-utterance shard, the distinct
    conv input shapes (batch, samples) of per-utterance calls against the padded batch's."""
    rng = np.random.default_rng(0)
    seconds = np.clip(np.exp(1.30 + 0.61 * rng.standard_normal(2000)), 0.6, 34.0)
    plan = plan_shards(seconds.tolist(), budget=240.0, shard_size=256)
    before, after = [], []
    for shard in plan.shards:
        samples = [[round(seconds[i] * 16000) for i in batch] for batch in shard.batches]
        before.append(len({(1, n) for batch in samples for n in batch}))
        after.append(len({(len(b), bucket_length(max(b))) for b in samples}))
    assert np.mean(before) > 200  # nearly an utterance each
    assert max(after) <= len(max(plan.shards, key=lambda s: len(s.batches)).batches)
    assert np.mean(after) < 10


def test_doctests() -> None:
    assert doctest.testmod(ser.extract.wav2vec2).failed == 0
    assert doctest.testmod(ser.extract.conv_products).failed == 0
