"""Family selection, paper defaults, input planning and the ConfigErrors of bad combos."""

from __future__ import annotations

import pytest
import torch

from ser.errors import ConfigError
from ser.train.batch import InputSpec
from ser.train.models import (
    FeatureInfo,
    ModelConfig,
    build_model,
    family_of,
    plan_inputs,
    resolve,
    train_defaults,
)
from ser.train.models.config import option_applies

HUBERT = FeatureInfo("hubert.L12", "audio", "frame", 8)
WAVLM = FeatureInfo("wavlm.L12", "audio", "frame", 8)
IS13 = FeatureInfo("is13", "audio", "utterance", 20)
LOGMEL = FeatureInfo("logmel80", "audio", "frame", 16)
MPNET = FeatureInfo("mpnet", "text", "token", 12)
BERT = FeatureInfo("bert", "text", "token", 12)


@pytest.mark.parametrize(
    ("config", "family"),
    [
        (ModelConfig(fusion="mit"), "msmser"),
        (ModelConfig(fusion="concat"), "msmser"),
        (ModelConfig(fusion="concat", fusion_at="early"), "dialog"),
        (ModelConfig(fusion="add", fusion_at="logits"), "dialog"),
        (ModelConfig(fusion="attention", fusion_at="middle"), "dialog"),
        (ModelConfig(fusion="none", context=True), "dialog"),
        (ModelConfig(fusion="late-prob"), "late_prob"),
        (ModelConfig(fusion="none"), "unimodal"),
    ],
)
def test_family_of(config: ModelConfig, family: str) -> None:
    assert family_of(config) == family


def test_paper_defaults() -> None:
    msmser = resolve(ModelConfig(fusion="mit"))
    assert (msmser.d_model, msmser.heads, msmser.queries, msmser.rmm) == (768, 8, 30, True)
    assert (msmser.rmm_p0, msmser.rmm_end, msmser.rmm_text) == (0.8, 0.7, 0.6)
    study = resolve(ModelConfig(fusion="add", fusion_at="logits"))
    assert (study.d_model, study.heads, study.dropout) == (100, 4, 0.2)
    zhou = resolve(ModelConfig(fusion="late-prob"))
    assert zhou.dropout == 0.6 and len(zhou.cnn_channels or ()) == 5
    assert resolve(ModelConfig(fusion="mit", d_model=32, heads=4)).d_model == 32  # given wins


def test_train_defaults_are_the_papers() -> None:
    m = train_defaults(ModelConfig(fusion="mit"))
    assert (m.optimizer, m.lr, m.batch_size, m.epochs, m.protocol) == ("adam", 2e-5, 8, 100, "loso")
    w = train_defaults(ModelConfig(fusion="add", fusion_at="early"))
    assert (w.lr, w.weight_decay, w.epochs, w.batch_size) == (1e-3, 1e-5, 150, 20)
    assert (w.protocol, w.seeds) == ("session5", 20)
    z = train_defaults(ModelConfig(fusion="late-prob"))
    assert (z.lr, z.weight_decay, z.epochs, z.classes, z.protocol) == (
        1.5e-4,
        1e-3,
        15,
        "5",
        "random",
    )


def test_plan_inputs_views_and_units() -> None:
    unit, specs = plan_inputs(ModelConfig(fusion="mit"), [IS13, MPNET])
    assert unit == "utterance" and [s.view for s in specs] == ["sequence", "sequence"]
    assert specs[0] == InputSpec("is13", "audio", 20, "sequence")
    unit, specs = plan_inputs(ModelConfig(fusion="add", fusion_at="late"), [HUBERT, MPNET])
    assert unit == "dialog" and [s.view for s in specs] == ["vector", "vector"]
    unit, specs = plan_inputs(ModelConfig(fusion="none", context=True), [BERT])
    assert unit == "dialog" and specs[0].view == "vector"


