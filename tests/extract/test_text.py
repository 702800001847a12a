"""The text-encoder kind, as MPNet and as BERT, on tiny random models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from ser.cache.fingerprint import fingerprint
from ser.errors import ConfigError
from ser.extract.base import ExtractionError
from ser.extract.registry import build_extractor
from ser.extract.text_encoder import TextEncoderExtractor, TextEncoderOptions
from ser.runtime.precision import resolve_precision
from ser.synth.tiny import TinyModels, build_tiny_models

CPU = torch.device("cpu")
WORDS = ["hello", "world", "happy", "sad", "really", "i'm"]
TEXTS = [
    "hello world",
    "",
    "I'm really, really happy! " * 4,
    "sad",
    "zebra crossing",  # out-of-vocabulary words become pieces
]
KINDS = ["bert", "mpnet"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return build_tiny_models(tmp_path_factory.mktemp("text"), WORDS, seed=0)


def make(
    kind: str, folder: Path, max_tokens: int | None = None, precision: str = "auto"
) -> TextEncoderExtractor:
    extractor = build_extractor(kind, model=str(folder), max_tokens=max_tokens, precision=precision)
    assert isinstance(extractor, TextEncoderExtractor)
    return extractor


def loaded(
    kind: str, folder: Path, max_tokens: int | None = None, precision: str = "fp32"
) -> TextEncoderExtractor:
    # fp32 unless asked: the padding comparison needs it.
    extractor = make(kind, folder, max_tokens, precision)
    extractor.load(CPU)
    return extractor


@pytest.mark.parametrize("kind", KINDS)
def test_specs_carry_provenance(tiny: TinyModels, kind: str) -> None:
    extractor = make(kind, getattr(tiny, kind))
    [spec] = extractor.specs()
    assert spec.name == f"tiny-{kind}"
    attrs = spec.attrs
    assert attrs["extractor"] == kind and attrs["modality"] == "text"
    assert attrs["level"] == "token" and attrs["frame_shift"] is None
    assert attrs["sample_rate"] is None and extractor.sample_rate is None
    assert attrs["dim"] == 32 and attrs["dtype"] == "float16"
    assert attrs["special_tokens"] == "kept" and attrs["max_tokens"] == 64
    assert attrs["model"] == str(getattr(tiny, kind)) and attrs["layer"] == 2
    assert len(attrs["weights_sha256"]) == 64 and len(attrs["tokenizer_sha256"]) == 64
    assert attrs["transformers_version"]
    assert attrs["precision"] == resolve_precision("auto", CPU, "extract") != "auto"


@pytest.mark.parametrize("kind", KINDS)
def test_bf16_is_close_to_fp32_and_is_another_feature_set(tiny: TinyModels, kind: str) -> None:
    folder, name = getattr(tiny, kind), f"tiny-{kind}"
    fp32, bf16 = (loaded(kind, folder, precision=p) for p in ("fp32", "bf16"))
    for ours, reference in zip(bf16.extract(TEXTS), fp32.extract(TEXTS), strict=True):
        rows, ref = ours[name], reference[name]
        assert rows.dtype == np.float32 and not np.array_equal(rows, ref)
        cosine = (rows * ref).sum(-1) / np.linalg.norm(rows, axis=-1) / np.linalg.norm(ref, axis=-1)
        assert cosine.min() > 0.99
    [spec32], [spec16] = fp32.specs(), bf16.specs()
    assert (spec32.attrs["precision"], spec16.attrs["precision"]) == ("fp32", "bf16")
    assert fingerprint(spec32.attrs) != fingerprint(spec16.attrs)


@pytest.mark.parametrize("kind", KINDS)
def test_one_row_per_token_special_tokens_kept(tiny: TinyModels, kind: str) -> None:
    extractor = loaded(kind, getattr(tiny, kind))
    tokenizer = AutoTokenizer.from_pretrained(getattr(tiny, kind))
    outputs = extractor.extract(TEXTS)
    lengths = extractor.lengths(TEXTS)
    for text, output, length in zip(TEXTS, outputs, lengths, strict=True):
        rows = output[f"tiny-{kind}"]
        assert rows.dtype == np.float32 and rows.shape == (length, 32)
        assert length == len(tokenizer(text)["input_ids"])
        assert np.isfinite(rows).all()
    assert lengths[:2] == [4, 2]  # start + 2 words + end; an empty transcript keeps 2 rows


@pytest.mark.parametrize("kind", KINDS)
def test_padding_does_not_change_outputs(tiny: TinyModels, kind: str) -> None:
    extractor = loaded(kind, getattr(tiny, kind))
    batched = extractor.extract(TEXTS)
    for text, together in zip(TEXTS, batched, strict=True):
        [alone] = extractor.extract([text])
        name = f"tiny-{kind}"
        np.testing.assert_allclose(together[name], alone[name], atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_long_transcripts_are_cut_at_max_tokens(tiny: TinyModels, kind: str) -> None:
    long_text = "hello world " * 100
    default = loaded(kind, getattr(tiny, kind))
    assert default.lengths([long_text]) == [64]
    assert default.extract([long_text])[0][f"tiny-{kind}"].shape == (64, 32)
    short = loaded(kind, getattr(tiny, kind), max_tokens=8)
    assert short.specs()[0].attrs["max_tokens"] == 8
    assert short.extract([long_text, "sad"])[0][f"tiny-{kind}"].shape == (8, 32)


@pytest.mark.parametrize("max_tokens", [1, 65])
def test_max_tokens_out_of_range(tiny: TinyModels, max_tokens: int) -> None:
    with pytest.raises(ConfigError, match=f"max_tokens {max_tokens} out of range.*2..64"):
        make("bert", tiny.bert, max_tokens).specs()


def test_non_text_input_fails_alone(tiny: TinyModels) -> None:
    extractor = loaded("bert", tiny.bert)
    with pytest.raises(ExtractionError) as caught:
        extractor.extract(["hello", None, "world"])  # type: ignore[list-item]
    assert set(caught.value.failures) == {1}
    assert "must be a string" in caught.value.failures[1]


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_checksum_follows_the_weights(tiny: TinyModels, tmp_path: Path, kind: str) -> None:
    def checksum(models: TinyModels) -> str:
        return make(kind, getattr(models, kind)).specs()[0].attrs["weights_sha256"]

    same_a = checksum(tiny)  # built as `same_b` is, in another folder
    same_b = checksum(build_tiny_models(tmp_path / "b", WORDS, seed=0))
    other = checksum(build_tiny_models(tmp_path / "c", WORDS, seed=1))
    assert same_a == same_b != other


def test_tokenizer_checksum_follows_the_vocabulary(tiny: TinyModels, tmp_path: Path) -> None:
    a = tiny
    b = build_tiny_models(tmp_path / "b", [*WORDS, "extra"])
    sums = [make("bert", m.bert).specs()[0].attrs["tokenizer_sha256"] for m in (a, b)]
    assert sums[0] != sums[1]


def test_missing_model_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing does not exist"):
        make("mpnet", tmp_path / "missing").lengths(["hello"])


def test_a_text_encoder_needs_a_model() -> None:
    with pytest.raises(ConfigError, match="needs a model"):
        TextEncoderOptions()
