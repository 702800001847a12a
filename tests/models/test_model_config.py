"""Family selection, paper defaults, input planning, records and the ConfigErrors of bad
combinations (ser.models.config, registry)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ser.errors import ConfigError
from ser.models import (
    FAMILIES,
    FamilyConfig,
    FeatureInfo,
    ModelConfig,
    TrainDefaults,
    build_model,
    family_of,
    plan_inputs,
    register,
)
from ser.models.batch import InputSpec
from ser.models.registry import config_from_record, config_record
from ser.sweep.presets import FUSION_STUDY, ZHOU_PRESET

HUBERT = FeatureInfo("hubert.L12", "audio", "frame", 8)
WAVLM = FeatureInfo("wavlm.L12", "audio", "frame", 8)
IS13 = FeatureInfo("is13", "audio", "utterance", 20)
LOGMEL = FeatureInfo("logmel80", "audio", "frame", 16)
MPNET = FeatureInfo("mpnet", "text", "token", 12)
BERT = FeatureInfo("bert", "text", "token", 12)


@pytest.mark.parametrize(
    ("options", "family"),
    [
        ({"fusion": "mit"}, "msmser"),
        ({"fusion": "concat"}, "msmser"),
        ({"fusion": "concat", "fusion_at": "early"}, "dialog"),
        ({"fusion": "add", "fusion_at": "logits"}, "dialog"),
        ({"fusion": "attention", "fusion_at": "middle"}, "dialog"),
        ({"fusion": "none", "context": True}, "dialog"),
        ({"fusion": "late-prob"}, "late_prob"),
        ({"fusion": "none"}, "unimodal"),
        ({"fusion": "none", "context": None, "fusion_at": None}, "unimodal"),  # None: not given
    ],
)
def test_the_options_select_the_family(options: dict[str, object], family: str) -> None:
    config = ModelConfig(**options)
    assert family_of(config).name == family
    assert isinstance(config, FAMILIES[family].config)


def test_paper_defaults() -> None:
    msmser = ModelConfig(fusion="mit")
    assert (msmser.d_model, msmser.heads, msmser.queries, msmser.rmm) == (768, 8, 30, True)
    assert (msmser.rmm_p0, msmser.rmm_end, msmser.rmm_text) == (0.8, 0.7, 0.6)
    assert (msmser.loss, msmser.eval_mask) == ("single", None)  # what every family reads
    study = ModelConfig(fusion="add", fusion_at="logits")
    assert (study.d_model, study.heads, study.dropout) == (100, 4, 0.2)
    zhou = ModelConfig(fusion="late-prob")
    assert zhou.dropout == 0.6 and len(zhou.cnn_channels) == 5 and zhou.staged
    assert ModelConfig(fusion="mit", d_model=32, heads=4).d_model == 32  # given wins


def test_train_defaults_are_the_papers() -> None:
    """A family's optimiser settings are its paper's; its paper's class set and protocol
    are its sweep preset's (a run's defaults are the corpus kind's)."""
    m = family_of(ModelConfig(fusion="mit")).train
    assert (m.optimizer, m.lr, m.batch_size, m.epochs) == ("adam", 2e-5, 8, 100)
    w = family_of(ModelConfig(fusion="add", fusion_at="early")).train
    assert (w.lr, w.weight_decay, w.epochs, w.batch_size, w.seeds) == (1e-3, 1e-5, 150, 20, 20)
    z = family_of(ModelConfig(fusion="late-prob")).train
    assert (z.lr, z.weight_decay, z.epochs) == (1.5e-4, 1e-3, 15)
    assert not {"classes", "protocol"} & {f.name for f in dataclasses.fields(TrainDefaults)}
    assert FUSION_STUDY.fixed["protocol"] == "session5" and FUSION_STUDY.fixed["val"] == "none"
    assert (ZHOU_PRESET.fixed["classes"], ZHOU_PRESET.fixed["protocol"]) == ("5", "random")


def test_a_config_is_a_frozen_dataclass_that_checks_itself() -> None:
    config = ModelConfig(fusion="mit", d_model=16, heads=2)
    assert dataclasses.replace(config, rmm=False).rmm is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.rmm = False  # type: ignore[misc]
    with pytest.raises(ConfigError, match="not divisible by 3 heads"):
        dataclasses.replace(config, heads=3)
    with pytest.raises(ConfigError, match="--queries 5 does not apply to fusion 'concat'"):
        dataclasses.replace(config, fusion="concat", queries=5)


