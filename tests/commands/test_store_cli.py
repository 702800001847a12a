"""`ser store info|verify|repair|init|import` through click's runner (the damage a
store can take and its repair: tests/faults/test_store_faults.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from ser.cache import FeatureStore, Manifest, backend
from ser.cache.verify import utterances_in
from ser.cli import main
from ser.runtime import progress
from ser.runtime.units import human_bytes
from tests.stores import EXAMPLE_ATTRS, damage_chunk, drop_recorded_checksums, example_columns, fill

IDS = [f"Ses01F_impro01_{g}{i:03d}" for i in range(4) for g in "FM"]


def ser(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(params=[".zarr", ".h5"], ids=["zarr", "hdf5"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FeatureStore:
    """A store with one complete frame-level set (two failures) and one in progress."""
    fs = FeatureStore.create(
        tmp_path / f"features{request.param}", Manifest.from_columns(example_columns(IDS))
    )
    fill(fs, "hubert.L3", failures={1: "audio missing", 6: "too short"})
    fs.begin_feature_set("mpnet", {**EXAMPLE_ATTRS, "extractor": "mpnet", "level": "token"})
    return fs


def test_info_json_shape(store: FeatureStore) -> None:
    result = ser("store", "info", store.path, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == {"utterances", "feature_sets"} and out["utterances"] == 8
    assert set(out["feature_sets"]) == {"hubert.L3", "mpnet"}
    keys = {"level", "rows", "dim", "dtype", "bytes", "fingerprint", "complete", "failures"}
    keys.add("precision")  # null: the set records none
    hubert = out["feature_sets"]["hubert.L3"]
    assert set(hubert) == keys
    info = store.info("hubert.L3")
    assert hubert == {
        "level": "frame",
        "rows": info.rows,
        "dim": 6,
        "dtype": "float16",
        "bytes": info.bytes,
        "fingerprint": info.fingerprint,
        "complete": True,
        "failures": 2,
        "precision": None,
    }
    assert out["feature_sets"]["mpnet"]["complete"] is False


def test_info_table(store: FeatureStore) -> None:
    result = ser("store", "info", store.path)
    assert result.exit_code == 0, result.output
    assert "hubert.L3" in result.stdout and "8 utterances" in result.stdout
    assert store.info("hubert.L3").fingerprint[:12] in result.stdout
    assert "incomplete (0 shards staged)" in result.stdout


def test_info_sizes_are_binary_units_as_extract_prints_them(store: FeatureStore) -> None:
    fill(store, "wide", attrs={**EXAMPLE_ATTRS, "dim": 64})  # random floats: kBs on disk
    size = store.info("wide").bytes
    assert size > 1024  # where a decimal "KB" and a binary "KiB" differ
    result = ser("store", "info", store.path)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "wide" in line)
    assert human_bytes(size) in row and " KB" not in row


def test_verify_reports_incomplete_and_exits_1(store: FeatureStore) -> None:
    result = ser("store", "verify", store.path)
    assert result.exit_code == 1
    assert "mpnet: incomplete" in result.stdout
    # Resumed by the extraction that began it (the store records no corpus root).
    assert f"repair mpnet: ser extract CORPUS_ROOT --store {store.path} " in result.stdout


def test_verify_json_checksums_match_across_backends(tmp_path: Path) -> None:
    digests = []
    for suffix in (".zarr", ".h5"):
        fs = FeatureStore.create(
            tmp_path / f"s{suffix}", Manifest.from_columns(example_columns(IDS))
        )
        fill(fs, "hubert.L3", failures={})
        result = ser("store", "verify", fs.path, "--json")
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout)
        assert out["healthy"] is True and out["problems"] == []
        assert set(out["feature_sets"]) == {"hubert.L3"}
        digests.append(out["feature_sets"]["hubert.L3"]["checksum"])
        assert digests[-1] == fs.checksum("hubert.L3")
    assert digests[0] == digests[1]
    assert "all healthy" in ser("store", "verify", tmp_path / "s.h5").stdout


def test_verify_json_unhealthy(store: FeatureStore) -> None:
    result = ser("store", "verify", store.path, "--json")
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["healthy"] is False and any("mpnet" in p for p in out["problems"])
    mpnet = out["feature_sets"]["mpnet"]
    assert (mpnet["checksum"], mpnet["recorded_checksum"]) == (None, None)
    assert mpnet["repair"].startswith("ser extract CORPUS_ROOT --store ")  # resumes it
    hubert = out["feature_sets"]["hubert.L3"]
    assert len(hubert["checksum"]) == 64 and hubert["recorded_checksum"] == hubert["checksum"]


@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_verify_names_a_damaged_chunk_and_its_repair(tmp_path: Path, suffix: str) -> None:
    """Finite garbage over a chunk's bytes: not "all healthy" (what it said before
    checksums), but the rows, their utterances and the command that re-extracts them."""
    fs = FeatureStore.create(tmp_path / f"s{suffix}", Manifest.from_columns(example_columns(IDS)))
    fill(fs, "hubert.L3", failures={})
    offsets = fs.read("hubert.L3").offsets
    damage_chunk(fs, "hubert.L3/data")
    result = ser("store", "verify", fs.path)
    assert result.exit_code == 1, result.output
    rows = int(offsets[-1])
    held = [IDS[i] for i in sorted(utterances_in(offsets, [(0, rows)]))]
    assert (
        f"hubert.L3: rows 0-{rows - 1} fail their chunk checksum (8 utterances: " in result.stdout
    )
    assert held[0] in result.stdout and "all healthy" not in result.stdout
    # The store records no corpus: the rest is what made the set (named otherwise than its
    # model's id, with the class set its labels hold).
    command = (
        f"ser extract CORPUS_ROOT --store {fs.path} --classes 4 --features hubert "
        "--hubert-model tiny-hubert --hubert-layers 3 --name hubert=hubert --repair"
    )
    assert f"repair hubert.L3: {command}" in result.stdout
    out = json.loads(ser("store", "verify", fs.path, "--json").stdout)
    assert out["healthy"] is False and out["feature_sets"]["hubert.L3"]["checksum"] is None
    assert command in out["feature_sets"]["hubert.L3"]["repair"]


@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_verify_store_written_before_checksums(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend, "CHUNK_CHECKSUMS", False)
    fs = FeatureStore.create(tmp_path / f"s{suffix}", Manifest.from_columns(example_columns(IDS)))
    fill(fs, "hubert.L3", failures={})
    drop_recorded_checksums(fs)
    monkeypatch.setattr(backend, "CHUNK_CHECKSUMS", True)
    result = ser("store", "verify", fs.path)
    assert result.exit_code == 0, result.output
    assert f"ok: {fs.path}: 1 feature sets, all healthy" in result.stdout
    assert "note: no recorded checksum for hubert.L3 (written before" in result.stdout
    out = json.loads(ser("store", "verify", fs.path, "--json").stdout)
    assert out["feature_sets"]["hubert.L3"]["recorded_checksum"] is None


@pytest.mark.parametrize("command", ["info", "verify"])
def test_bad_path_is_a_clean_error(tmp_path: Path, command: str) -> None:
    result = ser("store", command, tmp_path / "nothing.zarr")
    assert result.exit_code == 2
    assert "error:" in result.stderr and "no feature store here" in result.stderr
    assert "Traceback" not in result.output
    result = ser("store", command, tmp_path / "features.csv")
    assert result.exit_code == 2 and "must end in .zarr" in result.stderr


@pytest.mark.slow
def test_init_from_synthetic_corpus(
    synthetic_corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "SHORT", 0.0)  # its passes said however short
    root, truth = synthetic_corpus
    path = tmp_path / "features.zarr"
    result = ser("store", "init", path, root)
    assert result.exit_code == 0, result.output
    assert f"{len(truth.utterances)} utterances" in result.stdout
    fs = FeatureStore.open(path)
    assert fs.manifest.utt_ids.tolist() == [u.utt_id for u in truth.utterances]
    assert fs.manifest.column("transcript").tolist() == [u.transcript for u in truth.utterances]
    wavs = fs.manifest.column("wav").tolist()
    assert all(not Path(w).is_absolute() and (root / w).is_file() for w in wavs if w)
    assert fs.feature_sets() == [] and fs.attrs["classes"] == "all"
    n = len(truth.utterances)  # each one's audio print, as `ser extract` makes them
    assert f"audio prints: {n} of {n} utterances" in result.stderr
    # what takes minutes on a large corpus is said as it goes: the corpus read, the prints
    assert f"reading the corpus at {root}" in result.stderr
    assert f"audio prints: {n}/{n} utterances  " in result.stderr  # a plain line, no terminal
    assert all(fs.manifest.column("audio_print"))
    again = ser("store", "init", path, root)
    assert again.exit_code == 0 and "exists already" in again.stdout
    assert "audio prints" not in again.stderr  # made once
    four = ser("store", "init", tmp_path / "four.h5", root, "--classes", "4")
    assert four.exit_code == 0, four.output
    assert set(FeatureStore.open(tmp_path / "four.h5").manifest.column("label")) <= {
        "neu",
        "hap",
        "exc",
        "sad",
        "ang",
    }
    other = ser("store", "init", path, root, "--classes", "4")
    assert other.exit_code == 2 and "another manifest" in other.stderr


def test_init_in_a_log_says_how_far_its_corpus_read_is_and_nothing_with_quiet(
    crema_d_corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Done / total and the rate of the read's audio headers, as plain lines (stderr is no
    terminal here): what a read of 150,000 utterances says for its 9 s of CPU."""
    monkeypatch.setattr(progress, "SHORT", 0.0)  # a read however short is said
    result = ser("store", "init", tmp_path / "f.zarr", crema_d_corpus.root)
    assert result.exit_code == 0, result.output
    n = len(FeatureStore.open(tmp_path / "f.zarr").manifest)
    last = rf"^audio headers: {n}/{n} utterances  [0-9.]+ utt/s  elapsed [0-9:]+  eta 0:00$"
    assert re.search(last, result.stderr, re.MULTILINE), result.stderr
    quiet = ser("store", "init", tmp_path / "q.zarr", crema_d_corpus.root, "-q")
    assert quiet.exit_code == 0, quiet.output
    assert "audio headers" not in quiet.stderr


