"""Run orchestration (ser.train.recipe): records, seeds, resume and its refusals."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import ser.train.recipe as run_module
from ser.cache import FeatureStore
from ser.corpus.registry import KINDS
from ser.errors import ConfigError, FingerprintMismatch, StoreError
from ser.heads.metrics import mean_std
from ser.models import ModelConfig
from ser.report.runs import load_run, protocol_label
from ser.runs.fold_entry import Sizes
from ser.runs.record import write
from ser.runtime.device import pick_device
from ser.train.recipe import Progress, TrainConfig, json_summary, resolve, train
from tests.stores import SetSpec, add_incomplete_set, labelled_store

from .conftest import SETS, small_config

IEMOCAP = KINDS["iemocap"]


def build_store(path: Path, sets: dict[str, SetSpec] = SETS, **kwargs: Any) -> FeatureStore:
    return labelled_store(path, sets, **kwargs)


def config(store: Path, out: Path, **changes: Any) -> TrainConfig:
    return small_config(store, out, **changes)


class Recorder(Progress):
    def __init__(self) -> None:
        self.started: list[tuple[int, str]] = []
        self.messages: list[str] = []

    def message(self, text: str) -> None:
        self.messages.append(text)

    def fold_start(self, seed: int, fold: str, epochs: int) -> None:
        self.started.append((seed, fold))


def test_run_directory_holds_a_complete_record(store_path: Path, tmp_path: Path) -> None:
    progress = Recorder()
    record = train(config(store_path, tmp_path), progress)
    run_dir = tmp_path / "is13_none_loso_c4"
    on_disk = load_run(run_dir)  # the report's reader accepts it
    assert on_disk == record
    assert json.loads((run_dir / "run.json").read_text()) == json.loads(
        json.dumps(record.to_json())
    )
    assert sorted(p.name for p in run_dir.iterdir()) == [  # no temp files
        ".lock",  # what another training of the run is refused by (empty once ended)
        "checkpoints",
        "predictions.csv",
        "run.json",
    ]
    assert record.complete is True and record.protocol == "loso"
    assert record.speaker_independent is True
    assert record.classes == ("neu", "hap", "sad", "ang")
    cfg = record.config
    assert cfg["features"] == "is13" and cfg["fusion"] == "none" and cfg["classes"] == "4"
    assert cfg["epochs"] == 4 and cfg["batch_size"] == 8 and cfg["lr"] == 1e-2
    assert cfg["seeds"] == [0] and cfg["d_model"] == 256  # family defaults resolved
    assert record.fingerprints == {"is13": FeatureStore.open(store_path).info("is13").fingerprint}
    assert record.version and record.store == str(store_path.resolve())
    assert [f.fold for f in record.folds] == [f"fold{s}" for s in range(1, 6)]
    for fold in record.folds:
        curves = fold.curves
        assert curves["epoch"] == [1, 2, 3, 4]
        assert all(len(curves[k]) == 4 for k in ("train_loss", "val_loss", "val_ua", "val_wa"))
        # Best validation UA, ties broken by the lower validation loss.
        keys = list(zip(curves["val_ua"], (-v for v in curves["val_loss"]), strict=True))
        assert fold.best_epoch == 1 + keys.index(max(keys))
        assert fold.seconds > 0
        # 12 utterances per session, 10 of them in the 4-class set (exc counts as hap).
        assert np.sum(fold.metrics.confusion) == fold.metrics.n == 10
    assert record.pooled.n == 50
    assert record.summary["seeds"] == 1
    assert record.summary["ua"] > 60  # the features carry class signal
    assert None not in (record.timings.load, record.timings.folds, record.timings.wall)
    assert record.data.dropped == {"label outside class set 4": 10}
    assert any("dropped 10" in m for m in progress.messages)


def test_json_summary_keys_types_and_consistency(store_path: Path, tmp_path: Path) -> None:
    record = train(config(store_path, tmp_path))
    summary = json_summary(record)
    assert list(summary) == ["wa", "ua", "f1", "wa_std", "ua_std", "folds", "protocol", "seconds"]
    for key in ("wa", "ua", "f1", "wa_std", "ua_std", "seconds"):
        assert isinstance(summary[key], float)
    assert summary["protocol"] == "loso" and len(summary["folds"]) == 5
    for key in ("wa", "ua", "f1"):
        per_fold = [f[key] for f in summary["folds"]]
        assert summary[key] == pytest.approx(np.mean(per_fold))
    assert summary["ua_std"] == pytest.approx(mean_std([f["ua"] for f in summary["folds"]])[1])
    assert summary["folds"][0]["ua"] == record.folds[0].metrics.ua


def test_two_seeds_give_mean_and_std_over_seeds(store_path: Path, tmp_path: Path) -> None:
    record = train(config(store_path, tmp_path, protocol="session5", seeds=2, seed=3))
    assert [(f.seed, f.fold) for f in record.folds] == [(3, "session5"), (4, "session5")]
    summary = record.summary
    uas = [f.metrics.ua for f in record.folds]
    assert summary["seeds"] == 2 and summary["std_over"] == "seeds"
    assert (summary["ua"], summary["ua_std"]) == pytest.approx(mean_std(uas))
    assert record.config["seeds"] == [3, 4]


def test_resume_skips_finished_folds_and_reproduces(store_path: Path, tmp_path: Path) -> None:
    cfg = config(store_path, tmp_path, members_at_once=8)  # stacked (the CPU's default: 1)
    full = train(cfg)
    path = tmp_path / full.name / "run.json"
    write(path, replace(full, folds=full.folds[:2], complete=False))  # as if killed after fold 2
    progress = Recorder()
    resumed = train(cfg, progress)
    # The three missing folds train as the members of one stacked model.
    assert progress.started == [(0, "fold3..fold5 x seed 0 (3 members stacked)")]
    assert any("resuming" in m for m in progress.messages)
    assert resumed.complete is True
    # CPU runs are deterministic: the retrained folds score exactly as before.
    assert [f.metrics for f in resumed.folds] == [f.metrics for f in full.folds]
    # A finished run resumes to itself without training anything.
    again = Recorder()
    train(cfg, again)
    assert again.started == []


def test_a_run_recorded_when_configs_held_every_family_s_options_resumes(
    store_path: Path, tmp_path: Path
) -> None:
    cfg = config(store_path, tmp_path, protocol="session5", seeds=2, name="old")
    full = train(cfg)
    path = tmp_path / full.name / "run.json"
    every = {"fusion_at": None, "loss": "single", "queries": 30, "rmm": True, "encoder": True,
             "context": False, "cnn_channels": None, "staged": None, "eval_mask": None}  # fmt: skip
    # As an older ser wrote it: no format, each side's sessions as `*_sessions`.
    old = {
        **full.to_json(),
        "config": {**every, **full.config},
        "folds": full.to_json()["folds"][:1],
    }
    del old["format"]
    for entry in old["folds"]:
        entry["test_sessions"] = entry.pop("test_groups")
        entry["val_sessions"] = entry.pop("val_groups")
        assert entry.pop("group") == "session"
    path.write_text(json.dumps(old))
    resumed = train(cfg)
    assert resumed.complete and [f.seed for f in resumed.folds] == [0, 1]
    assert resumed.folds[0] == full.folds[0]  # read back as it was recorded
    rewritten = json.loads(path.read_text())
    assert rewritten["format"] == 2 and "test_sessions" not in rewritten["folds"][0]
    with pytest.raises(ConfigError, match=r"another config \(d_model: 256 -> 8\)"):
        train(replace(cfg, model=replace(cfg.model, d_model=8)))


def test_resume_refuses_other_config_or_features(tmp_path: Path) -> None:
    store_path = tmp_path / "own.zarr"
    build_store(store_path)
    cfg = config(store_path, tmp_path / "runs", protocol="session5", epochs=1)
    train(cfg)
    with pytest.raises(ConfigError, match=r"another config \(lr: 0.01 -> 0.001\).*--overwrite"):
        train(replace(cfg, lr=1e-3))
    # The store's is13 is recomputed with other settings: its fingerprint changes.
    store = FeatureStore.open(store_path, mode="a")
    attrs = {**store.info("is13").attrs, "seed": 99}
    attrs = {k: v for k, v in attrs.items() if k not in ("fingerprint", "complete")}
    store.begin_feature_set("is13", attrs, overwrite=True)
    store.shard_writer("is13").write(
        0, {i: np.ones((1, 7)) for i in range(len(store.manifest))}, {}
    )
    store.consolidate("is13", 1)
    changed = r"other features.*is13: [0-9a-f]{12}\.\.\. -> [0-9a-f]{12}\.\.\."
    with pytest.raises(FingerprintMismatch, match=changed):
        train(cfg)
    fresh = train(replace(cfg, overwrite=True))
    assert fresh.fingerprints["is13"] == store.info("is13").fingerprint


def test_missing_and_incomplete_feature_sets_are_refused(store_path: Path, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="'mpnet' is not in the store"):
        train(config(store_path, tmp_path, features=("mpnet",)))
    path = tmp_path / "partial.zarr"
    store = build_store(path, sets={"is13": SETS["is13"]})
    add_incomplete_set(store)
    with pytest.raises(StoreError, match=r"'logmel80'.*incomplete"):
        train(config(path, tmp_path, features=("logmel80",)))
    assert not (tmp_path / "logmel80_none_loso_c4").exists()


def test_dialog_fusion_run(store_path: Path, tmp_path: Path) -> None:
    model = ModelConfig(fusion="add", fusion_at="logits", loss="perspective")
    cfg = config(
        store_path,
        tmp_path,
        features=("is13", "bert"),
        model=model,
        protocol=None,
        epochs=2,
        batch_size=None,
        lr=None,
    )
    resolved = resolve(cfg, IEMOCAP)  # the family's batch and lr; the corpus's protocol
    assert (resolved.protocol, resolved.batch_size, resolved.lr, resolved.name) == (
        "loso",
        20,
        1e-3,
        "is13+bert_add-logits-perspective_loso_c4",
    )
    cfg = replace(cfg, protocol="session5")  # the paper's (its preset's), one fold
    record = train(cfg)
    assert [f.fold for f in record.folds] == ["session5"]
    assert record.folds[0].sizes == Sizes(train=30, val=10, test=10)
    assert record.config["fusion_at"] == "logits" and record.config["loss"] == "perspective"
    assert set(record.fingerprints) == {"is13", "bert-tiny"}
    # The same under bf16 autocast, explicitly (auto gives fp32 on CPUs without bf16).
    bf16 = train(replace(cfg, precision="bf16", name="bf16"))
    assert bf16.config["precision"] == "bf16"
    assert np.isfinite(bf16.folds[0].metrics.ua)


def test_msmser_sequence_run_with_eval_mask(store_path: Path, tmp_path: Path) -> None:
    model = ModelConfig(fusion="mit", d_model=8, heads=2, layers=1, queries=2, eval_mask="text")
    both = {"features": ("hubert", "bert"), "protocol": "session5", "epochs": 2}
    cfg = config(store_path, tmp_path, model=model, batch_size=4, **both)
    record = train(cfg)
    assert (
        record.name == "hubert+bert_mit_session5_c4_queries2_eval-mask-text_d-model8_heads2_layers1"
    )
    assert record.config["eval_mask"] == "text" and record.config["queries"] == 2
    assert record.folds[0].metrics.n == 10


def test_bad_options_fail_before_any_work(store_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--epochs must be at least 1"):
        resolve(config(store_path, tmp_path, epochs=0), IEMOCAP)
    with pytest.raises(ConfigError, match="IEMOCAP has no protocol 'lopo'"):
        resolve(config(store_path, tmp_path, protocol="lopo"), IEMOCAP)
    with pytest.raises(ConfigError, match="takes exactly one feature set"):
        train(config(store_path, tmp_path, features=("is13", "bert")))


def test_precision_is_resolved_recorded_and_guards_resume(store_path: Path, tmp_path: Path) -> None:
    assert resolve(config(store_path, tmp_path, precision="fp32"), IEMOCAP).precision == "fp32"
    with pytest.raises(ConfigError, match="unknown precision 'half'"):
        resolve(config(store_path, tmp_path, precision="half"), IEMOCAP)
    # "auto" trains in float32 on a CPU (bf16 is opt-in).
    assert resolve(config(store_path, tmp_path), IEMOCAP).precision == "fp32"
    cfg = config(store_path, tmp_path, protocol="session5", epochs=2, precision="bf16")
    record = train(cfg)
    assert record.config["precision"] == "bf16"
    assert record.config["device"] == str(pick_device("auto"))  # resolved, not "auto"
    assert record.summary["ua"] > 50.0  # bf16 autocast trains as well here
    with pytest.raises(ConfigError, match=r"another config \(precision: 'bf16' -> 'fp32'\)"):
        train(replace(cfg, precision="fp32"))


def test_late_prob_trains_each_branch_before_the_whole_model(
    store_path: Path, tmp_path: Path
) -> None:
    model = ModelConfig(fusion="late-prob", d_model=8, cnn_channels=(4, 4, 4, 4, 4))
    both = {"features": ("hubert", "bert"), "protocol": "session5", "epochs": 2}
    cfg = config(store_path, tmp_path, model=model, **both)
    progress = Recorder()
    record = train(cfg, progress)
    entry = record.folds[0]
    assert record.config["staged"] is True
    assert set(entry.stages) == {"audio", "text"}
    for stage in entry.stages.values():
        assert len(stage.curves["val_ua"]) == 2 and 1 <= stage.best_epoch <= 2
        assert stage.seconds < entry.seconds
    assert [m for m in progress.messages if "stage" in m] == [
        "stage 1 of 3: audio alone",
        "stage 2 of 3: text alone",
        "stage 3 of 3: the whole model",
    ]
    one = train(replace(cfg, model=replace(model, staged=False), name="one_stage"))
    assert one.config["staged"] is False and "stages" not in one.folds[0].to_json()


def test_training_flushes_denormals_and_restores_the_setting(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Denormals made CPU epochs 10-25x slower; the run flushes them, then restores."""
    seen: list[bool] = []
    original = run_module.start_record

    def spy(*args: Any) -> Any:
        tiny = torch.tensor([1e-39], dtype=torch.float32)  # below float32's normal range
        seen.append(bool((tiny * 1.0) == 0))
        return original(*args)

    monkeypatch.setattr(run_module, "start_record", spy)
    train(config(store_path, tmp_path, epochs=1))
    assert seen == [True]
    assert float(torch.tensor([1e-39]) * 1.0) != 0.0  # the default again afterwards


def test_val_none_trains_on_every_training_session_and_tests_the_last_epoch(
    store_path: Path, tmp_path: Path
) -> None:
    record = train(config(store_path, tmp_path, protocol="session5", val="none", epochs=3))
    [entry] = record.folds
    assert entry.sizes.val == 0 and entry.val_groups == ()
    held_out = train(config(store_path, tmp_path, protocol="session5", epochs=3, name="held"))
    assert entry.sizes.train == held_out.folds[0].sizes.train + (
        held_out.folds[0].sizes.val
    )  # the validation session is trained on
    assert entry.best_epoch == 3  # nothing selected: the last epoch is tested
    assert all(math.isnan(v) for v in entry.curves["val_ua"])
    assert record.validation.startswith("none: all training sessions, fixed epochs")
    assert protocol_label(load_run(tmp_path / record.name)).endswith("val none (last epoch)")
    with pytest.raises(ConfigError, match="--val none has no validation side"):
        resolve(config(store_path, tmp_path, val="none", patience=2), IEMOCAP)
