"""`ser extract` writes each row into the store once, at its place (`ser.cache.scattered`),
in Zarr and HDF5 alike, with the bytes, offsets and receipt the staged shards' layout
gave, whatever the audio's container (MP3, Ogg and MP4 counted by decoding them); a
killed run goes on from the shards it recorded; utterances that failed or kept fewer
rows than predicted are compacted in place, one with more laid out anew."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from ser.cache import FeatureStore, scattered
from ser.cache import store as store_module
from ser.cache.receipt_file import read_receipt
from ser.cli import main
from ser.extract import audio_prints, decoded_lengths, row_counts, run
from ser.synth.corpus import SynthConfig, write_corpus
from ser.synth.encode import write_encoded
from tests.stores import damage_chunk

SETS = ["logmel80", "tiny-bert", "tiny-bert.mean"]
SETS += [f"tiny-hubert.L{n}{pool}" for n in (1, 2) for pool in ("", ".mean")]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("once") / "IEMOCAP_full_release"
    write_corpus(root, SynthConfig(dialogs_per_session=1, utterances_per_dialog=(4, 4), seed=5))
    return root


def extract(
    corpus: Path, store: Path, tiny_models, *more: str, quiet: bool = True, code: int = 0
) -> str:  # type: ignore[no-untyped-def]
    args = ["extract", str(corpus), "--store", str(store), "--features", "hubert,logmel,bert",
            "--hubert-model", str(tiny_models.hubert), "--hubert-layers", "1,2",
            "--pool", "mean", "--bert-model", str(tiny_models.bert), "--device", "cpu",
            "--precision", "fp32", "--shard-size", "8", *more]  # fmt: skip
    args += ["-q"] if quiet else []
    result = CliRunner().invoke(main, args)
    assert result.exit_code == code, result.output
    return result.output


def staged(monkeypatch: pytest.MonkeyPatch) -> None:
    """Today's other path: every set's shards staged, then laid out."""
    monkeypatch.setattr(FeatureStore, "scattered_writer", lambda self, name, counts: None)


def files(store: Path, sets: list[str] = SETS) -> dict[str, bytes]:
    """Every file of the store's sets' data arrays, by path inside the store (Zarr), or
    every chunk of them as HDF5 keeps it, its Fletcher-32 with it, by set and first row."""
    if store.is_dir():
        return {
            str(p.relative_to(store)): p.read_bytes()
            for name in sets
            for p in sorted((store / name / "data").rglob("*"))
            if p.is_file()
        }
    with h5py.File(store, "r") as f:
        data = {name: f[name]["data"] for name in sets}
        return {
            f"{name}/{start}": bytes(array.id.read_direct_chunk((start, 0))[1])
            for name, array in data.items()
            for start in range(0, array.shape[0], array.chunks[0])
        }


def same_stores(a: Path, b: Path, chunks: bool = True, sets: list[str] = SETS) -> None:
    """`chunks` False: the same rows, in chunks of other sizes."""
    left, right = FeatureStore.open(a), FeatureStore.open(b)
    if chunks:
        assert files(a, sets) == files(b, sets)
    for name in sets:
        assert np.array_equal(left.read(name).data, right.read(name).data), name
        assert left.info(name).attrs == right.info(name).attrs, name
        assert np.array_equal(left.offsets(name), right.offsets(name)), name
        assert left.failures(name) == right.failures(name), name
    receipts = [read_receipt(path) for path in (a, b)]
    assert receipts[0] is not None and receipts[0]["backup"] == receipts[1]["backup"]  # type: ignore[index]
    assert not Path(f"{a}.staging").exists()


@pytest.fixture(scope="module", params=[".zarr", ".h5"], ids=["zarr", "hdf5"])
def today(
    request: pytest.FixtureRequest,
    corpus: Path,
    tiny_models,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:  # type: ignore[no-untyped-def]
    """The store of each format as staged shards lay it out."""
    store = tmp_path_factory.mktemp("staged") / f"f{request.param}"
    with pytest.MonkeyPatch.context() as patch:
        staged(patch)
        extract(corpus, store, tiny_models)
    return store


def test_rows_are_placed_with_today_s_bytes(
    corpus: Path, tiny_models, today: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    placed: list[str] = []
    opened = FeatureStore.scattered_writer

    def counted(self, name, counts):  # type: ignore[no-untyped-def]
        writer = opened(self, name, counts)
        placed.append(name) if writer is not None else None
        return writer

    estimated: list[list[list[bool]]] = []
    peak = run.peak_bytes

    def peak_of(passes, shards, flags):  # type: ignore[no-untyped-def]
        estimated.append(flags)
        return peak(passes, shards, flags)

    monkeypatch.setattr(FeatureStore, "scattered_writer", counted)
    monkeypatch.setattr(run, "peak_bytes", peak_of)
    said = extract(corpus, tmp_path / today.name, tiny_models, quiet=False)
    assert sorted(placed) == sorted(SETS)
    # HDF5 writes a placed set's chunks as zeros up front: said, not a silent wait
    assert ("in the HDF5 file" in said) == (today.suffix == ".h5"), said
    # the disk estimate counts no staged copy of a placed set
    assert [flag for flags in estimated[0] for flag in flags] == [True] * len(SETS)
    same_stores(tmp_path / today.name, today)
    verified = CliRunner().invoke(main, ["store", "verify", str(tmp_path / today.name)])
    assert verified.exit_code == 0 and verified.output.startswith("ok: "), verified.output


def test_a_killed_run_goes_on_from_its_records(
    corpus: Path, tiny_models, today: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / today.name
    with monkeypatch.context() as patch:  # killed as it lays the first set out
        patch.setattr(store_module.FeatureStore, "_seal", _killed)
        assert CliRunner().invoke(main, _args(corpus, store, tiny_models)).exit_code != 0
    assert list(Path(f"{store}.staging").rglob("placed-*.json"))
    assert not list(Path(f"{store}.staging").rglob("shard-*"))  # no rows staged
    # every shard written, the staging at its peak: records only, no row beside the store
    kept = {p.name for p in Path(f"{store}.staging").rglob("*") if p.is_file()}
    assert kept == {"predicted.npy"} | {f"placed-{n}.json" for n in range(len(kept) - 1)}
    extract(corpus, store, tiny_models)
    same_stores(store, today)


def test_a_repair_writes_its_rows_in_place_with_the_clean_bytes(
    corpus: Path, tiny_models, today: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A damaged chunk of a frame set, repaired: records beside the store, no row (the
    staged repair wrote the rows as shards there, then copied them in), and the chunks,
    checksums and all, of the clean extraction, as the staged repair gave them."""
    store = tmp_path / today.name
    (shutil.copytree if today.is_dir() else shutil.copy2)(today, store)
    damage_chunk(FeatureStore.open(store), "tiny-hubert.L2/data", chunk=0)
    beside: list[str] = []
    real = FeatureStore.repair

    def seen(self: FeatureStore, name: str, damage: object) -> object:
        staging = Path(f"{self.path}.staging")
        beside.extend(p.suffix for p in staging.rglob("*") if p.is_file())
        return real(self, name, damage)  # type: ignore[arg-type]

    monkeypatch.setattr(FeatureStore, "repair", seen)
    extract(corpus, store, tiny_models, "--repair")
    assert beside and set(beside) == {".json"}  # records only, no row
    same_stores(store, today)
    assert FeatureStore.open(store).verify() == []


