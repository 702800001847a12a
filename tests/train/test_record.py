"""A run record's config is derived from the options' declaration (`TrainConfig`'s
fields, each `Recorded` or declared `unrecorded`): an option declared with its record
metadata reaches run.json with no other edit, and the keys come in the order of the
declaration."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ser.corpus.registry import KINDS
from ser.models.config import option
from ser.runs.record import RECORD
from ser.train.option_table import train_config
from ser.train.options import Recorded, ResolvedConfig, TrainConfig
from ser.train.plan import resolve
from ser.train.recipe import train
from ser.train.record import config_record
from tests.train.conftest import SETS, small_config

# A default run's config keys, in the order of their declaration.
KEYS = ["store", "features", "family", "fusion", "d_model", "dropout"]
KEYS += ["classes", "protocol", "val", "epochs", "batch_size", "lr", "weight_decay"]
KEYS += ["grad_clip", "seed", "seeds", "patience", "class_weights", "test_store", "test"]
KEYS += ["finetune", "target", "attribute_loss", "attribute_weight", "labels", "calibrate"]
KEYS += ["sampler", "augment", "mask_time", "mask_features", "mixup", "views", "device"]
KEYS += ["precision", "out", "name"]


@dataclass(frozen=True, kw_only=True)
class Dithered(TrainConfig):
    """A training option added as any is: declared, with how a record holds it."""

    dither: float = option(0.0, "Noise added to the inputs.", record=Recorded(off=0.0))


@dataclass(frozen=True, kw_only=True)
class ResolvedDithered(ResolvedConfig, Dithered):
    """What a `Dithered` run trains with: its resolved type, declared beside it."""


def test_every_option_is_recorded_or_says_why_it_cannot_change_a_result() -> None:
    for f in dataclasses.fields(TrainConfig):
        recorded, why = f.metadata.get("record"), f.metadata.get("unrecorded")
        assert (recorded is None) != (why is None), f.name
        assert recorded is None or isinstance(recorded, Recorded), f.name
        assert why is None or (isinstance(why, str) and why), f.name


def test_the_record_s_keys_are_in_the_order_records_hold_them() -> None:
    config = train_config({"store": "s.zarr", "features": "is13", "fusion": "none"})
    record = config_record(resolve(config, KINDS["iemocap"]))
    assert list(record) == KEYS
    streamed = config_record(resolve(config, KINDS["iemocap"]), None, ["is13"])
    assert list(streamed) == [*KEYS, "streamed"] and streamed["streamed"] == ["is13"]


@pytest.fixture(scope="module")
def store(labelled_stores: Callable[..., Path]) -> Path:
    return labelled_stores({"is13": SETS["is13"]})


def test_a_new_option_declared_with_its_record_reaches_run_json(
    store: Path, tmp_path: Path
) -> None:
    base = small_config(store, tmp_path, epochs=1, protocol="session5", processes=1)
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    done = train(Dithered(**fields, dither=0.5))
    written = json.loads((tmp_path / done.name / RECORD).read_text())["config"]
    assert written["dither"] == 0.5 and list(written)[-1] == "dither"
    resolved = resolve(Dithered(**fields), KINDS["iemocap"])
    assert config_record(resolved)["dither"] is None  # off: null
