"""The generic tests' parameters are the registries (tests/registries.py): a family,
corpus kind, extractor kind or head registered in-process, or by a plugin named in
`SER_PLUGINS`, is in them and passes them with no test table edited; the cost reference
tables take a family they never knew. And every registered extractor kind and head builds
under its name and is what `ser extract --features` and `ser train --target` take."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

import tests.corpus.test_a_new_kind as studio_kind
import tests.corpus.test_every_kind as every_kind
import tests.extract.test_every_extractor as every_extractor
import tests.heads.test_every_head as every_head_tests
import tests.runtime.test_cost as cost_tables
import tests.train.test_every_family as every_family
from ser.cli import main
from ser.corpus.registry import KINDS as CORPUS_KINDS
from ser.extract.registry import KINDS as EXTRACTOR_KINDS
from ser.extract.registry import Kind, build_extractor
from ser.heads.registry import HEADS, head_of
from ser.heads.targets import Targets
from ser.models import FAMILIES, Family, TrainDefaults, register
from ser.runtime.cost import FamilyCost
from ser.runtime.plugins import ENV
from tests.extract.test_registry import ZcrExtractor, ZcrOptions
from tests.families import FAMILY
from tests.heads.test_a_new_head import DurationHead
from tests.registries import (
    every_head,
    registered_corpus_kinds,
    registered_extractor_kinds,
    registered_families,
    registered_heads,
    tiny_features,
)
from tests.train.conftest import SETS

# Measured (made up here): no reference table of tests/runtime/test_cost.py lists it.
COST = FamilyCost(stack_width=64, rate=(1e-5, 1e-8), min_seconds=30.0, thread_gain=1.2)


@pytest.fixture
def new_family(new_family: Callable[..., Family]) -> str:
    """tests/families.py's family as one of ser's own is: its cost stated, its `tiny`
    options (dropout 0) given."""
    return new_family(train=TrainDefaults(2, 8, 1e-2, 0.0), cost=COST, tiny={"dropout": 0.0}).name


@pytest.fixture(scope="module")
def store_path(labelled_stores: Callable[..., Path]) -> Path:
    return labelled_stores(SETS)  # tests/train's store, which tiny_features picks from


def test_a_new_family_is_trained_by_the_generic_tests(
    new_family: str, store_path: Path, tmp_path: Path
) -> None:
    assert new_family in registered_families()
    assert tiny_features(new_family) == ("hubert-tiny.L2", "bert-tiny")  # the first it takes
    every_family.test_a_stacked_member_is_the_member_alone(new_family, store_path, tmp_path / "a")
    every_family.test_a_run_saves_loads_and_resumes(new_family, store_path, tmp_path / "b")


def test_a_new_familys_cost_needs_no_entry_in_the_reference_tables(new_family: str) -> None:
    cost_tables.test_the_reference_tables_name_registered_families()
    assert cost_tables.reference(new_family) is COST
    for other in ("dialog", "unimodal"):
        group = frozenset({new_family, other})
        cost_tables.test_training_chooses_as_the_old_tables_did(group)
        cost_tables.test_sweeps_choose_as_the_old_tables_did(group)


def test_a_family_whose_small_model_draws_random_numbers_fails_the_stacked_test(
    store_path: Path, tmp_path: Path
) -> None:
    """Without its `tiny` (dropout 0), a family is tested at its defaults: two trainings
    of one member then draw other dropout masks, which the test catches."""
    register(replace(FAMILY, name="noisy", train=TrainDefaults(2, 8, 1e-2, 0.0)))
    try:
        with pytest.raises(AssertionError):
            every_family.test_a_stacked_member_is_the_member_alone("noisy", store_path, tmp_path)
    finally:
        del FAMILIES["noisy"]


def test_a_new_corpus_kind_is_read_by_the_generic_tests(tmp_path: Path) -> None:
    CORPUS_KINDS.add(studio_kind.kind())  # test_a_new_kind.py's kind, its one line
    try:
        assert "studio" in registered_corpus_kinds()
        every_kind.test_every_kind_reads_and_summarises_its_synthetic_corpus("studio", tmp_path)
    finally:
        del CORPUS_KINDS["studio"]


def test_a_new_extractor_kind_is_extracted_by_the_generic_tests(tmp_path: Path) -> None:
    """tests/extract/test_registry.py's kind (it loads no model: its defaults are its
    small self), registered with its one line."""
    EXTRACTOR_KINDS.add(Kind("zcr", ZcrOptions, ZcrExtractor, "zero-crossing rate"))
    try:
        assert "zcr" in registered_extractor_kinds()
        corpus = every_extractor.small_corpus(tmp_path / "corpus")
        every_extractor.test_every_kind_extracts_its_tiny_self_into_a_store_and_resumes(
            "zcr", corpus, tmp_path / "zcr"
        )
    finally:
        del EXTRACTOR_KINDS["zcr"]


def test_a_new_head_is_trained_by_the_generic_tests(tmp_path: Path) -> None:
    """tests/heads/test_a_new_head.py's head (an utterance's duration, which the
    synthetic corpora's manifests hold), registered with its one line."""
    HEADS.add(DurationHead)
    try:
        assert "duration" in every_head()
        find = every_head_tests.GoldFinder(tmp_path / "stores")
        every_head_tests.test_every_heads_loss_is_finite_and_has_gradients("duration", find)
        every_head_tests.test_every_heads_scores_read_back_from_a_fold_entry("duration", find)
        every_head_tests.test_every_heads_part_of_the_predictions_reads_back(
            "duration", find, tmp_path
        )
        every_head_tests.test_a_tiny_run_with_every_head_trains_and_its_record_reads(
            "duration", find, tmp_path
        )
    finally:
        del HEADS["duration"]


