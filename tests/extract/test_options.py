"""What every kind's options do (`KindOptions`): name a set from its stem and attrs, and
give back the options that made a recorded set (`from_attrs`), for each built-in kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ser.errors import ConfigError
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


def test_the_stored_dtype_is_chosen_recorded_and_made_again(tiny_models: Any) -> None:
    from ser.cache.fingerprint import fingerprint, provenance
    from ser.extract.registry import build_extractor
    from ser.extract.remake import remake

    def spec(kind: str, **options: Any) -> Any:
        return build_extractor(kind, **options).specs()[0]

    hubert = str(tiny_models.hubert)
    half, whole = (spec("hubert", model=hubert, store_dtype=d) for d in (None, "float32"))
    assert (half.attrs["dtype"], whole.attrs["dtype"]) == ("float16", "float32")
    # float16 given is the default: the same set, the same fingerprint
    given = spec("hubert", model=hubert, store_dtype="float16")
    assert fingerprint(provenance(given.attrs)) == fingerprint(provenance(half.attrs))
    assert fingerprint(provenance(whole.attrs)) != fingerprint(provenance(half.attrs))
    assert spec("logmel", store_dtype="float32").attrs["dtype"] == "float32"
    made = remake(whole.name, whole.attrs, [whole.name])
    assert made is not None and "--store-dtype float32" in " ".join(made.flags() or [])
    default = remake(half.name, half.attrs, [half.name])
    assert default is not None and "--store-dtype" not in " ".join(default.flags() or [])
    with pytest.raises(ConfigError, match="--store-dtype 'bfloat16': choose float16 or float32"):
        spec("logmel", store_dtype="bfloat16")


def test_extract_stores_float32_rows_when_asked(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ser.cache import FeatureStore
    from ser.cli import main
    from ser.synth.corpus import SynthConfig, write_corpus

    root = tmp_path / "IEMOCAP_full_release"
    write_corpus(root, SynthConfig(dialogs_per_session=1, utterances_per_dialog=(3, 3), seed=3))
    store = tmp_path / "f.zarr"
    args = ["extract", str(root), "--store", str(store), "--quiet", "--features", "logmel",
            "--store-dtype", "float32"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "float32" in result.output  # the summary's dtype column
    rows = FeatureStore.open(store).read("logmel80").data[:]
    assert rows.dtype == np.float32
    assert np.any(rows != rows.astype(np.float16).astype(np.float32))  # not float16's values
