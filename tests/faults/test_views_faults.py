"""Faults of views (`ser extract --augment`, `ser train --views`) a user meets: an SNR or
speed factor out of bounds (refused where given, naming the key and its bounds), a view
that comes out as its clean set (refused, not kept), a view made from a clean set since
extracted again with other weights (stale: `ser store verify` names it with the command
that makes it again, training refuses it), and views that are gone or failed everywhere
(training says which views it draws and records them; a named one that holds no rows is
one line)."""

from __future__ import annotations

import json
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ser.extract.views as views
from ser.cache import FeatureStore
from ser.extract.views import View, view_spec_of
from ser.synth.corpus import SynthConfig, write_corpus
from ser.synth.tiny import save_tiny_hubert
from tests.refused import one_line, ser

IS13 = ("is13", "audio", "utterance", 7, "float32")
TRAIN: tuple[str, ...] = ("--features", "is13", "--fusion", "none", "--classes", "4")
TRAIN += ("--epochs", "1")
TRAIN += ("--device", "cpu", "--processes", "1", "--protocol", "session5", "--val", "none")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus of a few utterances: each view is one more extraction of it."""
    root = tmp_path_factory.mktemp("views") / "IEMOCAP_full_release"
    write_corpus(root, SynthConfig(dialogs_per_session=1, utterances_per_dialog=(3, 3), seed=3))
    return root


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("noise=1000", "noise is an SNR in dB from -5 to 60 (got 1000)"),
        ("noise=-1000", "noise is an SNR in dB from -5 to 60 (got -1000)"),
        ("noise=20,61", "noise is an SNR in dB from -5 to 60 (got 61)"),
        ("speed=3", "a speed factor is over 0.5 and at most 2, not 1 (got 3)"),
    ],
)
def test_an_snr_or_speed_out_of_bounds_is_refused_where_given(
    corpus: Path, tmp_path: Path, value: str, said: str
) -> None:
    """Before: noise=1000 wrote a view byte for byte the clean set, noise=-1000 blamed
    every utterance's audio and kept a view of 0 rows."""
    store = tmp_path / "f.zarr"
    args = ("extract", corpus, "--store", store, "--features", "logmel", "--augment", value)
    line = one_line(ser(*args, "--quiet"))
    assert line == f"error: --augment {value!r}: {said}" + (
        ": above, the noise is fainter than the recording's own; below, it drowns the speech"
        if value.startswith("noise")
        else ""
    )
    assert not store.exists()


