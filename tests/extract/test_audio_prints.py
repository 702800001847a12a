"""Audio prints (ser.extract.audio_prints): made at extraction into the store's manifest,
the same for the same samples in another container and folder layout, given to an older
store by its next extraction, kept by a resumed or repaired one."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from rich.console import Console

from ser.cache import FeatureStore
from ser.cache.manifest import AUDIO_PRINT
from ser.errors import StoreError
from ser.extract.run import ExtractConfig, extract_features
from tests.stores import damage_chunk

LOGMEL = ExtractConfig(features=("logmel",), progress=False)
EMOBOX_CODES = {"neu": "Neutral", "hap": "Happy", "exc": "Happy", "ang": "Angry", "sad": "Sad"}


def emobox_folder(root: Path, store: FeatureStore, out: Path, n: int = 12) -> Path:
    """EmoBox's `data/iemocap/` of the first `n` utterances of `store` (IEMOCAP's, read
    from `root`) that EmoBox's map labels: their audio rewritten as stereo FLAC under
    `downloads/` (another container and layout, the same samples), keys `iemocap-<id>`."""
    manifest, lines = store.manifest, []
    for row in range(len(manifest)):
        label, wav = str(manifest.column("label")[row]), str(manifest.column("wav")[row])
        if label not in EMOBOX_CODES or len(lines) == n:
            continue
        samples, rate = soundfile.read(root / wav, dtype="int16")  # [n] the stored PCM
        flac = Path("downloads/iemocap") / Path(wav).with_suffix(".flac")
        (out / flac).parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(out / flac, np.stack([samples, samples], axis=1), rate)  # [n, 2]
        key = f"iemocap-{manifest.column('utt_id')[row]}"
        lines.append({"key": key, "wav": flac.as_posix(), "emo": label, "length": 1.0})
    folder = out / "data" / "iemocap"
    folder.mkdir(parents=True)
    (folder / "iemocap.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (folder / "label_map.json").write_text(json.dumps(EMOBOX_CODES))
    return folder


@pytest.fixture(scope="module")
def iemocap_store(synthetic_corpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("prints") / "iemocap.zarr"
    extract_features(synthetic_corpus[0], path, LOGMEL)
    return path


def prints_by_id(path: Path) -> dict[str, str]:
    manifest = FeatureStore.open(path).manifest
    ids = manifest.column("utt_id").tolist()
    return dict(zip(ids, manifest.column(AUDIO_PRINT).tolist(), strict=True))


def test_the_same_samples_in_another_container_and_layout_have_the_same_print(
    synthetic_corpus, iemocap_store: Path, tmp_path: Path
) -> None:
    ours = prints_by_id(iemocap_store)
    assert all(ours.values()) and len(set(ours.values())) == len(ours)  # one per recording
    folder = emobox_folder(synthetic_corpus[0], FeatureStore.open(iemocap_store), tmp_path)
    extract_features(folder, tmp_path / "emobox.zarr", LOGMEL)
    theirs = prints_by_id(tmp_path / "emobox.zarr")
    assert len(theirs) == 12
    assert all(p == ours[key.removeprefix("iemocap-")] for key, p in theirs.items())


def copy_store(path: Path, tmp_path: Path) -> FeatureStore:
    shutil.copytree(path, tmp_path / path.name)
    return FeatureStore.open(tmp_path / path.name, "a")


def quiet() -> tuple[Console, io.StringIO]:
    said = io.StringIO()
    return Console(file=said, width=200), said


def test_an_older_store_gets_its_prints_at_its_next_extraction_and_nothing_else(
    synthetic_corpus, iemocap_store: Path, tmp_path: Path
) -> None:
    store = copy_store(iemocap_store, tmp_path)
    columns = {k: v for k, v in store.manifest.columns().items() if k != AUDIO_PRINT}
    store._backend.replace_manifest(columns, store.attrs)  # as a store made before prints
    console, said = quiet()
    report = extract_features(synthetic_corpus[0], store.path, LOGMEL, console)
    assert report.nothing_to_do and report.extracted == ()
    assert prints_by_id(store.path) == prints_by_id(iemocap_store)
    assert "audio prints: 174 of 174 utterances" in said.getvalue()
    console, said = quiet()
    extract_features(synthetic_corpus[0], store.path, LOGMEL, console)  # made once
    assert "audio prints" not in said.getvalue()


def test_a_later_extraction_keeps_the_prints_and_makes_none_again(
    synthetic_corpus, iemocap_store: Path, tmp_path: Path
) -> None:
    """Another feature set extracted into a store that has its prints (what a resumed
    extraction is: the prints are written before any feature set)."""
    store = copy_store(iemocap_store, tmp_path)
    other = ExtractConfig(features=("logmel",), progress=False, options={"logmel": {"n_mels": 40}})
    console, said = quiet()
    report = extract_features(synthetic_corpus[0], store.path, other, console)
    assert report.extracted and "audio prints" not in said.getvalue()
    assert prints_by_id(store.path) == prints_by_id(iemocap_store)


def test_audio_changed_since_the_store_was_made_is_refused_for_an_audio_set(
    corpus_copy: Path, iemocap_store: Path, tmp_path: Path
) -> None:
    # Another recording under an utterance's name: a set extracted now would come from it
    # while the store's other sets came from the recording before.
    store = copy_store(iemocap_store, tmp_path)
    wavs = sorted((corpus_copy / "Session1" / "sentences" / "wav").rglob("*.wav"))
    shutil.copy(wavs[4], wavs[0])
    changed = wavs[0].stem
    assert extract_features(corpus_copy, store.path, LOGMEL).nothing_to_do  # no audio read
    other = ExtractConfig(features=("logmel",), progress=False, options={"logmel": {"n_mels": 40}})
    with pytest.raises(StoreError, match=rf"the audio of 1 utterance\(s\) .* \({changed}\)"):
        extract_features(corpus_copy, store.path, other)
    assert "logmel40" not in FeatureStore.open(store.path).feature_sets()


@pytest.mark.slow
def test_repair_keeps_the_prints_and_makes_those_missing(
    corpus_copy: Path, iemocap_store: Path, tmp_path: Path
) -> None:
    """A damaged manifest is rebuilt from the corpus with the prints it still holds; an
    utterance whose audio was unreadable at extraction gets its print under --repair
    alone (a plain extraction prints a store once)."""
    store = copy_store(iemocap_store, tmp_path)
    prints = store.manifest.column(AUDIO_PRINT).tolist()
    store.add_derived_column(AUDIO_PRINT, ["", *prints[1:]])
    extract_features(corpus_copy, store.path, LOGMEL)
    assert FeatureStore.open(store.path).manifest.column(AUDIO_PRINT)[0] == ""
    damage_chunk(store, "manifest/label")
    console, said = quiet()
    repair = ExtractConfig(features=("logmel",), progress=False, repair=True)
    report = extract_features(corpus_copy, store.path, repair, console)
    assert any(line.startswith("the manifest, from the corpus") for line in report.repaired)
    assert "audio prints: 1 of 1 utterances" in said.getvalue()  # the others kept
    assert FeatureStore.open(store.path).manifest.column(AUDIO_PRINT).tolist() == prints
