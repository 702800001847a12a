"""The registries as the generic tests read them (`from tests.registries import ...`).

The tests that every model family, corpus kind, extractor kind and head must pass take
their parameters from here, so an entry registered anywhere (a module of ser's own, a
test's fixture, or a plugin named in `SER_PLUGINS` or installed with an entry point,
which `load_plugins` imports first) goes through them with no test table edited.

What an entry needs to be tested it states itself: a family its small model
(`Family.tiny`), a corpus kind its synthetic writer (`CorpusKind.synthetic`). The inputs
a family's small model trains on are the first of a test's candidate sets its `plan`
takes (`tiny_model`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ser.errors import ConfigError
from ser.models import FAMILIES, FamilyConfig, FeatureInfo, plan_inputs
from ser.models.config import as_flag, field_defaults
from ser.runtime.plugins import load_plugins

# (name, modality, level, dim): the sets of tests/train/conftest.py's `SETS` store.
HUBERT = FeatureInfo("hubert-tiny.L2", "audio", "frame", 6)
IS13 = FeatureInfo("is13", "audio", "utterance", 7)
BERT = FeatureInfo("bert-tiny", "text", "token", 5)
#: What a family's small model trains on there: both modalities' sequences, both as
#: vectors, then one set alone (the first of these its `plan` takes).
INPUTS: tuple[tuple[FeatureInfo, ...], ...] = (
    (HUBERT, BERT),
    (IS13, BERT),
    (HUBERT,),
    (IS13,),
    (BERT,),
)


def registered_families() -> list[str]:
    """Every registered model family, plugins' included, in registry order."""
    load_plugins()
    return list(FAMILIES)


def registered_corpus_kinds() -> list[str]:
    """Every registered corpus kind, plugins' included."""
    from ser.corpus.registry import KINDS

    load_plugins()
    return list(KINDS)


def registered_extractor_kinds() -> list[str]:
    """Every registered extractor kind, plugins' included."""
    from ser.extract.registry import KINDS

    load_plugins()
    return list(KINDS)


def registered_heads() -> list[str]:
    """Every registered head, plugins' included."""
    from ser.heads.registry import HEADS

    load_plugins()
    return list(HEADS)


def every_head() -> list[str]:
    """Every head a run can have, as `--target` names it: the category, the attributes
    (`ser.heads.targets.Targets` holds them itself) and every registered head."""
    from ser.heads.recorded import kinds

    load_plugins()
    return [kind.name for kind in kinds()]


def tiny_model(
    family: str, inputs: Sequence[Sequence[FeatureInfo]] = INPUTS
) -> tuple[tuple[FeatureInfo, ...], FamilyConfig]:
    """(the first of `inputs` the family's small model plans, that model's config)."""
    config = FAMILIES[family].tiny_config()
    refused: list[str] = []
    for sets in inputs:
        try:
            plan_inputs(config, sets)
        except ConfigError as e:
            refused.append(str(e))
            continue
        return tuple(sets), config
    raise AssertionError(f"family {family!r} takes none of the test's inputs: {refused}")


def tiny_features(family: str, inputs: Sequence[Sequence[FeatureInfo]] = INPUTS) -> tuple[str, ...]:
    """The names of the sets `tiny_model` picks (what `TrainConfig.features` takes)."""
    return tuple(info.name for info in tiny_model(family, inputs)[0])


def train_options(features: Sequence[str], config: FamilyConfig) -> tuple[str, ...]:
    """The `ser train` options that train `config` on `features`: its fusion and each
    option off its default, as `--help` spells them."""
    given = [
        as_flag(name, getattr(config, name)).split(" ", 1)
        for name, default in field_defaults(type(config)).items()
        if getattr(config, name) != default
    ]
    flags = [part for flag in given for part in flag]
    return ("--features", ",".join(features), "--fusion", config.fusion, *flags)