def test_plan_inputs_views_and_units() -> None:
    unit, specs = plan_inputs(ModelConfig(fusion="mit"), [IS13, MPNET])
    assert unit == "utterance" and [s.view for s in specs] == ["sequence", "sequence"]
    assert specs[0] == InputSpec("is13", "audio", 20, "sequence")
    unit, specs = plan_inputs(ModelConfig(fusion="add", fusion_at="late"), [HUBERT, MPNET])
    assert unit == "dialog" and [s.view for s in specs] == ["vector", "vector"]
    unit, specs = plan_inputs(ModelConfig(fusion="none", context=True), [BERT])
    assert unit == "dialog" and specs[0].view == "vector"
    unit, specs = plan_inputs(ModelConfig(fusion="late-prob"), [LOGMEL, BERT])
    assert unit == "utterance" and [s.view for s in specs] == ["sequence", "vector"]
    unit, specs = plan_inputs(ModelConfig(fusion="none"), [HUBERT])
    assert unit == "utterance" and specs[0].view == "vector"


def test_the_issue_example_builds_and_runs() -> None:
    config = ModelConfig(fusion="add", fusion_at="logits", loss="perspective", d_model=8, heads=2)
    _, specs = plan_inputs(config, [IS13, BERT])
    model = build_model(config, specs, n_classes=4)
    from ser.models.batch import Batch

    mask = torch.ones(2, 3, dtype=torch.bool)
    batch = Batch(
        x={"is13": torch.randn(2, 3, 20), "bert": torch.randn(2, 3, 12)},
        mask={},
        labels=torch.zeros(2, 3, dtype=torch.long),
        index=torch.zeros(2, 3),
        utt_mask=mask,
    )
    assert model(batch).logits.shape == (2, 3, 4)


@pytest.mark.parametrize(
    ("config", "features", "message"),
    [
        (ModelConfig(fusion="mit"), [HUBERT, WAVLM], r"mit.*hubert\.L12 \(audio, frame.*wavlm"),
        (ModelConfig(fusion="mit"), [HUBERT, MPNET, BERT], "one audio and/or one text"),
        (ModelConfig(fusion="mit"), [], "none"),
        (
            ModelConfig(fusion="late-prob"),
            [IS13, BERT],
            r"frame-level audio.*is13 \(audio, utterance",
        ),
        (ModelConfig(fusion="late-prob"), [LOGMEL], "one audio and one text"),
        (
            ModelConfig(fusion="add", fusion_at="early"),
            [BERT],
            r"'add' at early.*bert \(text, token",
        ),
        (ModelConfig(fusion="add", fusion_at="early"), [HUBERT, IS13], "one audio and one text"),
        (ModelConfig(fusion="none"), [HUBERT, BERT], "exactly one"),
        (ModelConfig(fusion="none", context=True), [HUBERT, BERT], "exactly one"),
        (ModelConfig(fusion="mit", eval_mask="text"), [MPNET], "both modalities"),
        (ModelConfig(fusion="late-prob", loss="perspective"), [LOGMEL], "an audio and a text"),
        (
            ModelConfig(fusion="mit"),
            [BERT, FeatureInfo("bert", "audio", "frame", 3)],
            "named twice",
        ),
        (ModelConfig(fusion="mit"), [FeatureInfo("x", "video", "frame", 3)], "modality of x"),
    ],
)
def test_impossible_feature_combinations(
    config: FamilyConfig, features: list[FeatureInfo], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_inputs(config, features)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fusion": "mit", "fusion_at": "early"}, "--fusion-at early does not apply to fusion 'm"),
        ({"fusion": "late-prob", "fusion_at": "logits"}, "not apply to fusion 'late-prob'"),
        ({"fusion": "add"}, "fusion .* needs --fusion-at early|middle"),
        ({"fusion": "attention"}, "fusion .* needs --fusion-at early|middle"),
        ({"fusion": "mit", "loss": "perspective"}, "--loss perspective does not apply"),
        ({"fusion": "none", "loss": "perspective"}, "--loss perspective does not apply"),
        ({"fusion": "add", "fusion_at": "late", "encoder": False},
         "--no-encoder does not apply to fusion 'add' at late"),
        ({"fusion": "late-prob", "selfatt": False}, "--no-selfatt does not apply"),
        ({"fusion": "add", "fusion_at": "late", "eval_mask": "text"}, "--eval-mask text does not"),
        ({"fusion": "concat", "queries": 10}, "--queries 10 does not apply to fusion 'concat'"),
        ({"fusion": "concat", "decoder_layers": 3}, "--decoder-layers 3 does not apply"),
        ({"fusion": "late-prob", "heads": 2}, "--heads 2 does not apply"),
        ({"fusion": "none", "heads": 2}, "--heads 2 does not apply to fusion 'none'"),
        ({"fusion": "mit", "cnn_channels": (4,)}, "--cnn-channels 4 does not apply"),
        ({"fusion": "mit", "context": True}, "--context does not apply to fusion 'mit'"),
        ({"fusion": "add", "fusion_at": "early", "context": True}, "context applies to fusion 'no"),
        ({"fusion": "none", "context": True, "fusion_at": "late"}, "--fusion-at late does not"),
        ({"fusion": "mit", "d_model": 30, "heads": 4}, "not divisible"),
        ({"fusion": "add", "fusion_at": "early", "d_model": 15, "heads": 1}, "odd"),
    ],
)  # fmt: skip
def test_inapplicable_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**options)


