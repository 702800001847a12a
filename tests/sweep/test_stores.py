"""A sweep over several stores: a cell per store with the store in its key (IEMOCAP's keys
as before), each corpus's own protocol where the preset fixed IEMOCAP's, resume, and a
report column per corpus."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ser.cli import main
from ser.corpus.registry import KINDS
from ser.errors import ConfigError
from ser.sweep.cells import resolve_cells
from ser.sweep.report import sweep_report
from ser.sweep.runner import run_sweep, write_manifest
from ser.sweep.spec import load_spec
from ser.sweep.stores import StoreIdentity, corpus_options
from tests.stores import labelled_store

from .conftest import PARAMS, SETS, TINY

# TINY without its protocol: the preset's own (LOSO) is IEMOCAP's, CREMA-D takes its own.
FIXED = {k: v for k, v in TINY.items() if k != "protocol"}
ROWS = ("Text", "Full")


def spec_of(**fixed: str) -> Any:
    spec = load_spec("msmser-table2", params=PARAMS, fixed={**FIXED, **fixed})
    return spec, [c for c in spec.cells if c.row.label in ROWS]


def test_an_iemocap_store_keeps_its_keys_and_another_corpus_gets_its_own(
    store_path: Path, crema_store: Path, tmp_path: Path
) -> None:
    _, cells = spec_of()
    alone = resolve_cells(cells, str(store_path), tmp_path)
    for c in alone:  # the key as it was before stores entered it: config + fingerprints
        fingerprints = {n: _fingerprint(store_path, n) for n in c.features}
        blob = json.dumps({"config": c.resolved, "fingerprints": fingerprints}, sort_keys=True)
        assert c.key == hashlib.sha256(blob.encode()).hexdigest()[:16]
    both = resolve_cells(cells, [str(store_path), str(crema_store)], tmp_path)
    assert [c.key for c in both[:2]] == [c.key for c in alone]
    crema = both[2:]
    assert len({c.key for c in both}) == 4 and all(c.store.corpus == "crema-d" for c in crema)
    # The preset's IEMOCAP protocol gave way to CREMA-D's speaker folds; classes: 4 as
    # `ser train` defaults for MSMSER.
    assert {c.settings.protocol for c in alone} == {"loso"}
    assert {c.settings.protocol for c in crema} == {"speaker-kfold"}
    assert {c.settings.classes for c in crema} == {"4"}
    assert {c.resolved["protocol"] for c in crema} == {"speaker-kfold"}  # as its record says


def _fingerprint(store: Path, name: str) -> str:
    from ser.cache import FeatureStore

    return str(FeatureStore.open(store).info(name).fingerprint)


def test_options_the_user_fixes_apply_to_every_store(
    store_path: Path, crema_store: Path, tmp_path: Path
) -> None:
    _, cells = spec_of(protocol="speaker-kfold:3")
    assert all(c.corpus_bound == {"classes"} for c in cells)  # the preset's classes only
    both = resolve_cells(cells, [str(store_path), str(crema_store)], tmp_path)
    assert {c.settings.protocol for c in both} == {"speaker-kfold:3"}
    assert {c.members for c in both} == {3}  # its K folds x 1 seed, the protocol's count
    # The same configuration on another store's utterances: another key, by the store alone.
    assert [c.resolved for c in both[:2]] == [c.resolved for c in both[2:]]
    assert len({c.key for c in both}) == 4
    _, bound = spec_of()
    assert all(c.corpus_bound == {"protocol", "classes"} for c in bound)
    _, iemocap_only = spec_of(protocol="session5")  # a protocol CREMA-D does not offer
    with pytest.raises(ConfigError, match=r"on CREMA-D .*CREMA-D has no protocol 'session5'"):
        resolve_cells(iemocap_only, [str(store_path), str(crema_store)], tmp_path)


def test_zhou_s_five_iemocap_classes_become_the_corpus_s_four(
    store_path: Path, crema_store: Path, tmp_path: Path
) -> None:
    spec = load_spec("zhou", params=PARAMS, fixed={"epochs": "2"})
    both = resolve_cells(spec.cells, [str(store_path), str(crema_store)], tmp_path)
    plans = {(c.store.corpus, c.settings.classes, c.settings.protocol) for c in both}
    assert plans == {("iemocap", "5", "random"), ("crema-d", "4", "speaker-kfold")}


def test_a_store_twice_or_two_iemocap_stores_are_refused(store_path: Path, tmp_path: Path) -> None:
    _, cells = spec_of()
    with pytest.raises(ConfigError, match="is given twice"):
        resolve_cells(cells, [str(store_path), str(store_path)], tmp_path)
    other = tmp_path / "other.zarr"
    labelled_store(other, {"is13": SETS["is13"]}, per_dialog=2)
    with pytest.raises(ConfigError, match="both IEMOCAP stores"):
        resolve_cells(cells, [str(store_path), str(other)], tmp_path)


@pytest.mark.slow
def test_a_two_store_sweep_trains_each_cell_once_per_store_resumes_and_reports_per_corpus(
    store_path: Path, crema_store: Path, tmp_path: Path
) -> None:
    spec, cells = spec_of()
    resolved = resolve_cells(cells, [str(store_path), str(crema_store)], tmp_path)
    write_manifest(spec, resolved, tmp_path)
    first = run_sweep(resolved, tmp_path)
    assert sorted(o.status for o in first) == ["done"] * 4
    again = run_sweep(resolved, tmp_path)
    assert [o.status for o in again] == ["skipped"] * 4
    text = sweep_report(tmp_path)
    head = next(line for line in text.splitlines() if line.startswith("| cell |"))
    assert "UA IEMOCAP (ours)" in head and "UA CREMA-D (ours)" in head
    assert head.count("(paper)") == 2  # UA and WA beside IEMOCAP only
    assert "vs Full (IEMOCAP)" in head and "vs Full (CREMA-D)" in head
    assert "Ours on CREMA-D: speaker-kfold" in text and "Ours on IEMOCAP: loso" in text
    full = next(line for line in text.splitlines() if line.startswith("| Full |"))
    assert full.count("reference") == 2 and "| 76.40 | 75.20 |" in full
    csv = sweep_report(tmp_path, "csv").splitlines()
    assert csv[0].endswith(",corpus") and {line.split(",")[-1] for line in csv[1:]} == {
        "IEMOCAP",
        "CREMA-D",
    }


@pytest.mark.slow
def test_the_command_dry_runs_every_store(
    store_path: Path, crema_store: Path, tmp_path: Path
) -> None:
    stores = ("--store", str(store_path), "--store", str(crema_store))
    args = ["sweep", "msmser-table2", *stores, "--out", str(tmp_path), "--dry-run"]
    args += [x for k, v in FIXED.items() for x in ("--fix", f"{k}={v}")]
    args += [x for k, v in PARAMS.items() for x in ("--set", f"{k}={v}")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "12 cells: 0 finished, 12 to train (dry run):" in result.output
    assert "Full  on CREMA-D (classes 4)" in result.output and "speaker-kfold" in result.output
    assert "Full  on IEMOCAP (classes 4)" in result.output
    # The probe's rows are each store's layers: a store without any is named.
    probe = CliRunner().invoke(main, ["sweep", "probe", *stores, "--out", str(tmp_path)])
    assert probe.exit_code == 2 and f"{store_path} holds no layer sets to probe" in probe.output


@pytest.mark.slow
def test_a_figure_per_corpus_the_paper_beside_iemocap_only(
    store_path: Path, crema_store: Path, tmp_path: Path
) -> None:
    from ser.sweep.plots import _per_corpus, sweep_plots
    from ser.sweep.results import load_sweeps

    spec = load_spec("msmser-queries", params=PARAMS, fixed=FIXED)
    cells = [c for c in spec.cells if c.row.label in ("L = 2", "L = 30")]
    resolved = resolve_cells(cells, [str(store_path), str(crema_store)], tmp_path)
    write_manifest(spec, resolved, tmp_path)
    run_sweep(resolved, tmp_path)
    files = sweep_plots(tmp_path, tmp_path / "plots")
    names = sorted(f.name for f in files)
    assert names == ["msmser-queries_msmser-queries_CREMA-D.png",
                     "msmser-queries_msmser-queries_IEMOCAP.png"]  # fmt: skip
    groups = _per_corpus(load_sweeps(tmp_path)[0]["results"])
    assert [r.row["published"] for r in groups["CREMA-D"]] == [{}, {}]
    assert any(r.row["published"] for r in groups["IEMOCAP"])


@pytest.mark.slow
def test_the_command_trains_on_both_stores_resumes_and_reports_a_column_per_corpus(
    store_path: Path, crema_store: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "two.toml"  # Table 2's Text and Full: the preset's fixes, bound
    spec.write_text(
        'preset = "msmser-table2"\n[[cells]]\nlabel = "Text"\nfeatures = "{text}"\n'
        '[[cells]]\nlabel = "Full"\nfeatures = "{audio}+{text}"\n'
    )
    out = tmp_path / "sweep"
    args = ["sweep", str(spec), "--store", str(store_path), "--store", str(crema_store)]
    args += ["--out", str(out), *(x for k, v in FIXED.items() for x in ("--fix", f"{k}={v}"))]
    args += [x for k, v in PARAMS.items() for x in ("--set", f"{k}={v}")]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "cell 4/4 done: two 'Full' on CREMA-D" in first.output
    assert "4 cells, 4 trained, 0 finished before" in first.output
    again = CliRunner().invoke(main, args)
    assert "4 cells, 0 trained, 4 finished before" in again.output
    report = CliRunner().invoke(main, ["report", str(out)])
    assert report.exit_code == 0, report.output
    assert "UA IEMOCAP (ours)" in report.output and "UA CREMA-D (ours)" in report.output


def test_report_columns_name_stores_of_one_kind_apart() -> None:
    from ser.sweep.stores import StoreIdentity, columns

    def ident(path: str, corpus: str, title: str) -> StoreIdentity:
        return StoreIdentity(path, corpus, title, path)

    stores = [ident("/a/i.zarr", "iemocap", "IEMOCAP"), ident("/a/m.zarr", "meld", "MELD"),
              ident("/b/m.zarr", "meld", "MELD"), ident("/a/v1.zarr", "meld", "MELD")]  # fmt: skip
    assert columns(stores) == ["IEMOCAP", "MELD (m) #2", "MELD (m) #3", "MELD (v1)"]


def test_an_emobox_store_keeps_its_corpus_s_own_class_set() -> None:
    """EmoBox's leaderboard scores each corpus on its whole class set: a preset's IEMOCAP
    classes give way to the kind's default there (`ser train`'s), as to 4 elsewhere."""
    _, cells = spec_of()
    emobox = corpus_options(cells[0], StoreIdentity("/e", "emobox", "EmoBox", "0" * 16))
    assert emobox.options["classes"] is None  # ser train's default there: the kind's own
    assert KINDS["emobox"].classes == "all"
    crema = corpus_options(cells[0], StoreIdentity("/c", "crema-d", "CREMA-D", "0" * 16))
    assert crema.options["classes"] is None and KINDS["crema-d"].classes == "4"
