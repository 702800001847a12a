"""`hubert`, `mpnet` and `bert` (the papers' kinds, now the speech and text classes with a
default model) write sets whose attrs are today's, key for key and in order: stores made
before keep their fingerprints, and no set is extracted again after an upgrade. Options
off their defaults add keys (`pool`, `n_layers`); they never change these sets. An audio
set also names its decoders (`decoder`), which is no part of the fingerprint."""

from __future__ import annotations

import pytest
from transformers import AutoModel

from ser.cache.fingerprint import fingerprint, provenance
from ser.extract.base import weights_checksum
from ser.extract.registry import build_extractor
from ser.synth.tiny import TinyModels

HUBERT = {
    "extractor": "hubert", "modality": "audio", "level": "frame", "dim": 32,
    "dtype": "float16", "ser_version": None, "decoder": None, "frame_shift": 0.02,
    "sample_rate": 16000, "model": None, "model_type": "hubert", "weights_sha256": None,
    "n_layers": 2, "normalize": True, "feat_extract_norm": "group", "precision": "fp32",
    "transformers_version": None, "layer": 2,
}  # fmt: skip
TEXT = {
    "extractor": None, "modality": "text", "level": "token", "dim": 32, "dtype": "float16",
    "ser_version": None, "frame_shift": None, "sample_rate": None, "model": None,
    "model_type": None, "weights_sha256": None, "tokenizer_sha256": None, "layer": 2,
    "special_tokens": "kept", "max_tokens": 64, "truncation": "end", "precision": "fp32",
    "transformers_version": None,
}  # fmt: skip


def _pinned(attrs: dict, expected: dict) -> None:
    assert list(attrs) == list(expected)  # the keys, in the order they are written
    assert {k: v for k, v in attrs.items() if expected[k] is not None} == {
        k: v for k, v in expected.items() if v is not None
    }


def test_hubert_sets_keep_todays_attrs(tiny_models: TinyModels) -> None:
    [spec] = build_extractor("hubert", model=str(tiny_models.hubert), precision="fp32").specs()
    assert spec.name == "tiny-hubert.L2"
    _pinned(spec.attrs, HUBERT)
    assert spec.attrs["decoder"].startswith("soundfile ") and " / ffmpeg " in spec.attrs["decoder"]
    before = {k: v for k, v in spec.attrs.items() if k != "decoder"}  # a set made before
    assert fingerprint(provenance(spec.attrs)) == fingerprint(provenance(before))
    same = build_extractor("hubert", model=str(tiny_models.hubert), layers="2", pool="")
    assert (
        same.specs()[0].attrs
        == build_extractor("hubert", model=str(tiny_models.hubert)).specs()[0].attrs
    )


@pytest.mark.parametrize("kind", ["mpnet", "bert"])
def test_text_sets_keep_todays_attrs_and_checksum(tiny_models: TinyModels, kind: str) -> None:
    folder = getattr(tiny_models, kind)
    [spec] = build_extractor(kind, model=str(folder), precision="fp32").specs()
    assert spec.name == f"tiny-{kind}"
    _pinned(spec.attrs, {**TEXT, "extractor": kind, "model_type": kind})
    # the checksum of the encoder without its pooler, as it always was
    encoder = AutoModel.from_pretrained(folder, add_pooling_layer=False)
    assert spec.attrs["weights_sha256"] == weights_checksum(encoder)
    last = build_extractor(kind, model=str(folder), precision="fp32", layers="2")
    assert last.specs()[0].attrs == spec.attrs  # the last layer asked for by number


def test_layers_and_pools_add_sets_beside_the_papers_one(tiny_models: TinyModels) -> None:
    extractor = build_extractor("bert", model=str(tiny_models.bert), layers="all", pool="mean")
    [default] = build_extractor("bert", model=str(tiny_models.bert)).specs()
    specs = {s.name: s.attrs for s in extractor.specs()}
    assert specs["tiny-bert"] == default.attrs
    assert specs["tiny-bert.L1"] == {**default.attrs, "layer": 1, "n_layers": 2}
    assert specs["tiny-bert.mean"] == {**default.attrs, "level": "utterance", "pool": "mean"}