def test_an_option_every_config_reads_may_be_given_at_its_value() -> None:
    assert ModelConfig(fusion="mit", loss="single", eval_mask=None).loss == "single"
    assert ModelConfig(fusion="none", loss="single").eval_mask is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fusion": "gated"}, "unknown fusion 'gated'; choose mit|concat|add|attention|none"),
        ({"fusion": "add", "fusion_at": "deep"}, "unknown fusion_at"),
        ({"fusion": "add", "fusion_at": "late", "loss": "focal"}, "unknown loss"),
        ({"fusion": "mit", "eval_mask": "video"}, "unknown eval_mask"),
        ({"fusion": "mit", "queries": 0}, "queries must be at least 1"),
        ({"fusion": "mit", "dropout": 1.0}, "dropout must be below 1.0"),
        ({"fusion": "mit", "dropout": -0.1}, "dropout must be at least 0.0"),
        ({"fusion": "mit", "rmm_p0": 1.5}, "p0"),
        ({"fusion": "late-prob", "cnn_channels": ()}, "cnn_channels"),
    ],
)
def test_bad_values(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**options)


def test_build_model_checks_the_specs() -> None:
    config = ModelConfig(fusion="mit", d_model=8, heads=2)
    wrong_view = [
        InputSpec("hubert", "audio", 8, "vector"),
        InputSpec("mpnet", "text", 8, "sequence"),
    ]
    with pytest.raises(ConfigError, match="sequence view of hubert"):
        build_model(config, wrong_view, n_classes=4)
    with pytest.raises(ConfigError, match="at least 2 classes"):
        build_model(config, wrong_view, n_classes=1)


@pytest.mark.parametrize(
    "options",
    [
        {"fusion": "mit", "d_model": 16, "heads": 2, "eval_mask": "text"},
        {"fusion": "attention", "fusion_at": "middle", "loss": "perspective"},
        {"fusion": "late-prob", "cnn_channels": (2, 3), "staged": False},
        {"fusion": "none", "context": True},
        {"fusion": "none", "dropout": 0.5},
    ],
)
def test_a_config_record_reads_back(options: dict[str, object]) -> None:
    import json

    config = ModelConfig(**options)
    record = json.loads(json.dumps(config_record(config)))  # as a run.json holds it
    assert record["family"] == family_of(config).name
    assert config_from_record(record) == config


def test_a_record_without_a_family_is_read_by_the_family_its_options_select() -> None:
    """Records written before each family had its own config held every option."""
    old = {
        "fusion": "add", "fusion_at": "logits", "loss": "perspective", "queries": 30,
        "rmm": True, "encoder": True, "selfatt": True, "eval_mask": None, "d_model": 100,
        "heads": 4, "layers": 1, "decoder_layers": None, "dropout": 0.2, "context": False,
        "cnn_channels": None, "staged": None, "rmm_p0": 0.8, "rmm_end": 0.7, "rmm_text": 0.6,
    }  # fmt: skip
    assert config_from_record(old) == ModelConfig(
        fusion="add", fusion_at="logits", loss="perspective"
    )
    with pytest.raises(ConfigError, match="unknown model family 'gated'"):
        config_from_record({**old, "family": "gated"})


def test_a_family_is_registered_once() -> None:
    with pytest.raises(ValueError, match="'msmser' is registered already"):
        register(dataclasses.replace(FAMILIES["msmser"]))  # another family of that name
    assert register(FAMILIES["msmser"]) is FAMILIES["msmser"]  # the same again: a no-op


@pytest.mark.parametrize(
    "module",
    [
        "ser.models",
        "ser.models.config",
        "ser.train.option_table",
        "ser.train.identity",
        "ser.api.metrics",
        "ser.models.nn.blocks",
        "ser.models.nn.attention",
        "ser.models.nn.gru",
        "ser.models.rmm",
        "ser.models.losses",
    ],
)
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
