"""The text kind on every architecture it takes (tiny random BERT, RoBERTa, MPNet,
DeBERTa-v2 and sentence-transformers packages, through `from_pretrained(folder)`): all
layers as HF's hidden states, names, pooled views, ASR-text sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from ser.extract.options import TextSource
from ser.extract.registry import build_extractor
from ser.extract.text_encoder import TextEncoderExtractor
from ser.synth.tiny import save_tiny_sentence_transformer, save_tiny_text

CPU = torch.device("cpu")
WORDS = ["hello", "world", "happy", "really", "i", "am"]
TEXTS = ["hello world", "", "I am really, really happy!", "zebra"]
ARCHITECTURES = ("bert", "roberta", "mpnet", "deberta-v2")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("text-encoders")
    made = {t: save_tiny_text(root / f"tiny-{t}", t, WORDS) for t in ARCHITECTURES}  # type: ignore[arg-type]
    for layout in ("", "0_Transformer"):
        package = root / (layout or "root") / f"st-{layout or 'root'}"
        made[f"st-{layout or 'root'}"] = save_tiny_sentence_transformer(
            package, WORDS, subfolder=layout
        )
    return made


def loaded(folder: Path, **options: Any) -> TextEncoderExtractor:
    extractor = build_extractor("text", model=str(folder), precision="fp32", **options)
    assert isinstance(extractor, TextEncoderExtractor)
    extractor.load(CPU)
    return extractor


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_layer_is_hfs_hidden_state(folders: dict[str, Path], architecture: str) -> None:
    folder = folders[architecture]
    extractor = loaded(folder, layers="all")
    stem = f"tiny-{architecture}"
    assert [s.name for s in extractor.specs()] == [f"{stem}.L0", f"{stem}.L1", stem]
    attrs = [s.attrs for s in extractor.specs()]
    assert [a["layer"] for a in attrs] == [0, 1, 2] and attrs[0]["model_type"] == architecture
    assert [a.get("n_layers") for a in attrs] == [2, 2, None]  # the last keeps the papers' keys
    model = AutoModel.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    for text, ours in zip(TEXTS, extractor.extract(TEXTS), strict=True):
        with torch.inference_mode():
            hidden = model(**tokenizer(text, return_tensors="pt"), output_hidden_states=True)
        for layer, name in enumerate(s.name for s in extractor.specs()):
            np.testing.assert_allclose(ours[name], hidden.hidden_states[layer][0], atol=1e-5)


def test_deberta_loads_without_a_pooler_argument(folders: dict[str, Path]) -> None:
    extractor = build_extractor("text", model=str(folders["deberta-v2"]))
    assert extractor.model_options() == {}  # type: ignore[attr-defined]
    bert = build_extractor("text", model=str(folders["bert"]))
    assert bert.model_options() == {"add_pooling_layer": False}  # type: ignore[attr-defined]


def test_pooled_views_are_over_all_token_rows(folders: dict[str, Path]) -> None:
    extractor = loaded(folders["bert"], layers="1,2", pool="mean,meanstd")
    names = [s.name for s in extractor.specs()]
    assert names == [
        "tiny-bert.L1", "tiny-bert.L1.mean", "tiny-bert.L1.meanstd",
        "tiny-bert", "tiny-bert.mean", "tiny-bert.meanstd",
    ]  # fmt: skip
    by_name = {s.name: s.attrs for s in extractor.specs()}
    assert by_name["tiny-bert.meanstd"]["level"] == "utterance"
    assert by_name["tiny-bert.meanstd"]["dim"] == 64 and by_name["tiny-bert.L1.mean"]["dim"] == 32
    assert (
        by_name["tiny-bert.mean"]["pool"] == "mean" and "n_layers" not in by_name["tiny-bert.mean"]
    )
    for out in extractor.extract(TEXTS):
        tokens = out["tiny-bert.L1"]
        np.testing.assert_allclose(out["tiny-bert.L1.mean"][0], tokens.mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(
            out["tiny-bert.L1.meanstd"][0, 32:], tokens.std(axis=0), rtol=1e-5
        )
    only = loaded(folders["bert"], layers="1,2", pool="mean", pooled_only=True)
    assert [s.name for s in only.specs()] == ["tiny-bert.L1.mean", "tiny-bert.mean"]
    assert list(only.extract(["hello"])[0]) == ["tiny-bert.L1.mean", "tiny-bert.mean"]


@pytest.mark.parametrize("layout", ["st-root", "st-0_Transformer"])
def test_a_sentence_transformers_package(folders: dict[str, Path], layout: str) -> None:
    package = folders[layout]
    inner = package / "0_Transformer" if layout.endswith("Transformer") else package
    extractor = loaded(package, pool="mean")
    assert [s.name for s in extractor.specs()] == [layout, f"{layout}.mean"]
    assert extractor.specs()[0].attrs["model"] == str(package)  # the package, as given
    assert extractor.source == str(inner)
    model = AutoModel.from_pretrained(inner).eval()
    tokenizer = AutoTokenizer.from_pretrained(inner)
    encoded = tokenizer(["hello world"], return_tensors="pt")
    with torch.inference_mode():
        tokens = model(**encoded).last_hidden_state[0]
    [out] = extractor.extract(["hello world"])
    # sentence-transformers' mean pooling (before its Normalize module)
    np.testing.assert_allclose(out[f"{layout}.mean"][0], tokens.mean(dim=0), atol=1e-6)


def test_asr_text_sets_keep_the_transcripts_last(folders: dict[str, Path]) -> None:
    source = TextSource("asr-w", (("asr_model", "w"), ("fingerprint", "f")))
    extractor = build_extractor(
        "text", model=str(folders["mpnet"]), layers="1-2", pool="mean", transcripts=source
    )
    names = [s.name for s in extractor.specs()]
    stems = ["tiny-mpnet.L1", "tiny-mpnet.L1.mean", "tiny-mpnet", "tiny-mpnet.mean"]
    assert names == [f"{stem}@asr-w" for stem in stems]
    assert all(
        s.attrs["transcripts"] == "asr-w" and s.attrs["asr_model"] == "w" for s in extractor.specs()
    )