def test_the_issue_example_builds_and_runs() -> None:
    config = ModelConfig(fusion="add", fusion_at="logits", loss="perspective", d_model=8, heads=2)
    _, specs = plan_inputs(config, [IS13, BERT])
    model = build_model(config, specs, n_classes=4)
    from ser.train.batch import Batch

    mask = torch.ones(2, 3, dtype=torch.bool)
    batch = Batch(
        x={"is13": torch.randn(2, 3, 20), "bert": torch.randn(2, 3, 12)},
        mask={}, labels=torch.zeros(2, 3, dtype=torch.long), index=torch.zeros(2, 3), utt_mask=mask,
    )  # fmt: skip
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
        (
            ModelConfig(fusion="mit"),
            [BERT, FeatureInfo("bert", "audio", "frame", 3)],
            "named twice",
        ),
        (ModelConfig(fusion="mit"), [FeatureInfo("x", "video", "frame", 3)], "modality of x"),
    ],
)
def test_impossible_feature_combinations(
    config: ModelConfig, features: list[FeatureInfo], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_inputs(config, features)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fusion": "mit", "fusion_at": "early"}, "fusion-at applies to the fusion study"),
        ({"fusion": "late-prob", "fusion_at": "logits"}, "not to fusion 'late-prob'"),
        ({"fusion": "add"}, "give --fusion-at"),
        ({"fusion": "attention"}, "give --fusion-at"),
        ({"fusion": "mit", "loss": "perspective"}, "perspective loss does not apply"),
        ({"fusion": "none", "loss": "perspective"}, "perspective loss does not apply"),
        ({"fusion": "add", "fusion_at": "late", "encoder": False}, "no-encoder does not apply"),
        ({"fusion": "late-prob", "selfatt": False}, "no-selfatt does not apply"),
        ({"fusion": "add", "fusion_at": "late", "eval_mask": "text"}, "eval_mask does not apply"),
        ({"fusion": "concat", "queries": 10}, "queries does not apply"),
        ({"fusion": "late-prob", "heads": 2}, "heads does not apply"),
        ({"fusion": "mit", "cnn_channels": (4,)}, "cnn_channels does not apply"),
        ({"fusion": "mit", "context": True}, "context applies to fusion 'none'"),
        ({"fusion": "mit", "d_model": 30, "heads": 4}, "not divisible"),
        ({"fusion": "add", "fusion_at": "early", "d_model": 15, "heads": 1}, "odd"),
    ],
)
def test_inapplicable_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(ModelConfig(**options))  # type: ignore[arg-type]


def test_option_applies_is_the_table_resolve_refuses_by() -> None:
    study = ModelConfig(fusion="add", fusion_at="logits")
    applies = option_applies(study, family_of(study))
    assert applies["fusion_at"] and applies["loss"] and applies["heads"]
    assert not applies["queries"] and not applies["rmm"] and not applies["staged"]
    # every refused option is one the table says does not apply
    for field in ("queries", "encoder", "eval_mask", "cnn_channels"):
        assert not applies[field]
    mit = ModelConfig(fusion="mit")
    assert option_applies(mit, "msmser", n_sets=2)["rmm"]
    assert not option_applies(mit, "msmser", n_sets=1)["rmm"]  # one modality: nothing to mask
    assert option_applies(mit, "msmser")["queries"]
    assert not option_applies(ModelConfig(fusion="concat"), "msmser")["queries"]
    late = ModelConfig(fusion="late-prob")
    assert option_applies(late, "late_prob")["staged"]
    assert not option_applies(late, "late_prob")["heads"]
    fields = set(ModelConfig.__dataclass_fields__) - {"fusion"}
    assert set(applies) == fields


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fusion": "gated"}, "unknown fusion 'gated'; choose mit|concat"),
        ({"fusion": "add", "fusion_at": "deep"}, "unknown fusion_at"),
        ({"fusion": "mit", "loss": "focal"}, "unknown loss"),
        ({"fusion": "mit", "eval_mask": "video"}, "unknown eval_mask"),
        ({"fusion": "mit", "queries": 0}, "queries must be at least 1"),
        ({"fusion": "mit", "dropout": 1.0}, "dropout"),
        ({"fusion": "mit", "rmm_p0": 1.5}, "p0"),
        ({"fusion": "late-prob", "cnn_channels": ()}, "cnn_channels"),
    ],
)
def test_bad_values(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**options)  # type: ignore[arg-type]


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
    "module",
    [
        "ser.train.models",
        "ser.train.models.config",
        "ser.train.nn.layers",
        "ser.train.nn.stacked",
        "ser.train.nn.noise",
        "ser.train.nn.attention",
        "ser.train.nn.gru",
        "ser.train.nn.conv",
        "ser.train.stack",
        "ser.train.rmm",
        "ser.train.losses",
    ],
)
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
