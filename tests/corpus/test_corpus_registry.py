"""The corpus registry: kinds guessed from a layout (IEMOCAP when none matches, an error
listing the candidates when several do), a store's kind, the class sets runs train on."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ser.corpus import registry
from ser.errors import ConfigError, CorpusError


def test_guess(
    synthetic_corpus: Any, crema_d_corpus: Any, ravdess_corpus: Any, tmp_path: Path
) -> None:
    assert registry.guess(synthetic_corpus[0]).name == "iemocap"
    assert registry.guess(crema_d_corpus.root).name == "crema-d"
    assert registry.guess(ravdess_corpus.root).name == "ravdess"
    assert registry.guess(tmp_path).name == "iemocap"  # its reader says what is missing
    (tmp_path / "m.csv").write_text("utt_id,wav,label,speaker\n")
    assert registry.guess(tmp_path / "m.csv").name == "manifest"
    both = tmp_path / "both"
    shutil.copytree(ravdess_corpus.root, both)
    (both / "AudioWAV").mkdir()
    with pytest.raises(CorpusError, match=r"several corpora: crema-d .*, ravdess .*--corpus"):
        registry.guess(both)
    kind, reading = registry.read_corpus(both, "ravdess")
    assert kind.name == "ravdess" and len(reading.utterances) == len(ravdess_corpus.files)


def test_iemocap_reads_as_its_kind_module_does(synthetic_corpus: Any) -> None:
    from ser.corpus.kinds import iemocap

    root, _ = synthetic_corpus
    kind, reading = registry.read_corpus(root, classes="4")
    assert kind.name == "iemocap" and reading == iemocap.read(root, "4")
    assert kind.summarize(reading, "4")["per_session"]


def test_store_kind_and_label_sets() -> None:
    assert registry.store_kind({}).name == "iemocap"  # stores made before
    assert registry.store_kind({"corpus": "ravdess", "corpus_layout": 1}).name == "ravdess"
    assert registry.KINDS["crema-d"].attrs() == {"corpus": "crema-d", "corpus_layout": 1}
    with pytest.raises(ConfigError, match="IEMOCAP does not train on class set 'all'"):
        registry.KINDS["iemocap"].trained_set("all")
    assert registry.KINDS["ravdess"].trained_set("8").classes[1] == "cal"
    found = registry.KINDS["manifest"].trained_set("all", ["joy", "neu", "joy"])
    assert found.classes == ("joy", "neu")
    with pytest.raises(ConfigError, match="unknown corpus kind 'msp'"):
        registry.corpus_kind("msp")