PLUGIN = """
from ser.extract.registry import Kind, register as add_kind
from ser.heads.registry import register as add_head
from ser.models import Family, TrainDefaults, register
from tests.extract.test_registry import ZcrExtractor, ZcrOptions
from tests.heads.test_a_new_head import DurationHead
from tests.families import MeanLogits, MeanLogitsConfig

register(Family("plugged", MeanLogitsConfig, MeanLogits, TrainDefaults(2, 8, 1e-2, 0.0),
                tiny={"dropout": 0.0}))
add_kind(Kind("zcr", ZcrOptions, ZcrExtractor, "zero-crossing rate"))
add_head(DurationHead)
"""


def test_a_plugins_family_kind_and_head_are_in_the_generic_tests_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parameters are read after `load_plugins`: a family, an extractor kind and a
    head of `SER_PLUGINS` are in them (the suite run with SER_PLUGINS set trains and
    extracts them as it does ser's own)."""
    (tmp_path / "h_plugged.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(ENV, "h_plugged")
    try:
        assert "plugged" in registered_families()
        assert "zcr" in registered_extractor_kinds() and "duration" in registered_heads()
        assert every_head()[-1] == "duration"
    finally:
        FAMILIES.pop("plugged", None)
        EXTRACTOR_KINDS.pop("zcr", None)
        HEADS.pop("duration", None)
        sys.modules.pop("h_plugged", None)


@pytest.mark.parametrize("name", registered_extractor_kinds())
def test_every_extractor_kind_builds_as_itself_and_is_a_features_choice(name: str) -> None:
    kind = EXTRACTOR_KINDS[name]
    given = {} if kind.by_default else {"model": "/models/m"}  # a kind without a default
    assert build_extractor(name, **given).kind == name
    shown = "".join(CliRunner().invoke(main, ["extract", "--help"]).output.split())
    assert name in shown.split("--featuresTEXTComma-separatedextractorstorun,of")[1][:200]


@pytest.mark.parametrize("name", registered_heads())
def test_every_head_builds_under_its_name_and_is_a_target(name: str) -> None:
    assert head_of(name).name == name and HEADS[name].name == name
    targets = Targets.parse(f"emotion+{name}")
    assert [h.name for h in targets.heads] == ["emotion", name]