def missed(by: int):  # type: ignore[no-untyped-def]
    """Row counts predicted `by` rows off for the fourth utterance of every frame set."""
    wrong = row_counts.predicted_sets

    def off(extractor, specs, sources, lengths):  # type: ignore[no-untyped-def]
        found = wrong(extractor, specs, sources, lengths)
        counts = {name: rows.copy() for name, rows in found.items()}
        for spec in specs:
            counts[spec.name][3] += by * (spec.attrs["level"] == "frame")
        return counts

    return off


def test_an_utterance_with_more_rows_than_predicted_is_laid_out_anew(
    corpus: Path, tiny_models, today: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    sealed: list[bool] = []
    was = scattered.in_place
    monkeypatch.setattr(run, "predicted_sets", missed(-1))
    monkeypatch.setattr(scattered, "in_place", lambda *a: sealed.append(was(*a)) or sealed[-1])
    monkeypatch.setattr(scattered, "compact", _killed)  # rows that move toward the end
    extract(corpus, tmp_path / today.name, tiny_models)
    assert sealed.count(False) == 3 and sealed.count(True) == len(SETS) - 3  # the frame sets
    same_stores(tmp_path / today.name, today)


def test_failures_are_compacted_in_place_with_the_rows_laid_out_anew(
    corpus: Path, tiny_models, today: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """An utterance's audio NaN (it fails in every audio set) and a frame count predicted
    a row over: no set is written anew beside its rows, and each holds what the layout
    anew gives, in the chunks it was sized for."""
    broken = tmp_path / "corpus" / corpus.name
    shutil.copytree(corpus, broken)
    wav = sorted(broken.rglob("*_F001.wav"))[0]
    audio, rate = sf.read(wav, dtype="float32")
    audio[len(audio) // 2] = np.nan
    sf.write(wav, audio, rate, subtype="FLOAT")
    monkeypatch.setattr(run, "predicted_sets", missed(1))
    stores = [tmp_path / "anew" / today.name, tmp_path / today.name]
    with monkeypatch.context() as patch:
        patch.setattr(scattered, "compactable", lambda *a: False)
        extract(broken, stores[0], tiny_models, code=1)
    backend = type(FeatureStore.open(stores[0])._backend)
    monkeypatch.setattr(backend, "rechunk_data", _killed)
    extract(broken, stores[1], tiny_models, code=1)
    compacted = FeatureStore.open(stores[1])
    assert len(compacted.failures("logmel80")) == 1 and compacted.verify() == []
    same_stores(stores[1], stores[0], chunks=False)


def _args(corpus: Path, store: Path, tiny_models) -> list[str]:  # type: ignore[no-untyped-def]
    return ["extract", str(corpus), "--store", str(store), "--features", "hubert,logmel,bert",
            "--hubert-model", str(tiny_models.hubert), "--hubert-layers", "1,2",
            "--pool", "mean", "--bert-model", str(tiny_models.bert), "--device", "cpu",
            "--precision", "fp32", "--shard-size", "8", "-q"]  # fmt: skip


def _killed(*args: object) -> None:
    raise KeyboardInterrupt


def test_the_records_say_what_a_set_holds(
    corpus: Path, tiny_models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "f.zarr"
    monkeypatch.setattr(store_module.FeatureStore, "_seal", _killed)
    assert CliRunner().invoke(main, _args(corpus, store, tiny_models)).exit_code != 0
    info = FeatureStore.open(store).info("tiny-hubert.L1")
    counts = np.load(Path(f"{store}.staging") / "tiny-hubert.L1" / "predicted.npy")
    shards = -(-len(counts) // 8)
    assert (info.rows, info.complete, info.staged_shards) == (int(counts.sum()), False, shards)
    record = json.loads((Path(f"{store}.staging") / "tiny-hubert.L1" / "placed-0.json").read_text())
    assert set(record) == {"fingerprint", "placed", "spilled", "failures"}


# Audio whose header does not count its samples exactly (libsndfile's MP3 and Ogg Vorbis,
# AAC in MP4 as MELD ships it, which FFmpeg decodes): its lengths counted by decoding it,
# its sets are placed as a wav's are.
LOSSY = {"mp3": (22050, 2), "ogg": (44100, 1), "mp4": (48000, 2)}  # rate, channels
AUDIO_SETS = ["logmel80", "tiny-hubert.L1", "tiny-hubert.L1.mean"]


def lossy_corpus(folder: Path, suffix: str) -> list[str]:
    """A manifest of 8 utterances of noise, 0.3-1 s each, in `suffix`'s container (Ogg:
    libsndfile's Vorbis; the others FFmpeg's encoders), as `ser extract`'s arguments
    name it."""
    rng, lines = np.random.default_rng(3), ["utt_id,wav,label,speaker"]
    rate, channels = LOSSY[suffix]
    for i in range(8):
        samples = 0.1 * rng.standard_normal((int(rng.integers(3, 10)) * rate // 10, channels))
        path = folder / f"u{i}.{suffix}"
        if suffix == "ogg":
            sf.write(path, samples, rate, format="OGG", subtype="VORBIS")
        else:
            write_encoded(path, samples.astype(np.float32), rate)
        lines.append(f"u{i},{path.name},{['neu', 'hap', 'sad', 'ang'][i % 4]},s{i % 2}")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return [str(folder / "manifest.csv"), "--corpus", "manifest"]


@pytest.fixture(scope="module")
def lossy_corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    return {suffix: lossy_corpus(tmp_path_factory.mktemp(suffix), suffix) for suffix in LOSSY}


def extract_audio(corpus: list[str], store: Path, tiny_models, quiet: bool = True) -> str:  # type: ignore[no-untyped-def]
    args = ["extract", *corpus, "--store", str(store), "--features", "hubert,logmel",
            "--hubert-model", str(tiny_models.hubert), "--hubert-layers", "1",
            "--pool", "mean", "--device", "cpu", "--precision", "fp32", "--shard-size", "4",
            *(["-q"] if quiet else [])]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result.output


#: Each lossy format into a Zarr store, and MP3's into HDF5 too: how a set's counts are
#: known does not depend on the store's format, which the WAV tests above cover both of.
LOSSY_STORES = [(f, ".zarr") for f in LOSSY] + [("mp3", ".h5")]


@pytest.fixture(
    scope="module",
    params=LOSSY_STORES,
    ids=[f"{f}-{'zarr' if s == '.zarr' else 'hdf5'}" for f, s in LOSSY_STORES],
)
def lossy_today(
    request: pytest.FixtureRequest,
    lossy_corpora: dict[str, list[str]],
    tiny_models,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[list[str], Path]:  # type: ignore[no-untyped-def]
    """A lossy corpus and its store of each format as staged shards lay it out."""
    kind, suffix = request.param
    store = tmp_path_factory.mktemp(f"staged-{kind}") / f"f{suffix}"
    with pytest.MonkeyPatch.context() as patch:
        staged(patch)
        extract_audio(lossy_corpora[kind], store, tiny_models)
    return lossy_corpora[kind], store


def writers_watched(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str]]:
    """The sets given a writer placing their rows, and those given one staging them."""
    placed: list[str] = []
    staging: list[str] = []
    opened, staged_writer = FeatureStore.scattered_writer, FeatureStore.shard_writer

    def placing(self, name, counts):  # type: ignore[no-untyped-def]
        writer = opened(self, name, counts)
        placed.append(name) if writer is not None else None
        return writer

    def staged_by(self, name):  # type: ignore[no-untyped-def]
        staging.append(name)
        return staged_writer(self, name)

    monkeypatch.setattr(FeatureStore, "scattered_writer", placing)
    monkeypatch.setattr(FeatureStore, "shard_writer", staged_by)
    return placed, staging


def test_lossy_audio_is_placed_with_the_staged_bytes(
    lossy_today: tuple[list[str], Path],
    tiny_models,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    """No row staged nor counted in the disk estimate, the audio decoded for its prints
    alone (their lengths are the counts), and the bytes, offsets, failures and receipt
    of the staged layout."""
    corpus, today = lossy_today
    placed, staging = writers_watched(monkeypatch)
    counted: list[object] = []
    monkeypatch.setattr(decoded_lengths, "count_decoded", counted.append)
    estimated: list[list[list[bool]]] = []
    peak = run.peak_bytes
    monkeypatch.setattr(run, "peak_bytes", lambda *a: estimated.append(a[2]) or peak(*a))
    extract_audio(corpus, tmp_path / today.name, tiny_models)
    assert sorted(placed) == sorted(AUDIO_SETS) and staging == [] and counted == []
    assert [flag for flags in estimated[0] for flag in flags] == [True] * len(AUDIO_SETS)
    same_stores(tmp_path / today.name, today, sets=AUDIO_SETS)


def test_audio_its_prints_did_not_decode_is_counted_by_a_pass_of_its_own(
    lossy_corpora: dict[str, list[str]],
    tiny_models,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    """The prints give no length (as for audio that gave no print before): a pass decodes
    each file, telling how far it is, and the sets are placed all the same."""
    made = audio_prints.add_prints

    def printed_only(*args):  # type: ignore[no-untyped-def]
        made(*args)
        return {}

    monkeypatch.setattr(run, "add_prints", printed_only)
    placed, staging = writers_watched(monkeypatch)
    told: list[tuple[str, int, int]] = []

    @contextlib.contextmanager
    def shown(console, enabled):  # type: ignore[no-untyped-def]
        yield (lambda *said: told.append(said)) if enabled else None

    monkeypatch.setattr(decoded_lengths, "read_progress", shown)
    extract_audio(lossy_corpora["mp3"], tmp_path / "f.zarr", tiny_models, quiet=False)
    assert sorted(placed) == sorted(AUDIO_SETS) and staging == []
    assert told == [(decoded_lengths.AUDIO_LENGTHS, n, 8) for n in range(1, 9)]
