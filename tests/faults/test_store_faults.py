"""A damaged store, as a full disk, a killed copy or a failing disk leave one, on Zarr and
HDF5: `ser store verify` names each damaged piece and prints the command that repairs it;
that very command, parsed from verify's output and run, leaves the store healthy and as a
clean extraction left it (the same bytes); and no other command ends in a traceback or is
kept from the sets that are not damaged.

One extraction per format (`pristine`: tiny HuBERT and log-mel of the 50-utterance
corpus, `--classes 4`, through the command line, so that the store has its receipt),
copied by each test and damaged there.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr
from click.testing import CliRunner, Result

from ser.cache import FeatureStore, repair_writer
from ser.cache import store as store_module
from ser.cache.receipts import receipt_path
from ser.cli import main
from tests.stores import damage_chunk

CHUNK_BYTES = 8 * 2**10  # a few utterances a chunk: a damaged one is a part of a set
SETS = ("tiny-hubert.L2", "logmel80")


def ser(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def extract_args(root: Path, store: Path, models: Any) -> list[str | Path]:
    return ["extract", root, "--store", store, "--features", "hubert,logmel", "--hubert-model",
            models.hubert, "--layers", "last", "--classes", "4", "--quiet"]  # fmt: skip


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every extraction and repair here writes chunks of the pristine stores' size."""
    monkeypatch.setattr(store_module, "CHUNK_BYTES", CHUNK_BYTES)


@pytest.fixture(scope="module")
def pristine(
    short_corpus: tuple[Path, Any], tiny_models: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """A clean extraction per format (with its receipt beside it), never changed."""
    root, _ = short_corpus
    folder = tmp_path_factory.mktemp("pristine")
    stores = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "CHUNK_BYTES", CHUNK_BYTES)
        for suffix in (".zarr", ".h5"):
            path = folder / f"features{suffix}"
            result = ser(*extract_args(root, path, tiny_models))
            assert result.exit_code == 0, result.output
            stores[suffix] = path
    return stores


