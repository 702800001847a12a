"""A run's training identity, name, record, resume comparison and report settings are
derived from its options' declarations (`ser.train.options.Recorded`), never listed by
hand: an option declared in this module, and nowhere else, is recorded, compared on
resume, part of the training identity (two runs that differ only by it train apart),
shown by `ser report` and named in the run's name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from ser.corpus.registry import KINDS
from ser.errors import ConfigError
from ser.models.config import option
from ser.report.runs import settings_label
from ser.train import options
from ser.train.identity import member_key, run_key
from ser.train.option_table import train_config, train_options
from ser.train.options import Recorded, ResolvedConfig, TrainConfig
from ser.train.plan import resolve
from ser.train.recipe import train, train_many
from tests.train.conftest import SETS
from tests.train.test_shared_training import selections


@dataclass(frozen=True, kw_only=True)
class Jittered(TrainConfig):
    """A throwaway training option, declared as any option is and nowhere else."""

    jitter: float | None = option(
        None, "Noise added to the inputs (a throwaway).", above=0.0, record=Recorded()
    )


@dataclass(frozen=True, kw_only=True)
class ResolvedJittered(ResolvedConfig, Jittered):
    """What a `Jittered` run trains with."""


@pytest.fixture
def declared(monkeypatch: pytest.MonkeyPatch) -> None:
    """`ser train`'s options are `Jittered`'s for this test (the table, the report)."""
    monkeypatch.setattr(options, "TrainConfig", Jittered)


@pytest.fixture(scope="module")
def store(labelled_stores: Callable[..., Path]) -> Path:
    return labelled_stores({"is13": SETS["is13"]})


def asked(store: Path, out: Path, **values: object) -> TrainConfig:
    base = {"store": str(store), "features": "is13", "fusion": "none", "classes": "4"}
    base |= {"protocol": "session5", "epochs": "1", "batch_size": "8", "device": "cpu"}
    return train_config(base | {"out": str(out), "processes": "1"} | values)


def test_an_option_declared_once_reaches_the_table_the_name_and_the_identity(
    declared: None, tmp_path: Path
) -> None:
    assert "jitter" in train_options()
    on = asked(tmp_path, tmp_path, jitter="0.5")
    assert isinstance(on, Jittered) and on.jitter == 0.5
    resolved = resolve(on, KINDS["iemocap"])
    assert isinstance(resolved, ResolvedJittered) and resolved.jitter == 0.5
    assert resolved.name == "is13_none_session5_c4_jitter0.5"
    off = resolve(asked(tmp_path, tmp_path), KINDS["iemocap"])
    assert off.name == "is13_none_session5_c4"  # off: the name it always had
    assert run_key(resolved) != run_key(off)
    assert member_key(resolved) == member_key(off)  # it is not a member's own (patience)


def test_an_option_declared_once_is_recorded_compared_shown_and_trains_apart(
    declared: None, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = selections(monkeypatch)  # the members each select call trains
    on = replace(asked(store, tmp_path, jitter="0.5"), name="on", members_at_once=8)
    off = replace(on, name="off", jitter=None)
    jittered, plain = train_many([on, off])
    assert sum(calls) == 2  # one member each: apart, never one member for both runs
    assert jittered.config["jitter"] == 0.5 and plain.config["jitter"] is None
    assert "jitter=0.5" in settings_label(jittered)
    assert "jitter" not in settings_label(plain)
    with pytest.raises(ConfigError, match="jitter"):
        train(replace(on, jitter=0.7))  # the same run asked otherwise: refused on resume
