"""Every registered corpus kind (plugins' included: tests/registries.py) writes its small
synthetic corpus (`CorpusKind.synthetic`, with its `small` options), claims it by its
layout, reads it, summarises it (`ser corpus summary`) and makes a store that hands the
kind back, whose folds its default protocol cuts as `ser train` cuts them (counting
them is not enough: a protocol of 5 speaker folds counts 5 of 4 speakers, and cutting
them fails). A kind registered anywhere is in these tests' parameters; none names one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import ser
from ser.cache import FeatureStore, Manifest
from ser.cli import main
from ser.corpus.registry import KINDS, guess, read_corpus
from ser.synth.toolkit import TOOLKIT
from tests.registries import registered_corpus_kinds


@pytest.mark.parametrize("name", registered_corpus_kinds())
def test_every_kind_reads_and_summarises_its_synthetic_corpus(name: str, tmp_path: Path) -> None:
    kind = KINDS[name]
    assert kind.synthetic is not None, f"{name}: no synthetic writer (docs/dev/add-corpus.md)"
    written = kind.synthetic.write(tmp_path / "corpus", 0, TOOLKIT, kind.synthetic.small)
    assert guess(written.corpus) is kind  # its layout, claimed by no other kind
    found, reading = read_corpus(written.corpus, name)
    assert found is kind and 0 < len(reading.utterances) <= written.utterances
    speakers = {u.speaker for u in reading.utterances}
    assert 1 < len(speakers) <= written.speakers
    result = CliRunner().invoke(
        main, ["corpus", "summary", str(written.corpus), "--corpus", name, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["utterances"] == len(reading.utterances)
    manifest = Manifest.from_utterances(reading.utterances, reading.root)
    FeatureStore.create(tmp_path / "f.zarr", manifest, kind.attrs())
    assert FeatureStore.open(tmp_path / "f.zarr").corpus.kind is kind
    # the folds `ser train` cuts by default (protocol, class set, validation), cut
    folds = ser.folds(tmp_path / "f.zarr")
    assert folds and all(f.train and f.test for f in folds)