def test_a_view_that_leaves_the_audio_unchanged_is_refused_not_kept(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Noise too weak to change a float32 sample (what a SNR over the bounds did)."""
    monkeypatch.setattr(views, "_noisy", lambda wave, utt_id, snr: wave)
    store = tmp_path / "f.zarr"
    args = ("extract", corpus, "--store", store, "--features", "logmel", "--processes", "1")
    line = one_line(ser(*args, "--augment", "noise=20", "--quiet"))
    assert line == (
        "error: --augment 'noise=20': view set logmel80.noise20db came out byte for byte its "
        "clean set logmel80 (the perturbation left the audio unchanged), so it is not kept; "
        "give a lower SNR or another speed factor"
    )
    assert FeatureStore.open(store).feature_sets() == ["logmel80"]
    assert ser("store", "verify", store).exit_code == 0


@pytest.mark.slow
def test_a_view_of_a_clean_set_extracted_again_is_stale(corpus: Path, tmp_path: Path) -> None:
    """`ser extract --overwrite` with other weights replaces the clean set, not its views:
    verify names them with the command that makes them again, training refuses them, and
    that command mends the store."""
    model = save_tiny_hubert(tmp_path / "tiny-hubert", seed=0)
    store = tmp_path / "f.zarr"
    base: tuple[str | Path, ...] = ("extract", corpus, "--store", store, "--features", "hubert")
    base += ("--hubert-model", model)
    base += ("--precision", "fp32", "--processes", "1", "--quiet")
    assert ser(*base, "--augment", "noise=20").exit_code == 0
    save_tiny_hubert(model, seed=1)  # other weights in the same folder
    assert ser(*base, "--overwrite").exit_code == 0
    opened = FeatureStore.open(store)
    (view,) = [name for name in opened.feature_sets() if "view_of" in opened.info(name).attrs]
    clean = opened.info(view).attrs["view_of"]

    verified = ser("store", "verify", store)
    assert verified.exit_code == 1
    assert (
        f"  - {view}: stale view: its clean set {clean} was extracted again with other "
        "settings (weights_sha256 differs) since the view was made from it"
    ) in verified.output
    (remake,) = [line for line in verified.output.splitlines() if line.startswith("remake ")]
    assert remake.startswith(f"remake {view}: ser extract ")
    command = remake.split(": ", 1)[1]
    assert "--augment noise=20" in command and command.endswith("--overwrite")
    repaired = ser("store", "repair", store, "--quiet")  # not damage: it says the same command
    assert repaired.exit_code == 1 and f"rebuild {view}: {command}" in repaired.output

    out = tmp_path / "runs"
    train: tuple[str | Path, ...] = ("train", "--store", store, "--features", "hubert")
    train += ("--fusion", "none")
    train += ("--classes", "4", "--epochs", "1", "--device", "cpu", "--processes", "1")
    train += ("--protocol", "session5", "--val", "none", "--out", out, "--views", "all")
    line = one_line(ser(*train))
    assert line.startswith(f"error: --views all: {view}: stale view: its clean set {clean}")
    assert line.endswith(f"another encoder's; make it again: {command}")
    assert not out.exists()

    assert ser(*shlex.split(command)[1:], "--quiet").exit_code == 0  # what verify said
    assert ser("store", "verify", store).exit_code == 0
    attrs = FeatureStore.open(store).info(view).attrs
    assert attrs["view_of_fingerprint"] == FeatureStore.open(store).info(clean).fingerprint


def _add_view(store: FeatureStore, label: str, spec: str, failed: bool = False) -> str:
    """A view of is13 as `ser extract --augment` writes it: its rows the clean rows plus
    one, or (`failed`) none, every utterance failed."""
    clean = store.read("is13")
    offsets, data = np.asarray(clean.offsets), np.asarray(clean.data, dtype=np.float32)
    attrs = {k: v for k, v in clean.attrs.items() if k not in ("fingerprint", "complete")}
    name, view_attrs = view_spec_of("is13", attrs, _view(spec))
    assert name == f"is13.{label}"
    store.begin_feature_set(name, view_attrs)
    n = len(store.manifest)
    rows = {} if failed else {i: data[offsets[i] : offsets[i + 1]] + 1 for i in range(n)}
    reasons = {i: "cannot reshape tensor of 0 elements" for i in range(n)} if failed else {}
    store.shard_writer(name).write(0, rows, reasons)
    store.consolidate(name, 1)
    return name


def _view(spec: str) -> View:
    kind, value = spec.split("=")
    return View("speed" if kind == "speed" else "noise", float(value))


@pytest.fixture
def viewed(labelled_stores: Callable[..., Path], tmp_path: Path) -> Path:
    """is13 with a noise view, a speed view whose every utterance failed, and one more
    speed view whose folder was deleted."""
    path = tmp_path / "f.zarr"
    shutil.copytree(labelled_stores({"is13": IS13}, per_dialog=4), path)
    store = FeatureStore.open(path, mode="a")
    _add_view(store, "noise20db", "noise=20")
    _add_view(store, "speed0.9", "speed=0.9", failed=True)
    shutil.rmtree(path / _add_view(store, "speed1.1", "speed=1.1"))
    return path


def test_views_all_says_and_records_the_views_it_draws(viewed: Path, tmp_path: Path) -> None:
    result = ser("train", "--store", viewed, *TRAIN, "--out", tmp_path / "runs", "--views", "all")
    assert result.exit_code == 0, result.output
    assert (
        "views drawn each epoch beside the clean sets: noise20db (left out: speed0.9: every "
        "utterance failed in is13.speed0.9)"
    ) in result.output
    (record,) = (tmp_path / "runs").glob("*/run.json")
    written: dict[str, Any] = json.loads(record.read_text())
    assert written["views"] == ["noise20db"]
    assert set(written["fingerprints"]) == {"is13", "is13.noise20db"}
    report = ser("report", record.parent)
    assert "views=all (noise20db)" in report.output  # what "all" drew, in the table


def test_a_named_view_whose_every_utterance_failed_is_one_line(
    viewed: Path, tmp_path: Path
) -> None:
    out = tmp_path / "runs"
    line = one_line(ser("train", "--store", viewed, *TRAIN, "--out", out, "--views", "speed0.9"))
    assert line.startswith(
        f"error: --views speed0.9: view set is13.speed0.9 in {viewed} holds no rows: every "
        "utterance failed in its extraction (the first: "
    )
    assert line.endswith("or leave speed0.9 out of --views")
    assert not out.exists()


def test_a_view_written_before_views_recorded_their_source_is_checked_all_the_same(
    viewed: Path,
) -> None:
    """Its attrs repeat its clean set's: stale where they differ from the clean set's now."""
    store = FeatureStore.open(viewed, mode="a")
    attrs = dict(store.info("is13.noise20db").attrs)
    del attrs["view_of_fingerprint"]
    rows = store.read("is13.noise20db")
    offsets = np.asarray(rows.offsets)
    store.delete_feature_set("is13.noise20db")
    store.begin_feature_set("is13.noise20db", attrs)
    own = {i: rows.data[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)}
    store.shard_writer("is13.noise20db").write(0, own, {})
    store.consolidate("is13.noise20db", 1)
    assert "is13.noise20db" not in FeatureStore.open(viewed).verify_report().stale
    clean = store.read("is13")
    other = {k: v for k, v in clean.attrs.items() if k not in ("fingerprint", "complete")}
    store.begin_feature_set("is13", {**other, "opensmile_version": "9"}, overwrite=True)
    offsets = np.asarray(clean.offsets)
    own = {i: clean.data[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)}
    store.shard_writer("is13").write(0, own, {})
    store.consolidate("is13", 1)
    stale = FeatureStore.open(viewed).verify_report().stale
    assert stale == {"is13.noise20db": "is13", "is13.speed0.9": "is13"}
