"""What every kind's options do (`KindOptions`): name a set from its stem and attrs, and
give back the options that made a recorded set (`from_attrs`), for each built-in kind."""

from __future__ import annotations

from ser.extract.hubert import HubertOptions
from ser.extract.logmel import LogmelOptions
from ser.extract.options import TextSource
from ser.extract.text_encoder import TextEncoderOptions


def test_sets_are_named_from_stem_and_attrs_alone() -> None:
    assert HubertOptions.set_name("ours", {"layer": 9}) == "ours.L9"
    assert TextEncoderOptions.set_name("mpnet-base", {}) == "mpnet-base"
    asr = {"text_source": "asr", "transcripts": "asr-whisper-small"}
    assert TextEncoderOptions.set_name("mpnet-base", asr) == "mpnet-base@asr-whisper-small"
    assert LogmelOptions.set_name("x", {"n_mels": 80}) is None  # fixed names


def test_from_attrs_inverts_what_each_kind_records() -> None:
    hubert = {"extractor": "hubert", "model": "m", "layer": 12, "precision": "fp32", "dim": 8}
    assert HubertOptions.from_attrs(hubert) == {"model": "m", "precision": "fp32", "layers": "12"}
    attrs = {
        "model": "m",
        "max_tokens": 64,
        "text_source": "asr",
        "transcripts": "asr-w",
        "transcripts_fingerprint": "f",
        "asr_model": "w",
    }
    text = TextEncoderOptions.from_attrs(attrs)
    assert text["transcripts"] == TextSource("asr-w", (("asr_model", "w"), ("fingerprint", "f")))
    assert TextEncoderOptions.from_attrs({"model": "m"})["transcripts"] is None
    logmel = {"sample_rate": 16000, "win_length": 480, "hop_length": 200, "n_mels": 40}
    assert LogmelOptions(**LogmelOptions.from_attrs(logmel)) == LogmelOptions(
        n_mels=40, win_ms=30.0, hop_ms=12.5
    )
