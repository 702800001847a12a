"""The built-in kinds' options: checks, set names and the inverse from provenance."""

from __future__ import annotations

import pytest

from ser.errors import ConfigError
from ser.extract.options import (
    HubertOptions,
    LogmelOptions,
    TextEncoderOptions,
    TextSource,
    parse_layers,
)


def test_hubert_options_accept_ints_and_lists() -> None:
    assert HubertOptions(layers=12).layers == "12"  # type: ignore[arg-type]
    assert HubertOptions(layers=(6, 9)).layers == "6,9"  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="bad --layers 'six'"):
        HubertOptions(layers="six")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("12", (12,)),
        ("6,9,12", (6, 9, 12)),
        (" 6 , 9 ", (6, 9)),
        ("9,6,9", (9, 6)),
        ("all", tuple(range(13))),
        ("last", (12,)),
        ("ALL", tuple(range(13))),
        ("0", (0,)),
    ],
)
def test_parse_layers(spec: str, expected: tuple[int, ...]) -> None:
    assert parse_layers(spec, 12, "hubert-base") == expected


@pytest.mark.parametrize("spec", ["13", "6,9,24"])
def test_parse_layers_out_of_range_names_the_layer_count(spec: str) -> None:
    with pytest.raises(ConfigError, match="out of range: hubert-base has 12 transformer layers"):
        parse_layers(spec, 12, "hubert-base")


@pytest.mark.parametrize("spec", ["", "-1", "6;9", "first", "1.5"])
def test_parse_layers_rejects_bad_syntax(spec: str) -> None:
    with pytest.raises(ConfigError, match="bad --layers"):
        parse_layers(spec, 12, "m")


def test_sets_are_named_from_stem_and_attrs_alone() -> None:
    assert HubertOptions.set_name("ours", {"layer": 9}) == "ours.L9"
    assert TextEncoderOptions.set_name("mpnet-base", {}) == "mpnet-base"
    asr = {"text_source": "asr", "transcripts": "asr-whisper-small"}
    assert TextEncoderOptions.set_name("mpnet-base", asr) == "mpnet-base@asr-whisper-small"
    assert LogmelOptions.set_name("x", {"n_mels": 80}) is None  # fixed names


def test_from_attrs_inverts_what_each_kind_records() -> None:
    hubert = {"extractor": "hubert", "model": "m", "layer": 12, "precision": "fp32", "dim": 8}
    assert HubertOptions.from_attrs(hubert) == {"model": "m", "precision": "fp32", "layers": "12"}
    attrs = {"model": "m", "max_tokens": 64, "text_source": "asr", "transcripts": "asr-w",
             "transcripts_fingerprint": "f", "asr_model": "w"}  # fmt: skip
    text = TextEncoderOptions.from_attrs(attrs)
    assert text["transcripts"] == TextSource("asr-w", (("asr_model", "w"), ("fingerprint", "f")))
    assert TextEncoderOptions.from_attrs({"model": "m"})["transcripts"] is None
    logmel = {"sample_rate": 16000, "win_length": 480, "hop_length": 200, "n_mels": 40}
    assert LogmelOptions(**LogmelOptions.from_attrs(logmel)) == LogmelOptions(
        n_mels=40, win_ms=30.0, hop_ms=12.5
    )


def test_a_text_encoder_needs_a_model() -> None:
    with pytest.raises(ConfigError, match="needs a model"):
        TextEncoderOptions()
