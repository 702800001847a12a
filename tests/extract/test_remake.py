"""A set's provenance and its store's corpus, back into the `ser extract` that made it:
the command `ser store verify` prints, and the config `ser store repair` runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ser.cache.fingerprint import identity
from ser.extract.registry import build_extractor
from ser.extract.remake import Corpus, command, corpus_of, remake

IEMOCAP = {"corpus": "iemocap", "corpus_root": "/data/IEMOCAP_full_release"}
CORPUS = Corpus("/data/IEMOCAP full", "iemocap", None, "4")


def made_again(kind: str, options: dict[str, Any], store: list[str] | None = None) -> list[str]:
    """Each set `options` make, remade from its attrs alone: the same set; its flags."""
    specs = build_extractor(kind, **options).specs()
    names = store if store is not None else [s.name for s in specs]
    found = []
    for spec in specs:
        made = remake(spec.name, spec.attrs, names)
        assert made is not None
        again = {s.name: s for s in build_extractor(kind, **made.options).specs()}
        assert identity(again[spec.name].attrs) == identity(spec.attrs)
        flags = made.flags()
        assert flags is not None
        found.append(" ".join(flags))
    return found


def test_a_store_says_its_corpus_and_class_set() -> None:
    assert corpus_of({**IEMOCAP, "classes": "5"}, ["neu"]).classes == "5"  # recorded
    assert corpus_of(IEMOCAP, ["neu", "hap", "exc", "sad", "ang"]).classes == "4"  # its labels
    assert corpus_of(IEMOCAP, ["neu", "fru"]).classes == "5"
    assert corpus_of(IEMOCAP, None).classes == "all"
    emobox = corpus_of({"corpus": "emobox", "corpus_root": "/e/savee", "audio_root": "/a"}, None)
    assert emobox.arguments() == ["/e/savee", "--corpus", "emobox", "--audio-root", "/a"]


def test_speech_sets_with_layers_pools_and_names(tiny_models: Any) -> None:
    hubert = str(tiny_models.hubert)
    (frames, pooled) = made_again("hubert", {"model": hubert, "layers": "1", "pool": "mean"})
    assert frames == f"--features hubert --hubert-model {hubert} --hubert-layers 1 --precision fp32"
    assert pooled == f"--features hubert --hubert-model {hubert} --pool mean --hubert-layers 1 " + (
        "--precision fp32"
    )
    # Only the pooled set in the store: its frames are not extracted anew by the repair.
    (alone,) = made_again(
        "hubert", {"model": hubert, "layers": "1", "pool": "mean", "pooled_only": True},
        store=["tiny-hubert.L1.mean"],
    )  # fmt: skip
    assert "--pool mean --hubert-layers 1 --pooled-only --precision fp32" in alone
    (named,) = made_again("hubert", {"model": hubert, "layers": "2", "name": "ours"})
    assert named.endswith("--hubert-layers 2 --name hubert=ours --precision fp32")


def test_text_sets_of_asr_transcripts(tiny_models: Any) -> None:
    spec = build_extractor("mpnet", model=str(tiny_models.mpnet)).specs()[0]
    asr = {"text_source": "asr", "transcripts": "asr-w", "transcripts_fingerprint": "f" * 64,
           "asr_model": "/m/w", "asr_max_new_tokens": 8}  # fmt: skip
    made = remake("tiny-mpnet@asr-w", {**spec.attrs, **asr}, [])
    assert made is not None and made.flags() == [
        "--features", "mpnet", "--mpnet-model", str(tiny_models.mpnet), "--mpnet-layers", "2",
        "--precision", "fp32", "--text-source", "asr", "--asr-model", "/m/w",
        "--asr-max-new-tokens", "8",
    ]  # fmt: skip
    config = made.config(CORPUS, repair=True)
    assert (config.text_source, config.asr_model, config.classes) == ("asr", "/m/w", "4")


def test_a_set_flags_cannot_make_is_repaired_by_store_repair(tmp_path: Path) -> None:
    """`ser extract` has no flag for log-mel's bands: 40 of them only `ser store repair`
    (which passes every option) makes again; 80 the plain command does."""
    store = tmp_path / "f.zarr"
    for n_mels, expected in ((80, "--features logmel --repair"), (40, None)):
        spec = build_extractor("logmel", n_mels=n_mels).specs()[0]
        printed = command(store, CORPUS, spec.name, spec.attrs, [spec.name])
        if expected is None:
            assert printed == f"ser store repair {store}"
        else:
            assert printed == (
                f"ser extract '/data/IEMOCAP full' --corpus iemocap --store {store} "
                f"--classes 4 {expected}"
            )


def test_imported_sets_are_imported_again(tmp_path: Path) -> None:
    attrs = {"extractor": "imported", "source": "w2v.npz", "modality": "audio", "level": "frame"}
    assert command(tmp_path / "f.h5", CORPUS, "w2v", attrs, ["w2v"]) == (
        f"ser store import {tmp_path / 'f.h5'} w2v.npz --name w2v --modality audio "
        "--level frame --overwrite"
    )


@pytest.mark.parametrize("root", [None, "/data/corpus"])
def test_store_repair_names_the_corpus_where_the_store_does_not(root: str | None) -> None:
    from ser.extract.remake import store_repair

    corpus = Corpus(root, None, None, "all")
    tail = "" if root else " CORPUS_ROOT"
    assert store_repair(Path("/s/f.zarr"), corpus) == f"ser store repair /s/f.zarr{tail}"
