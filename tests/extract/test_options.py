"""What every kind's options do (`KindOptions`): name a set from its stem and attrs, and
give back the options that made a recorded set (`from_attrs`), for each built-in kind."""

from __future__ import annotations

import pytest

from ser.extract.logmel import LogmelOptions
from ser.extract.options import TextSource
from ser.extract.speech import SpeechOptions
from ser.extract.text_encoder import TextEncoderOptions


def test_sets_are_named_from_stem_and_attrs_alone() -> None:
    assert SpeechOptions.set_name("ours", {"layer": 9}) == "ours.L9"
    assert SpeechOptions.set_name("ours", {"layer": 9, "pool": "meanstd"}) == "ours.L9.meanstd"
    assert TextEncoderOptions.set_name("mpnet-base", {"layer": 12}) == "mpnet-base"
    asr = {"text_source": "asr", "transcripts": "asr-whisper-small"}
    assert TextEncoderOptions.set_name("mpnet-base", asr) == "mpnet-base@asr-whisper-small"
    assert LogmelOptions.set_name("x", {"n_mels": 80}) is None  # fixed names


@pytest.mark.parametrize(
    ("attrs", "name"),
    [
        ({"layer": 3, "n_layers": 12}, "m.L3"),
        ({"layer": 12, "pool": "mean"}, "m.mean"),
        ({"layer": 3, "n_layers": 12, "pool": "meanstd"}, "m.L3.meanstd"),
        ({"layer": 3, "n_layers": 12, "pool": "mean", "text_source": "asr", "transcripts": "a-w"},
         "m.L3.mean@a-w"),
    ],
)  # fmt: skip
def test_text_sets_name_their_layer_unless_it_is_the_last(attrs: dict, name: str) -> None:
    assert TextEncoderOptions.set_name("m", attrs) == name


def test_from_attrs_inverts_what_each_kind_records() -> None:
    hubert = {"extractor": "hubert", "model": "m", "layer": 12, "precision": "fp32", "dim": 8}
    assert SpeechOptions.from_attrs(hubert) == {"model": "m", "precision": "fp32", "layers": "12"}
    pooled = {**hubert, "pool": "meanstd"}
    assert SpeechOptions.from_attrs(pooled)["pool"] == "meanstd"
    attrs = {
        "model": "m",
        "layer": 3,
        "n_layers": 12,
        "max_tokens": 64,
        "text_source": "asr",
        "transcripts": "asr-w",
        "transcripts_fingerprint": "f",
        "asr_model": "w",
        "pool": "mean",
    }
    text = TextEncoderOptions.from_attrs(attrs)
    assert text["transcripts"] == TextSource("asr-w", (("asr_model", "w"), ("fingerprint", "f")))
    assert (text["layers"], text["pool"]) == ("3", "mean")
    assert TextEncoderOptions.from_attrs({"model": "m"})["transcripts"] is None
    logmel = {"sample_rate": 16000, "win_length": 480, "hop_length": 200, "n_mels": 40}
    assert LogmelOptions(**LogmelOptions.from_attrs(logmel)) == LogmelOptions(
        n_mels=40, win_ms=30.0, hop_ms=12.5
    )
