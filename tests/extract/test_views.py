"""`ser extract --augment`: speed and noise views of each audio set, extracted once into the
store beside the clean set, as sets of their own (`ser.extract.views`)."""

from __future__ import annotations

import dataclasses
import functools
import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from ser.cache import FeatureStore
from ser.cache import shards as store_shards
from ser.cache.fingerprint import provenance
from ser.cache.scattered import ScatteredWriter
from ser.cli import main
from ser.corpus.audio import load_audio
from ser.errors import ConfigError
from ser.extract.remake import rebuild_command, remake, repair_command, store_corpus
from ser.extract.run import ExtractConfig, extract_features
from ser.extract.views import View, parse_augment, view_of_suffix
from ser.extract.views import viewed as viewed_sources
from ser.synth.corpus import SynthConfig, write_corpus

CLEAN = ("tiny-hubert.L2", "logmel80")
VIEWS = ("speed0.9", "speed1.1", "noise20db")
AUGMENT = ("speed=0.9,1.1", "noise=20")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus of a few utterances: a view is one more extraction of each."""
    root = tmp_path_factory.mktemp("views") / "IEMOCAP_full_release"
    write_corpus(root, SynthConfig(dialogs_per_session=1, utterances_per_dialog=(3, 3), seed=3))
    return root


def _config(tiny_models: Any, **changes: Any) -> ExtractConfig:
    config = ExtractConfig(
        features=("hubert", "logmel"),
        options={"hubert": {"model": str(tiny_models.hubert)}},
        device="cpu",
        shard_size=8,
        progress=False,
        augment=AUGMENT,
    )
    return dataclasses.replace(config, **changes)


@pytest.fixture(scope="module")
def viewed(corpus: Path, tiny_models: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("viewed") / "f.zarr"
    report = extract_features(corpus, store, _config(tiny_models))
    assert report.exit_code == 0, report.failures
    return store


def _bytes(store: Path) -> dict[str, tuple[bytes, bytes]]:
    opened = FeatureStore.open(store)
    found = {}
    for name in opened.feature_sets():
        data = opened.read(name)
        found[name] = (data.data.tobytes(), data.offsets.tobytes())
    return found


def test_each_audio_set_gets_a_set_per_view_with_its_view_in_its_attrs(viewed: Path) -> None:
    store = FeatureStore.open(viewed)
    assert sorted(store.feature_sets()) == sorted(
        [*CLEAN, *(f"{clean}.{view}" for clean in CLEAN for view in VIEWS)]
    )
    for clean in CLEAN:
        attrs = provenance(store.info(clean).attrs)
        rows = {}
        for view, spec in zip(VIEWS, ("speed=0.9", "speed=1.1", "noise=20"), strict=True):
            info = store.info(f"{clean}.{view}")
            source = store.info(clean).fingerprint  # the clean set's: what the view is made of
            added = {"view_of": clean, "view": spec, "view_of_fingerprint": source}
            assert provenance(info.attrs) == {**attrs, **added}
            assert info.fingerprint != store.info(clean).fingerprint
            rows[view] = info.rows
        # Speed changes duration: 0.9 plays slower (more frames), 1.1 faster (fewer).
        assert rows["speed0.9"] > store.info(clean).rows > rows["speed1.1"]
        plain, noisy = store.read(clean), store.read(f"{clean}.noise20db")
        np.testing.assert_array_equal(noisy.offsets, plain.offsets)
        assert not np.array_equal(noisy.data, plain.data)


def test_again_is_a_no_op_and_a_fresh_store_gets_the_same_bytes(
    corpus: Path, viewed: Path, tiny_models: Any, tmp_path: Path
) -> None:
    assert extract_features(corpus, viewed, _config(tiny_models)).nothing_to_do
    extract_features(corpus, tmp_path / "again.zarr", _config(tiny_models))
    assert _bytes(tmp_path / "again.zarr") == _bytes(viewed)
    # What a view's batches travel to processes and dask workers with gives the same audio.
    wav = max(corpus.rglob("*.wav"), key=lambda p: p.stat().st_size)  # not a silent one
    (source,) = viewed_sources([wav], [wav.stem], View("noise", 20.0))
    assert source is not None
    travelled = pickle.loads(pickle.dumps(source))
    assert travelled == source
    audio, clean = travelled.load(16_000), load_audio(wav, 16_000)
    assert audio.tobytes() == source.load(16_000).tobytes()  # the same noise, drawn again
    assert audio.shape == clean.shape and not np.array_equal(audio, clean)


def test_without_augment_the_sets_are_the_clean_ones_with_their_bytes(
    corpus: Path, viewed: Path, tiny_models: Any, tmp_path: Path
) -> None:
    extract_features(corpus, tmp_path / "clean.zarr", _config(tiny_models, augment=()))
    clean = _bytes(tmp_path / "clean.zarr")
    assert sorted(clean) == sorted(CLEAN)
    assert clean == {name: _bytes(viewed)[name] for name in CLEAN}


def test_noise_depends_on_the_utterance_and_the_snr_alone() -> None:
    wave = np.sin(np.linspace(0, 200, 16000)).astype(np.float32)
    noise = View("noise", 20.0)
    first = noise.apply(wave, "Ses01F_impro01_F000", 16000)
    View("noise", 20.0).apply(wave, "another", 16000)  # in between: no shared generator
    assert first.tobytes() == noise.apply(wave, "Ses01F_impro01_F000", 16000).tobytes()
    assert first.tobytes() != noise.apply(wave, "Ses01F_impro01_F001", 16000).tobytes()
    snr = 10 * np.log10(np.mean(wave.astype(np.float64) ** 2) / np.mean((first - wave) ** 2.0))
    assert abs(snr - 20.0) < 0.5
    assert len(View("speed", 1.1).apply(wave, "u", 16000)) == round(16000 / 1.1)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["speed=1"], "--augment 'speed=1': a speed factor is over 0.5 and at most 2, not 1"),
        (["speed=0.5"], "--augment 'speed=0.5': a speed factor is over 0.5"),
        (["speed=2.5"], "--augment 'speed=2.5': a speed factor is over 0.5"),
        (["speed=nan"], "--augment 'speed=nan': a speed factor must be a finite number"),
        (["noise=inf"], "--augment 'noise=inf': an SNR in dB must be a finite number"),
        (["noise=-6"], "--augment 'noise=-6': noise is an SNR in dB from -5 to 60"),
        (["noise=60.5"], "--augment 'noise=60.5': noise is an SNR in dB from -5 to 60"),
        (["noise=loud"], "--augment 'noise=loud': 'loud' is not a number"),
        (["pitch=2"], "--augment 'pitch=2': give speed=FACTOR[,FACTOR...] or noise=SNR_DB"),
        (["noise="], "--augment 'noise=': give speed=FACTOR"),
        (["noise=20", "noise=5,20"], "--augment 'noise=5,20': noise=20 is given twice"),
    ],
)
def test_bad_values_are_one_line_naming_the_option_and_value(
    values: list[str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace("[", r"\[").replace(".", r"\.")):
        parse_augment(values)
    args = ["extract", str(tmp_path), "--store", str(tmp_path / "f.zarr"), "--features", "logmel"]
    result = CliRunner().invoke(main, [*args, *(f"--augment={v}" for v in values)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {message}")
    assert len(result.output.splitlines()) == 1


def test_views_are_named_as_the_contract_says() -> None:
    views = parse_augment(["speed=0.9,1.10", "noise=20.0,2.5,-5"])
    assert [v.suffix for v in views] == [
        "speed0.9", "speed1.1", "noise20db", "noise2.5db", "noise-5db",
    ]  # fmt: skip
    assert [v.spec for v in views] == [
        "speed=0.9",
        "speed=1.1",
        "noise=20",
        "noise=2.5",
        "noise=-5",
    ]
    assert parse_augment([]) == ()


def test_text_sets_get_no_views_and_the_command_says_so(
    corpus: Path, tiny_models: Any, tmp_path: Path
) -> None:
    store = tmp_path / "f.zarr"
    args = ["extract", str(corpus), "--store", str(store), "--features", "logmel,mpnet",
            "--mpnet-model", str(tiny_models.mpnet), "--augment", "noise=20", "-q"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "note: mpnet: text sets get no views: --augment changes audio only" in result.output
    assert sorted(FeatureStore.open(store).feature_sets()) == [
        "logmel80", "logmel80.noise20db", "tiny-mpnet",
    ]  # fmt: skip


def test_store_info_says_which_set_each_view_is_of(viewed: Path) -> None:
    shown = CliRunner().invoke(main, ["store", "info", str(viewed)], terminal_width=200)
    assert "tiny-hubert.L2.speed0.9: view of tiny-hubert.L2 (speed=0.9)" in shown.output
    assert "logmel80.noise20db: view of logmel80 (noise=20)" in shown.output
    as_json = CliRunner().invoke(main, ["store", "info", str(viewed), "--json"]).output
    sets = json.loads(as_json)["feature_sets"]
    assert (sets["logmel80.speed1.1"]["view_of"], sets["logmel80.speed1.1"]["view"]) == (
        "logmel80", "speed=1.1",
    )  # fmt: skip
    assert "view_of" not in sets["logmel80"]


def test_a_view_set_is_repaired_and_rebuilt_with_its_augment(
    corpus: Path, viewed: Path, tiny_models: Any, tmp_path: Path
) -> None:
    store = FeatureStore.open(viewed)
    name = "tiny-hubert.L2.speed0.9"
    repair = repair_command(store, name)
    assert "--features hubert" in repair and repair.endswith("--augment speed=0.9 --repair")
    rebuild = rebuild_command(store, "logmel80.noise20db")
    assert rebuild is not None and "--features logmel" in rebuild
    assert rebuild.endswith("--augment noise=20 --overwrite")
    # The remade extraction makes the set again, resumed in a store where it is gone.
    copy = tmp_path / "copy.zarr"
    shutil.copytree(viewed, copy)
    FeatureStore.open(copy, "a").delete_feature_set(name)
    made = remake(name, store.recorded_attrs(name) or {}, store.feature_sets())
    assert made is not None and made.augment == ("speed=0.9",)
    again = made.config(store_corpus(store), progress=False, shard_size=8, device="cpu")
    report = extract_features(corpus, copy, again)
    assert report.extracted == (name,)
    assert _bytes(copy)[name] == _bytes(viewed)[name]


def test_a_view_stopped_part_way_resumes_to_the_same_bytes(
    corpus: Path, viewed: Path, tiny_models: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, name = tmp_path / "f.zarr", "tiny-hubert.L2.speed1.1"
    config = _config(tiny_models, features=("hubert",), options={"hubert": {
        "model": str(tiny_models.hubert)}}, augment=("speed=1.1",))  # fmt: skip
    written: list[int] = []

    def stopping(self: Any, write: Any, *args: Any, **kwargs: Any) -> None:
        if name in str(self.directory):  # the view's second shard of two: stopped
            if written:
                raise RuntimeError("stopped")
            written.append(args[0])
        write(self, *args, **kwargs)

    for kind in (store_shards.ShardWriter, ScatteredWriter):  # staged, or placed in the store
        monkeypatch.setattr(kind, "write", functools.partialmethod(stopping, kind.write))
    with pytest.raises(RuntimeError, match="stopped"):
        extract_features(corpus, store, config)
    monkeypatch.undo()
    assert set(FeatureStore.open(store).done_shards(name)) == set(written)  # one of two
    report = extract_features(corpus, store, config)
    assert report.extracted == (name,)
    assert _bytes(store)[name] == _bytes(viewed)[name]


def test_a_view_set_s_suffix_names_its_view_back() -> None:
    views = parse_augment(["speed=0.9,1.1", "noise=20", "noise=7.5"])
    assert [view_of_suffix(v.suffix) for v in views] == list(views)
    assert view_of_suffix("L3") is None and view_of_suffix("mean") is None


def test_a_view_written_before_views_recorded_their_source_resumes_as_it_was(
    corpus: Path, viewed: Path, tiny_models: Any, tmp_path: Path
) -> None:
    """`view_of_fingerprint` is no part of a view's identity: an older store's views are
    found and kept by the same command, and verify checks them by the attrs they repeat."""
    copy = tmp_path / "old.zarr"
    shutil.copytree(viewed, copy)
    store = FeatureStore.open(copy, "a")
    for name in store.feature_sets():
        attrs = store.info(name).attrs
        older = {k: v for k, v in attrs.items() if k != "view_of_fingerprint"}
        store._backend.set_group_attrs(name, older)
    assert extract_features(corpus, copy, _config(tiny_models)).nothing_to_do
    assert FeatureStore.open(copy).verify_report().stale == {}