@pytest.fixture(params=[".zarr", ".h5"], ids=["zarr", "hdf5"])
def suffix(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def copy_of(pristine: dict[str, Path], suffix: str, tmp_path: Path) -> Path:
    """The pristine store of `suffix` and its receipt, copied as a user would."""
    source = pristine[suffix]
    store = tmp_path / source.name
    if source.is_dir():
        shutil.copytree(source, store)
    else:
        shutil.copy2(source, store)
    shutil.copy2(receipt_path(source), receipt_path(store))
    return store


def clean(result: Result, code: int) -> str:
    """`result` ended with `code` and no traceback; its output."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and "Task exception" not in result.output
    return result.output


def repair_lines(store: Path) -> dict[str, list[str]]:
    """`ser store verify`'s repair commands (exit 1), by the piece each repairs."""
    out = clean(ser("store", "verify", store), 1)
    found = {}
    for line in out.splitlines():
        piece, colon, command = line.removeprefix("repair ").partition(": ")
        if line.startswith("repair ") and colon:
            found[piece] = shlex.split(command)
    return found


def run_printed(store: Path, piece: str) -> str:
    """Run the command verify printed for `piece` as it is printed; verify is then healthy."""
    command = repair_lines(store)[piece]
    assert command[0] == "ser"
    out = clean(ser(*command[1:]), 0)
    assert clean(ser("store", "verify", store), 0).startswith(f"ok: {store}")
    return out


def contents(store: Path) -> dict[str, Any]:
    """What a store holds, to compare with a clean extraction: every file's bytes (Zarr),
    or every set's data, offsets and attributes and the manifest (HDF5, whose file lays
    out what it writes where there is room)."""
    if store.is_dir():
        files = sorted(p for p in store.rglob("*") if p.is_file())
        return {
            str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files
        }
    fs = FeatureStore.open(store)
    found: dict[str, Any] = {"attrs": fs.attrs, "manifest": fs.manifest.columns()}
    for name in fs.feature_sets():
        data = fs.read(name)
        found[name] = (data.data.tobytes(), data.offsets.tobytes(), data.attrs, fs.failures(name))
    return found


def assert_as_clean(store: Path, pristine: Path) -> None:
    old, new = contents(pristine), contents(store)
    assert old.keys() == new.keys()
    for key in old:
        if isinstance(old[key], dict) and key == "manifest":
            assert all(np.array_equal(old[key][c], new[key][c]) for c in old[key])
        else:
            assert old[key] == new[key], key


def again_is_nothing(root: Path, store: Path, models: Any) -> None:
    """The extraction that made the store, run again: nothing to do."""
    assert "nothing to do" in clean(ser(*extract_args(root, store, models)), 0)


def half(path: Path) -> None:
    """Cut a file to half its size, as a copy onto a full disk leaves it."""
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


def zarr_chunk(store: Path, array: str, chunk: int = 1) -> Path:
    return next(p for p in (store / array / "c" / str(chunk)).rglob("*") if p.is_file())


# -- a set's rows: `ser extract ... --repair`, with the options that made the set ---------


@pytest.mark.slow
@pytest.mark.parametrize("quiet", [False, True], ids=["bar", "quiet"])
def test_a_truncated_chunk_is_repaired_by_the_printed_extract_command(
    pristine: dict[str, Path],
    short_corpus: tuple[Path, Any],
    tiny_models: Any,
    tmp_path: Path,
    quiet: bool,
) -> None:
    """Repairs alone (no set to extract) crashed in the disk estimate; the printed command
    lacked the class set the store was extracted with, so it refused the store."""
    store = copy_of(pristine, ".zarr", tmp_path)
    half(zarr_chunk(store, "tiny-hubert.L2/data"))
    command = repair_lines(store)["tiny-hubert.L2"]
    assert command[command.index("--classes") + 1] == "4"
    assert command[command.index("--hubert-model") + 1] == str(tiny_models.hubert)
    out = clean(ser(*command[1:], *(["--quiet"] if quiet else [])), 0)
    assert "repaired tiny-hubert.L2: " in out and "its bytes are those recorded" in out
    assert clean(ser("store", "verify", store), 0).startswith("ok: ")
    assert_as_clean(store, pristine[".zarr"])
    again_is_nothing(short_corpus[0], store, tiny_models)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("suffix", "damage"),
    [(".zarr", "garbled"), (".zarr", "missing"), (".h5", "garbled")],  # HDF5: no chunk files
    ids=["zarr-garbled", "zarr-missing", "hdf5-garbled"],
)
def test_a_damaged_chunk_is_repaired_by_the_printed_extract_command(
    pristine: dict[str, Path], suffix: str, tmp_path: Path, damage: str
) -> None:
    store = copy_of(pristine, suffix, tmp_path)
    if damage == "missing":
        zarr_chunk(store, "logmel80/data", chunk=2).unlink()
    else:
        damage_chunk(FeatureStore.open(store), "logmel80/data", chunk=2)
    assert "logmel80: rows " in clean(ser("store", "verify", store), 1)
    assert "repaired logmel80: " in run_printed(store, "logmel80")
    assert_as_clean(store, pristine[suffix])


