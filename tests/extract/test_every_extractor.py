"""Every registered extractor kind (plugins' included: tests/registries.py) extracts a
few synthetic utterances with its small local stand-in (`Kind.tiny`: a tiny random model
for the kinds that load one) into a store, through the library call `ser extract`
makes: each set it declares reads back complete, at its declared level, width and dtype,
a row or more an utterance, with its provenance and fingerprint recorded; the same
extraction again is a no-op. A kind registered anywhere is in these tests' parameters;
none names one."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from ser.cache import FeatureStore
from ser.cache.fingerprint import REQUIRED, fingerprint, provenance
from ser.corpus.registry import KINDS as CORPUS_KINDS
from ser.corpus.registry import read_corpus
from ser.extract.registry import KINDS, build_extractor
from ser.extract.run import ExtractConfig, extract_features
from ser.synth.toolkit import TOOLKIT
from tests.registries import registered_extractor_kinds

UTTERANCES = 3


def small_corpus(folder: Path) -> Path:
    """A manifest corpus (`ser.corpus.kinds.manifest`) of a few utterances of the small
    synthetic IEMOCAP, their wavs and transcripts (what text kinds read), under `folder`."""
    iemocap = CORPUS_KINDS["iemocap"].synthetic
    assert iemocap is not None
    written = iemocap.write(folder / "iemocap", 0, TOOLKIT, iemocap.small)
    _, reading = read_corpus(written.corpus, "iemocap")
    manifest = folder / "corpus.csv"
    with manifest.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["utt_id", "wav", "label", "speaker", "transcript"])
        for u in reading.utterances[:UTTERANCES]:
            writer.writerow([u.utt_id, u.wav_path, u.label, u.speaker, u.transcript])
    return manifest


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_corpus(tmp_path_factory.mktemp("every-extractor"))


def extract(name: str, options: dict, corpus: Path, store: Path):  # type: ignore[no-untyped-def]
    """The kind's sets of `corpus` into `store`, in this process (no spawn to wait for)."""
    config = ExtractConfig(
        features=(name,), options={name: options}, device="cpu", processes=1, progress=False
    )
    return extract_features(corpus, store, config, console=Console(quiet=True))


@pytest.mark.parametrize("name", registered_extractor_kinds())
def test_every_kind_extracts_its_tiny_self_into_a_store_and_resumes(
    name: str, corpus: Path, tmp_path: Path
) -> None:
    options = KINDS[name].tiny_options(tmp_path / "tiny")
    declared = build_extractor(name, **options).specs()
    report = extract(name, options, corpus, tmp_path / "f.zarr")
    assert report.exit_code == 0 and not report.failures, report.failures
    assert report.extracted == tuple(spec.name for spec in declared)
    store = FeatureStore.open(tmp_path / "f.zarr")
    for spec in declared:
        info = store.info(spec.name)
        wanted = tuple(spec.attrs[k] for k in ("modality", "level", "dim", "dtype"))
        assert info.complete and (info.modality, info.level, info.dim, info.dtype) == wanted
        assert info.attrs["extractor"] == name and all(k in info.attrs for k in REQUIRED)
        assert info.fingerprint == fingerprint(provenance(info.attrs))
        data = store.read(spec.name)
        rows = np.diff(data.offsets)
        assert len(data) == UTTERANCES and data.data.shape == (rows.sum(), info.dim)
        assert data.data.dtype == np.dtype(info.dtype) and np.isfinite(data.data).all()
        assert (rows == 1).all() if info.level == "utterance" else (rows >= 1).all()
    again = extract(name, options, corpus, tmp_path / "f.zarr")
    assert again.nothing_to_do and again.exit_code == 0