def test_init_bad_corpus(tmp_path: Path) -> None:
    result = ser("store", "init", tmp_path / "f.zarr", tmp_path)
    assert result.exit_code == 2 and "not an IEMOCAP root" in result.stderr
    assert not (tmp_path / "f.zarr").exists()


def test_import_npz(store: FeatureStore, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {u: rng.standard_normal(5).astype(np.float32) for u in IDS[2:]}
    np.savez(tmp_path / "emb.npz", **arrays)
    result = ser(
        "store", "import", store.path, tmp_path / "emb.npz",
        "--name", "wav2vec.emb", "--modality", "audio", "--level", "utterance",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "imported 6 utterances" in result.stdout
    assert "2 manifest utterances are not in emb.npz" in result.stdout
    assert IDS[0] in result.stdout
    fs = FeatureStore.open(store.path)
    features = fs.read("wav2vec.emb")
    assert features.data.shape == (6, 5) and features.data.dtype == np.float32
    np.testing.assert_array_equal(features.utterance(3), arrays[IDS[3]][None])
    assert fs.failures("wav2vec.emb") == [(IDS[0], "not in emb.npz"), (IDS[1], "not in emb.npz")]
    attrs = fs.info("wav2vec.emb").attrs
    assert attrs["extractor"] == "imported" and attrs["source"] == "emb.npz"
    assert len(attrs["source_sha256"]) == 64
    assert fs.verify_report().checksums["wav2vec.emb"] is not None
    again = ser(
        "store", "import", store.path, tmp_path / "emb.npz",
        "--name", "wav2vec.emb", "--modality", "audio", "--level", "utterance",
    )  # fmt: skip
    assert again.exit_code == 0 and "imported already" in again.stdout


def test_import_shows_its_progress_unless_quiet(store: FeatureStore, tmp_path: Path) -> None:
    """Off a terminal (here), a line per pass: its headers, its checksum, its rows."""
    np.savez(tmp_path / "emb.npz", **{u: np.ones(5, np.float32) for u in IDS})
    args = ["--name", "emb", "--modality", "audio", "--level", "utterance"]
    result = ser("store", "import", store.path, tmp_path / "emb.npz", *args)
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert any(line.startswith("emb.npz headers: 8/8 utterances") for line in lines)
    assert any(line.startswith("emb.npz sha256: ") and " MiB/s " in line for line in lines)
    last = [line for line in lines if line.startswith("emb: ")][-1]
    assert last.startswith("emb: 8/8 utterances") and " utt/s " in last and " eta " in last
    args[1] = "emb2"
    quiet = ser("store", "import", store.path, tmp_path / "emb.npz", *args, "-q")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_import_frame_level_float16(store: FeatureStore, tmp_path: Path) -> None:
    arrays = {u: np.full((i + 1, 3), i, np.float16) for i, u in enumerate(IDS)}
    np.savez(tmp_path / "frames.npz", **arrays)
    result = ser(
        "store", "import", store.path, tmp_path / "frames.npz",
        "--name", "ext", "--modality", "text", "--level", "token",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    features = FeatureStore.open(store.path).read("ext")
    assert features.data.dtype == np.float16 and features.data.shape == (36, 3)
    assert features.offsets.tolist() == [0, 1, 3, 6, 10, 15, 21, 28, 36]


def test_import_refuses_unknown_ids(store: FeatureStore, tmp_path: Path) -> None:
    np.savez(tmp_path / "x.npz", Ses09F_nope_F000=np.ones(3), **{IDS[0]: np.ones(3)})
    result = ser(
        "store", "import", store.path, tmp_path / "x.npz",
        "--name", "x", "--modality", "audio", "--level", "utterance",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "x.npz" in result.stderr and "Ses09F_nope_F000" in result.stderr
    assert "Traceback" not in result.output
    assert "x" not in FeatureStore.open(store.path).feature_sets()


def test_import_refuses_bad_arrays(store: FeatureStore, tmp_path: Path) -> None:
    np.savez(tmp_path / "bad.npz", **{IDS[0]: np.ones((2, 3)), IDS[1]: np.ones((2, 4))})
    args = ["--name", "x", "--modality", "audio", "--level", "frame"]
    result = ser("store", "import", store.path, tmp_path / "bad.npz", *args)
    assert result.exit_code == 2 and f"{IDS[1]}: expected a numeric [rows, 3]" in result.stderr
    np.savez(tmp_path / "flat.npz", **{IDS[0]: np.ones(3)})
    result = ser("store", "import", store.path, tmp_path / "flat.npz", *args)
    assert result.exit_code == 2 and "[rows, 3] array, got float64 (3,)" in result.stderr
    assert "x" not in FeatureStore.open(store.path).feature_sets()  # nothing written
    (tmp_path / "junk.npz").write_text("not a zip")
    result = ser("store", "import", store.path, tmp_path / "junk.npz", *args)
    assert result.exit_code == 2 and "not a readable .npz" in result.stderr


def test_import_other_file_needs_overwrite(store: FeatureStore, tmp_path: Path) -> None:
    args = ["--name", "emb", "--modality", "audio", "--level", "utterance"]
    np.savez(tmp_path / "a.npz", **{u: np.ones(3) for u in IDS})
    assert ser("store", "import", store.path, tmp_path / "a.npz", *args).exit_code == 0
    np.savez(tmp_path / "a.npz", **{u: np.zeros(3) for u in IDS})
    refused = ser("store", "import", store.path, tmp_path / "a.npz", *args)
    assert refused.exit_code == 2 and "source_sha256:" in refused.stderr
    replaced = ser("store", "import", store.path, tmp_path / "a.npz", *args, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert not FeatureStore.open(store.path).read("emb").data.any()


def test_damaged_import_is_mended_by_importing_it_again(
    store: FeatureStore, tmp_path: Path
) -> None:
    args = ["--name", "emb", "--modality", "audio", "--level", "utterance"]
    np.savez(tmp_path / "a.npz", **{u: np.full(3, i, np.float32) for i, u in enumerate(IDS)})
    assert ser("store", "import", store.path, tmp_path / "a.npz", *args).exit_code == 0
    damage_chunk(store, "emb/data")
    verify = ser("store", "verify", store.path)
    command = (
        f"ser store import {store.path} a.npz --name emb --modality audio --level utterance "
        "--dtype float32 --overwrite"
    )
    assert verify.exit_code == 1 and f"repair emb: {command}" in verify.stdout
    again = ser("store", "import", store.path, tmp_path / "a.npz", *args, "--overwrite")
    assert again.exit_code == 0 and "imported 8 utterances" in again.stdout
    assert FeatureStore.open(store.path).read("emb").data[:, 0].tolist() == list(range(8))


def test_info_shows_each_transcript_set_with_its_wer(store: FeatureStore) -> None:
    gold = [str(t) for t in store.manifest.column("transcript")]
    words = sum(len(t.split()) for t in gold)
    store.begin_transcripts("asr-w", {"kind": "asr", "asr_model": "org/w"})
    # One gold word of row 0 missing, the rest exact: WER = 1 / words.
    store.write_transcripts(
        "asr-w", {i: t for i, t in enumerate(gold)} | {0: gold[0].split(" ", 1)[1]}
    )
    store.finish_transcripts("asr-w")
    store.begin_transcripts("asr-v", {"kind": "asr", "asr_model": "org/v"})  # unfinished
    out = json.loads(ser("store", "info", store.path, "--json").stdout)
    assert set(out["feature_sets"]) == {"hubert.L3", "mpnet"}
    done, todo = out["transcript_sets"]["asr-w"], out["transcript_sets"]["asr-v"]
    assert done["wer"] == pytest.approx(1 / words) and done["words"] == words
    assert done["complete"] and done["asr_model"] == "org/w"
    assert not todo["complete"] and todo["wer"] is None
    table = ser("store", "info", store.path).stdout
    assert f"transcripts asr-w (complete): by org/w, 0 failed, WER {100 / words:.2f} %" in table
    assert "transcripts asr-v (incomplete)" in table


def test_verify_shows_its_progress_on_stderr_only(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 60 GB store took half an hour to verify without a word."""
    assert "verify: " not in ser("store", "verify", store.path).stderr  # a short pass
    monkeypatch.setattr(progress, "SHORT", 0.0)  # as if it took long
    data = store.info("hubert.L3").rows * 6 * 2  # float16 rows of 6
    result = ser("store", "verify", store.path, "--json")
    json.loads(result.stdout)  # stdout is the JSON alone
    lines = [line for line in result.stderr.splitlines() if line.startswith("verify: ")]
    # no terminal: plain lines, the last at the end of the pass, with its pace and ETA
    assert lines and lines[-1].startswith(f"verify: {human_bytes(data)}/{human_bytes(data)}  ")
    assert "/s  elapsed " in lines[-1] and lines[-1].endswith("eta 0:00")
    quiet = ser("store", "verify", store.path, "--json", "-q")
    assert "verify: " not in quiet.stderr and json.loads(quiet.stdout)["healthy"] is False


def test_rechunk_shows_its_progress(store: FeatureStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "SHORT", 0.0)  # as if it took long
    result = ser("store", "rechunk", store.path, "hubert.L3", "--chunk-size", "24")
    assert result.exit_code == 0, result.output
    assert "hubert.L3: rechunked from" in result.stdout
    assert any(line.startswith("hubert.L3: ") for line in result.stderr.splitlines())
    again = ser("store", "rechunk", store.path, "hubert.L3", "--chunk-size", "36", "-q")
    said = again.stderr.splitlines()  # -q: no progress; a note on its tiny chunks stays
    assert again.exit_code == 0 and all(line.startswith("note: ") for line in said)