def test_a_repair_killed_part_way_is_verified_and_finished(
    pristine: dict[str, Path], suffix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed with a shard's rows written into the set's chunks and its record not yet
    (as a kill -9 lands): verify names the damage, and the repair run again extracts only
    what no record holds and leaves the clean extraction's bytes."""
    store = copy_of(pristine, suffix, tmp_path)
    for chunk in (1, 40, 80):
        damage_chunk(FeatureStore.open(store), "logmel80/data", chunk=chunk)
    command = [*repair_lines(store)["logmel80"][1:], "--shard-size", "8"]
    records = []
    real = repair_writer.atomic_write

    def dies(path: Path, write: Any, what: str) -> None:
        shard = path.name.startswith("repaired-")
        if shard and records:
            raise KeyboardInterrupt  # the second shard's rows are placed, its record not
        real(path, write, what)
        records.extend([json.loads(path.read_text())] if shard else [])

    with monkeypatch.context() as patch:
        patch.setattr(repair_writer, "atomic_write", dies)
        assert ser(*command).exit_code != 0
    said = clean(ser("store", "verify", store), 1)
    assert "logmel80: rows " in said and "repair logmel80: " in said

    again: list[int] = []
    real_write = repair_writer.RepairWriter.write

    def spy(writer: Any, shard: int, rows: Any, failures: Any = None) -> None:
        again.extend(i for i in rows if i in writer.plan().places)
        real_write(writer, shard, rows, failures)

    monkeypatch.setattr(repair_writer.RepairWriter, "write", spy)
    assert "repaired logmel80: " in clean(ser(*command), 0)
    assert again and not set(again) & set(records[0]["placed"])
    assert clean(ser("store", "verify", store), 0).startswith(f"ok: {store}")
    assert_as_clean(store, pristine[suffix])


@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_a_lost_failures_array_is_named_and_the_set_extracted_again(
    pristine: dict[str, Path], suffix: str, tmp_path: Path
) -> None:
    # The failures table is two arrays written together: one alone has lost the reasons.
    store = copy_of(pristine, suffix, tmp_path)
    if suffix == ".zarr":
        shutil.rmtree(store / "logmel80" / "failures_reason")
    else:
        with h5py.File(store, "a") as f:
            del f["logmel80"]["failures_reason"]
    said = clean(ser("store", "verify", store), 1)
    assert "logmel80: its failures table is damaged: failures_reason is missing" in said
    assert "logmel80" in run_printed(store, "logmel80")
    assert_as_clean(store, pristine[suffix])


# -- metadata: written anew from the store's own copies ---------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("node", "text"),
    [
        ("logmel80", ""),
        ("logmel80", '{"zarr_format": 3, "node_type": "gr'),
        ("logmel80/data", ""),
        ("tiny-hubert.L2/offsets", ""),
    ],
    ids=["set-empty", "set-garbled", "data-empty", "offsets-empty"],
)
def test_a_damaged_zarr_json_of_a_set_is_repaired_by_the_printed_extract_command(
    pristine: dict[str, Path], tmp_path: Path, node: str, text: str
) -> None:
    store = copy_of(pristine, ".zarr", tmp_path)
    (store / node / "zarr.json").write_text(text)
    set_name = node.split("/")[0]
    problems = [p for p in clean(ser("store", "verify", store), 1).splitlines() if "  - " in p]
    said = "is empty (0 bytes)" if not text else "is not JSON ("
    assert problems[0].startswith(f"  - {set_name}: {store / node / 'zarr.json'} {said}")
    out = run_printed(store, set_name)
    assert set_name in out
    assert_as_clean(store, pristine[".zarr"])


