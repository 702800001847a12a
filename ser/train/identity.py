"""What a run's option declarations (`ser.train.options.Recorded`) derive, never listed by
hand: its training identity (`run_key`: the runs whose members may share a stack;
`member_key`: the jobs that share one trained member) and its default name
(`default_name`). An option added to `TrainConfig` joins each as its declaration says.

>>> from ser.train.option_table import train_config
>>> asked = train_config({"store": "f.zarr", "features": "is13", "sampler": "balanced"})
>>> default_name(asked, "loso", {"classes": "4", "own_weights": "none"})
'is13_mit_loso_c4_sampler-balanced'
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from ser.train.options import (
    NameContext,
    Recorded,
    ResolvedConfig,
    TrainConfig,
    fusion_named,
    name_part,
    recorded_fields,
)


def run_key(config: ResolvedConfig) -> tuple[Hashable, ...]:
    """What resolved runs whose members may share an ensemble share: every option that
    changes how each member trains (`Recorded.changes`), but those each member of a stack
    may hold its own of (`Recorded.per_member`), known before any data is read (the
    sweep's tasks are cut by it). Runs that differ only in how they are tested share a
    key: their members train once (`ser.train.group.shared_trainings`)."""
    return _identity(config, lambda how: how.changes == "training" and not how.per_member)


def member_key(config: ResolvedConfig) -> tuple[Hashable, ...]:
    """What a (seed, fold) member's training takes of its run beside `run_key`: the
    options each member of a stack may hold its own of (patience)."""
    return _identity(config, lambda how: how.changes == "training" and how.per_member)


def _identity(config: ResolvedConfig, which: Callable[[Recorded], bool]) -> tuple[Hashable, ...]:
    chosen = [(n, how) for n, how in recorded_fields(type(config)) if which(how)]
    return tuple((name, _keyed(how, getattr(config, name))) for name, how in chosen)


def _keyed(how: Recorded, value: object) -> Hashable:
    keyed = how.identity(value) if how.identity is not None else value
    return tuple(keyed) if isinstance(keyed, list) else keyed


def default_name(config: TrainConfig, protocol: str, context: NameContext) -> str:
    """e.g. ``hubert+mpnet_mit_loso_c4``, ``is13+bert_add-logits-perspective_session5_c4``:
    the features, the fusion, the protocol and the class set, then every option that is
    on, in the order of their declaration, as each declares its part (`Recorded.named`:
    ``_queries10_no-rmm``, ``_class-weights-balanced``, ``_sampler-balanced``), so that the
    ablations of one table get a folder each. `config`: the asked config, its --target
    spelled as the store's kind names it; a cross-corpus run's `protocol` names its
    stores (``is13_none_iemocap-to-meld_c4``)."""
    name = (
        f"{'+'.join(config.features)}_{fusion_named(config.model)}_{protocol}_c{context['classes']}"
    )
    for option, how in recorded_fields(type(config)):
        value = getattr(config, option)
        if callable(how.named):
            name += how.named(value, config, context)
        elif how.named and value is not None and value != how.off:
            name += name_part(option, value)
    return name