def test_garbled_attributes_of_an_hdf5_set_are_restored_from_its_copy(
    pristine: dict[str, Path], tmp_path: Path
) -> None:
    store = copy_of(pristine, ".h5", tmp_path)
    with h5py.File(store, "r+") as f:
        f["logmel80"].attrs["ser"] = '{"extractor": "logm'
    problem = clean(ser("store", "verify", store), 1).splitlines()[1]
    assert problem.startswith(f"  - logmel80: {store} holds attributes of /logmel80 that are not")
    assert "its attributes, from its copy" in run_printed(store, "logmel80")
    assert_as_clean(store, pristine[".h5"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "node", ["manifest", "manifest/label", ""], ids=["group", "column", "root"]
)
def test_a_damaged_zarr_json_of_the_store_is_repaired_by_store_repair(
    pristine: dict[str, Path], tmp_path: Path, node: str
) -> None:
    store = copy_of(pristine, ".zarr", tmp_path)
    (store / node / "zarr.json").write_text("")
    piece = node.split("/")[0] or "store"
    assert repair_lines(store)[piece] == ["ser", "store", "repair", str(store)]
    run_printed(store, piece)
    assert_as_clean(store, pristine[".zarr"])


@pytest.mark.slow
def test_a_damaged_manifest_chunk_is_rebuilt_from_the_corpus(
    pristine: dict[str, Path], suffix: str, tmp_path: Path
) -> None:
    store = copy_of(pristine, suffix, tmp_path)
    damage_chunk(FeatureStore.open(store), "manifest/label")
    assert "rebuilt the manifest from " in run_printed(store, "manifest")
    assert_as_clean(store, pristine[suffix])


def test_a_manifest_the_corpus_no_longer_gives_is_not_rebuilt(
    pristine: dict[str, Path], tmp_path: Path
) -> None:
    """Repair never writes a manifest that is not the store's: here the corpus gives 174
    utterances where the store holds 115 (as if it had changed since)."""
    store = copy_of(pristine, ".zarr", tmp_path)
    fs = FeatureStore.open(store, mode="a")
    fs._backend.set_root_attrs({**fs.attrs, "classes": "all"})
    damage_chunk(fs, "manifest/utt_id")
    out = ser("store", "repair", store)
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert "the corpus gives another manifest than the store's (" in out.stderr
    assert "manifest: " in clean(ser("store", "verify", store), 1)


@pytest.mark.slow
def test_an_unfinished_set_is_resumed_by_store_repair(
    pristine: dict[str, Path], tmp_path: Path
) -> None:
    """What a killed extraction leaves: a set begun, not complete."""
    store = copy_of(pristine, ".zarr", tmp_path)
    fs = FeatureStore.open(store, mode="a")
    attrs = fs.info("logmel80").attrs
    fs.delete_feature_set("logmel80")
    fs.begin_feature_set("logmel80", {k: v for k, v in attrs.items() if k != "data_sha256"})
    assert "logmel80: incomplete" in clean(ser("store", "verify", store), 1)
    assert "logmel80: extracted whole" in clean(ser("store", "repair", store), 0)
    assert_as_clean(store, pristine[".zarr"])


# -- a store file that cannot be opened --------------------------------------------------


@pytest.mark.slow
def test_a_truncated_hdf5_store_is_said_to_be_truncated_and_extracted_again(
    pristine: dict[str, Path], short_corpus: tuple[Path, Any], tiny_models: Any, tmp_path: Path
) -> None:
    """h5py's message holds "sblock": it was reported as a file another process writes."""
    store = copy_of(pristine, ".h5", tmp_path)
    size = store.stat().st_size
    half(store)
    info = ser("store", "info", store)
    assert info.exit_code == 2 and "Traceback" not in info.output
    assert f"is truncated: {size // 2:,} of its {size:,} bytes are there" in info.stderr
    assert "another process" not in info.stderr
    out = run_printed(store, "store")
    assert f"set the unreadable store aside as {tmp_path / 'features.damaged.h5'}" in out
    assert (tmp_path / "features.damaged.h5").stat().st_size == size // 2  # kept
    assert_as_clean(store, pristine[".h5"])
    again_is_nothing(short_corpus[0], store, tiny_models)


def test_an_hdf5_store_another_process_writes_is_said_to_be_so(
    pristine: dict[str, Path], tmp_path: Path
) -> None:
    store = copy_of(pristine, ".h5", tmp_path)
    script = f"import h5py, sys; f = h5py.File({str(store)!r}, 'r+'); print('open', flush=True)"
    holder = subprocess.Popen(
        [sys.executable, "-c", script + "; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        info = ser("store", "info", store)
    finally:
        holder.communicate("")
    assert info.exit_code == 2 and "is being written by another process" in info.stderr


# -- a damaged set keeps no other from being used ----------------------------------------


@pytest.mark.slow
def test_one_damaged_set_blocks_no_command_on_the_others(
    pristine: dict[str, Path], short_corpus: tuple[Path, Any], tiny_models: Any, tmp_path: Path
) -> None:
    """An empty zarr.json in a set made every command a traceback from zarr's internals."""
    root, _ = short_corpus
    store = copy_of(pristine, ".zarr", tmp_path)
    (store / "logmel80" / "zarr.json").write_text("")
    said = f"feature set 'logmel80' is damaged: {store / 'logmel80' / 'zarr.json'} is empty"
    info = clean(ser("store", "info", store), 0)
    assert "tiny-hubert.L2" in info and said in info
    assert said.split(": ", 1)[1] in clean(ser("store", "verify", store), 1)
    train = ["train", "--store", store, "--fusion", "none", "--classes", "4", "--epochs", "1",
             "--protocol", "session5", "--device", "cpu", "--out", tmp_path / "runs"]  # fmt: skip
    clean(ser(*train, "--features", "tiny-hubert.L2"), 0)
    refused = ser(*train, "--features", "logmel80", "--name", "damaged")
    assert refused.exit_code == 2 and said in refused.stderr and "Traceback" not in refused.output
    hubert = ["--features", "hubert", "--hubert-model", tiny_models.hubert, "--layers", "last"]
    other = ["extract", root, "--store", store, "--classes", "4", "--quiet"]
    assert "nothing to do" in clean(ser(*other, *hubert), 0)
    refused = ser(*other, "--features", "logmel")
    assert refused.exit_code == 2 and said in refused.stderr and "Traceback" not in refused.output
    assert "extracted 1 feature set" in clean(ser(*other, "--features", "logmel", "--overwrite"), 0)
    assert clean(ser("store", "verify", store), 0).startswith("ok: ")


def test_a_damaged_manifest_is_one_line_for_every_command(
    pristine: dict[str, Path], short_corpus: tuple[Path, Any], tmp_path: Path
) -> None:
    store = copy_of(pristine, ".zarr", tmp_path)
    (store / "manifest" / "utt_id" / "zarr.json").write_text("")
    said = f"the manifest is damaged ({store / 'manifest' / 'utt_id' / 'zarr.json'} is empty"
    assert f"damaged: {store}: the manifest is damaged: " in clean(ser("store", "info", store), 0)
    train = ["train", "--store", store, "--features", "logmel80", "--fusion", "none",
             "--classes", "4", "--epochs", "1", "--out", tmp_path / "runs"]  # fmt: skip
    extract = ["extract", short_corpus[0], "--store", store, "--features", "logmel",
               "--classes", "4", "--quiet", "--overwrite"]  # fmt: skip
    for args in (train, extract):
        refused = ser(*args)
        assert refused.exit_code == 2 and "Traceback" not in refused.output
        assert said in refused.stderr and f"ser store repair {store}" in refused.stderr


@pytest.mark.slow
def test_zarrs_unretrieved_task_exceptions_never_reach_the_user(
    pristine: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Zarr's listing of a group with two damaged members leaves a failed task behind,
    which asyncio logs with a traceback ("Task exception was never retrieved")."""
    store = copy_of(pristine, ".zarr", tmp_path)
    for name in SETS:
        (store / name / "zarr.json").write_text("")
    clean(ser("store", "info", store), 0)  # installs the filter, as every store command does
    with pytest.raises(ValueError):
        list(zarr.open_group(str(store), mode="r").group_keys())
    gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


# -- what the store's receipt says it holds, its copies, its writer, its corpus ----------


def garble_set_metadata(store: Path, name: str) -> None:
    """A set's metadata and its data array's (which keeps the copy of it) both garbled."""
    if store.is_dir():
        for node in (store / name, store / name / "data"):
            (node / "zarr.json").write_text('{"zarr_format": 3, "node_type": "gr')
    else:
        with h5py.File(store, "r+") as f:
            for node in (name, f"{name}/data"):
                f[node].attrs["ser"] = '{"extractor": "logm'


@pytest.mark.slow
@pytest.mark.parametrize("how", ["printed", "store-repair"])
def test_a_deleted_set_is_named_by_verify_and_extracted_again(
    pristine: dict[str, Path], suffix: str, tmp_path: Path, how: str
) -> None:
    """A set's folder (group) deleted: verify said "all healthy", repair "nothing to
    repair", though the store's receipt lists the set."""
    store = copy_of(pristine, suffix, tmp_path)
    if store.is_dir():
        shutil.rmtree(store / "logmel80")
    else:
        with h5py.File(store, "r+") as f:
            del f["logmel80"]
    said = f"logmel80: missing from the store, which its receipt ({receipt_path(store)}) lists"
    assert said in clean(ser("store", "verify", store), 1)
    command = repair_lines(store)["logmel80"]
    assert command[:2] == ["ser", "extract"] and "--features" in command
    if how == "printed":
        run_printed(store, "logmel80")
    else:
        assert "logmel80: extracted whole" in clean(ser("store", "repair", store), 0)
    assert_as_clean(store, pristine[suffix])


@pytest.mark.slow
def test_a_sets_metadata_and_its_copy_garbled_are_restored_from_the_receipt(
    pristine: dict[str, Path], suffix: str, tmp_path: Path
) -> None:
    """Both garbled: repair said "still 2 problems" and verify printed `ser store repair`
    again (a loop); the receipt's copy restores them where the data bears it out."""
    store = copy_of(pristine, suffix, tmp_path)
    garble_set_metadata(store, "logmel80")
    assert repair_lines(store)["logmel80"] == ["ser", "store", "repair", str(store)]
    out = run_printed(store, "logmel80")
    assert "restored logmel80: its attributes, from the store's receipt" in out
    assert_as_clean(store, pristine[suffix])
    if suffix == ".h5":  # the data's copy of them, which no read checks, is back too
        copies = []
        for path in (store, pristine[suffix]):
            with h5py.File(path, "r") as f:
                copies.append(json.loads(f["logmel80/data"].attrs["ser"]))
        assert copies[0] == copies[1]


@pytest.mark.slow
def test_a_set_whose_metadata_no_copy_restores_is_extracted_again(
    pristine: dict[str, Path], tmp_path: Path
) -> None:
    """Its metadata garbled and its data damaged too: the receipt's copy is not borne out
    by the data, so repair extracts the set again from it (no loop, no problem left)."""
    store = copy_of(pristine, ".zarr", tmp_path)
    damage_chunk(FeatureStore.open(store), "logmel80/data", chunk=2)
    garble_set_metadata(store, "logmel80")
    out = run_printed(store, "logmel80")
    assert "logmel80: deleted, to be extracted again as the store's receipt records it" in out
    assert "logmel80: extracted whole" in out
    assert_as_clean(store, pristine[".zarr"])


@pytest.mark.slow
def test_repair_that_cannot_mend_a_set_names_the_extraction_that_does(
    pristine: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What repair leaves is never sent back to repair: the `ser extract ... --overwrite`
    that rebuilds the set is named."""
    from ser.extract import store_repair

    store = copy_of(pristine, ".zarr", tmp_path)
    damage_chunk(FeatureStore.open(store), "logmel80/data", chunk=2)
    garble_set_metadata(store, "logmel80")
    monkeypatch.setattr(store_repair, "_reextract", lambda *args: [])  # as if it failed
    out = clean(ser("store", "repair", store), 1)
    assert "ser store repair" not in out.split("still ")[1]
    line = next(x for x in out.splitlines() if x.startswith("rebuild logmel80: "))
    command = shlex.split(line.removeprefix("rebuild logmel80: "))
    assert command[:2] == ["ser", "extract"] and command[-1] == "--overwrite"
    assert "extracted 1 feature set" in clean(ser(*command[1:], "--quiet"), 0)
    assert clean(ser("store", "verify", store), 0).startswith("ok: ")
    assert_as_clean(store, pristine[".zarr"])


def train_args(store: Path, tmp_path: Path, features: str) -> list[str | Path]:
    return ["train", "--store", store, "--features", features, "--fusion", "none", "--classes",
            "4", "--epochs", "1", "--protocol", "session5", "--device", "cpu", "--out",
            tmp_path / "runs"]  # fmt: skip


@pytest.mark.slow
def test_a_damaged_set_asked_for_by_its_short_name_is_said_to_be_damaged(
    pristine: dict[str, Path], suffix: str, tmp_path: Path
) -> None:
    """`--features hubert` with tiny-hubert.L2 damaged said "not in the store ... extract
    it first"."""
    store = copy_of(pristine, suffix, tmp_path)
    garble_set_metadata(store, "tiny-hubert.L2")
    refused = ser(*train_args(store, tmp_path, "hubert"))
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    said = f"feature set 'tiny-hubert.L2' (asked for as 'hubert') is in {store} but damaged"
    assert said in refused.stderr and "not in the store" not in refused.stderr
    fix = f"repair it with `ser store repair {store}` (`ser store verify {store}` lists every"
    assert fix in refused.stderr
    clean(ser("store", "repair", store), 0)
    clean(ser(*train_args(store, tmp_path, "hubert"), "--name", "repaired"), 0)


@pytest.mark.slow
def test_a_store_an_extraction_writes_is_said_to_be_written_not_damaged(
    pristine: dict[str, Path], tmp_path: Path
) -> None:
    """While `ser extract` writes (holding the store's lock, a set begun), train said "run
    the same ser extract again" and verify suggested a repair."""
    store = copy_of(pristine, ".zarr", tmp_path)
    fs = FeatureStore.open(store, mode="a")
    attrs = fs.info("logmel80").attrs
    with fs.lock():  # as the extraction holds it
        fs.delete_feature_set("logmel80")
        fs.begin_feature_set("logmel80", {k: v for k, v in attrs.items() if k != "data_sha256"})
        said = f"{store} is being written by another ser process (pid {os.getpid()} on "
        for args in (train_args(store, tmp_path, "logmel80"), ["store", "verify", store]):
            refused = ser(*args)
            assert refused.exit_code == 2 and "Traceback" not in refused.output, args
            assert said in refused.stderr and "wait for it to finish" in refused.stderr
            assert "repair" not in refused.output and "ser extract" not in refused.output
        clean(ser(*train_args(store, tmp_path, "tiny-hubert.L2")), 0)  # a finished set
    assert "logmel80: incomplete" in clean(ser("store", "verify", store), 1)  # killed


@pytest.mark.slow
def test_repair_says_when_the_corpus_root_the_store_records_is_gone(
    pristine: dict[str, Path], short_corpus: tuple[Path, Any], suffix: str, tmp_path: Path
) -> None:
    """The corpus moved: repair failed on the recorded root without saying to pass the new
    one."""
    store = copy_of(pristine, suffix, tmp_path)
    fs = FeatureStore.open(store, mode="a")
    moved = tmp_path / "moved-away"
    fs._backend.set_root_attrs({**fs.attrs, "corpus_root": str(moved)})
    damage_chunk(fs, "logmel80/data", chunk=2)
    verify = clean(ser("store", "verify", store), 1)
    assert f"the corpus root the store records, {moved}, is not there" in verify
    assert repair_lines(store)["logmel80"][2] == "CORPUS_ROOT"
    refused = ser("store", "repair", store)
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert refused.stderr.strip() == (
        f"error: {store}: the corpus root the store records, {moved}, is not there (moved "
        f"or deleted?): give its new place, `ser store repair {store} CORPUS_ROOT`"
    )
    clean(ser("store", "repair", store, short_corpus[0]), 0)
    assert clean(ser("store", "verify", store), 0).startswith("ok: ")
    clean_store = FeatureStore.open(pristine[suffix])
    assert FeatureStore.open(store).checksum("logmel80") == clean_store.checksum("logmel80")
