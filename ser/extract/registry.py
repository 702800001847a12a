"""The extractor kinds, one `Kind` line each (`register`), and what is derived from them:
`build_extractor`, `ser extract`'s per-kind flags (`flags`, `kind_options`), its --name
parsing, and a kind's set names (train's feature resolution, `ser predict`).

`speech` and `text` run any Hugging Face speech or text encoder (a model must be given);
`hubert`, `mpnet` and `bert` are the same two classes with their papers' models, whose
sets keep the attrs and fingerprints they always had (`extractor: "hubert"`, ...).

Torch-free, as each kind's module is (it imports torch, transformers or openSMILE only
when its extractor loads or runs): `ser extract` parses and answers a finished request
without them.

>>> extractor = build_extractor("logmel", n_mels=40)
>>> [spec.name for spec in extractor.specs()]
['logmel40']
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ser import Registry
from ser.cache.model_names import check_set_name
from ser.errors import ConfigError, chosen
from ser.extract.base import Extractor
from ser.extract.is13 import Is13Extractor, Is13Options
from ser.extract.logmel import LogmelExtractor, LogmelOptions
from ser.extract.options import KindOptions
from ser.extract.speech import SpeechExtractor, SpeechOptions
from ser.extract.text_encoder import TextEncoderExtractor, TextEncoderOptions


@dataclass(frozen=True)
class Kind:
    """An extractor kind: its options dataclass, its extractor class, a title for `--help`,
    its paper's settings over the options' defaults (one extractor class may be
    registered under several names, each with its own), whether `ser extract` runs
    it without --features (False for kinds that need a model named), and `tiny`: what
    the test suite extracts every registered kind with, the options of a small local
    stand-in for its model, written under a folder it is given (none: its defaults)."""

    name: str
    options: type[KindOptions]
    extractor: type[Extractor]
    title: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    by_default: bool = True
    tiny: Callable[[Path], Mapping[str, Any]] | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.options))

    @property
    def named(self) -> bool:
        """Whether its sets are named after a model, so --name can rename them."""
        return "name" in self.fields

    # Any: of the option's own type, which each field has its own of (str, int, bool, None).
    def default(self, name: str) -> Any:
        """The value option `name` takes when not given."""
        declared = {f.name: f.default for f in dataclasses.fields(self.options)}
        return self.defaults.get(name, declared[name])

    def make_options(self, **options: object) -> KindOptions:
        """Its options of `options` (None: the default); `ConfigError` for a name it lacks."""
        unknown = sorted(set(options) - set(self.fields))
        if unknown:
            raise ConfigError(
                f"extractor {self.name} has no option(s) {', '.join(unknown)}: "
                f"its options are {', '.join(self.fields)}"
            )
        given = {name: value for name, value in options.items() if value is not None}
        return self.options(**{**self.defaults, **given})

    def tiny_options(self, folder: Path) -> dict[str, Any]:
        """Its options at `tiny`'s, with what they name written under `folder` (a kind
        stating none: its defaults, which for a model kind name a download)."""
        return dict(self.tiny(folder)) if self.tiny is not None else {}


KINDS: Registry[Kind] = Registry("extractor kind")
#: Add a kind: `ser extract --features` takes it, with flags from its options.
register = KINDS.add


def tiny_speech(folder: Path) -> dict[str, Any]:
    """A 2-layer random HuBERT saved under `folder` (`ser.synth.tiny`), as a speech kind's
    model: what the tests extract every speech kind with."""
    from ser.synth.tiny import save_tiny_hubert  # torch and transformers: only here

    return {"model": str(save_tiny_hubert(folder / "tiny-hubert"))}


def tiny_text(model_type: Literal["bert", "mpnet"]) -> Callable[[Path], Mapping[str, Any]]:
    """A 2-layer random text encoder of `model_type` ("bert", "mpnet") that knows the
    synthetic corpus's words, saved under the folder it is given, as a text kind's model."""

    def save(folder: Path) -> dict[str, Any]:
        from ser.synth.tiny import save_tiny_text  # torch and transformers: only here

        return {"model": str(save_tiny_text(folder / f"tiny-{model_type}", model_type))}

    return save


_SPEECH, _TEXT, _BERT_TINY = SpeechOptions, TextEncoderOptions, tiny_text("bert")
register(
    Kind("speech", _SPEECH, SpeechExtractor, "Speech encoder", by_default=False, tiny=tiny_speech)
)
register(
    Kind("text", _TEXT, TextEncoderExtractor, "Text encoder", by_default=False, tiny=_BERT_TINY)
)
_HUBERT = {"model": "facebook/hubert-base-ls960"}
register(Kind("hubert", _SPEECH, SpeechExtractor, "HuBERT", _HUBERT, tiny=tiny_speech))
_MPNET = {"model": "microsoft/mpnet-base"}
register(Kind("mpnet", _TEXT, TextEncoderExtractor, "MPNet", _MPNET, tiny=tiny_text("mpnet")))
_BERT = {"model": "bert-base-uncased"}
register(Kind("bert", _TEXT, TextEncoderExtractor, "BERT", _BERT, tiny=_BERT_TINY))
register(Kind("is13", Is13Options, Is13Extractor, "openSMILE functionals"))
register(Kind("logmel", LogmelOptions, LogmelExtractor, "log-mel"))


def default_kinds() -> tuple[str, ...]:
    """What `ser extract` runs without --features: every kind that needs no model named."""
    return tuple(name for name, registered in KINDS.items() if registered.by_default)


def kind(name: str) -> Kind:
    if name not in KINDS:
        raise ConfigError(f"unknown extractor {name!r}: use one of {', '.join(KINDS)}")
    return KINDS[name]


def build_extractor(name: str, /, **options: object) -> Extractor:
    """The extractor of kind `name` with `options` (None values take the default)."""
    registered = kind(name)
    extractor = registered.extractor(registered.make_options(**options))
    extractor.kind = registered.name  # one class may serve several kinds
    return extractor


def parse_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """`kinds` without repeats; `ConfigError` for none or an unregistered one."""
    return tuple(
        chosen(
            kinds,
            KINDS,
            lambda unknown: (
                f"unknown feature kind(s) {', '.join(unknown) or '(none given)'}: "
                f"choose from {','.join(KINDS)}"
            ),
        )
    )


@dataclass(frozen=True)
class Flag:
    """A `ser extract` flag: its parameter name and the options it sets; a shared flag
    (one `--<field>` for every kind with the field) gives way to a kind's own."""

    param: str  # "hubert_model" -> --hubert-model
    help: str
    metavar: str | None
    type: type  # of the values: the field's (bool, int, float or str)
    targets: tuple[tuple[str, str], ...]  # (kind, option field)
    shared: bool = False


def flags() -> dict[str, Flag]:
    """The flags the registered kinds' options ask for (`ser.extract.options.option`:
    "kind" `--<kind>-<field>`, "shared" one `--<field>`, "both" the two)."""
    found: dict[str, Flag] = {}
    for registered in KINDS.values():
        hints = typing.get_type_hints(registered.options)
        for f in dataclasses.fields(registered.options):
            how = f.metadata.get("flag")
            types = (hints[f.name], *typing.get_args(hints[f.name]))  # X | None: X
            typed = next((t for t in (bool, int, float) if t in types), str)
            target, metavar = (registered.name, f.name), f.metadata.get("metavar")
            if how in ("shared", "both"):
                old = found.get(f.name) or Flag(f.name, "", metavar, typed, (), shared=True)
                help = f"{f.metadata['help'][0].upper()}{f.metadata['help'][1:]}; for "
                kinds = (*(kind for kind, _ in old.targets), registered.name)
                found[f.name] = dataclasses.replace(
                    old, help=f"{help}{', '.join(kinds)}.", targets=(*old.targets, target)
                )
            if how in ("kind", "both"):
                default = registered.default(f.name)
                shown = f" [default: {default}]" if default not in (None, "") else ""
                help = f"{registered.title} {f.metadata['help']}.{shown}"
                if how == "both":  # the shared flag's help says what it takes
                    help = f"--{f.name.replace('_', '-')} for {registered.name} alone.{shown}"
                param = f"{registered.name}_{f.name}"
                found[param] = Flag(param, help, metavar, typed, (target,))
    return found


def kind_options(values: Mapping[str, Any], features: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The options flag `values` ({param: value}) give the kinds of `features`: shared
    flags first, then each kind's own (`--bert-layers` over `--layers`)."""
    chosen = set(features)
    options: dict[str, dict[str, Any]] = {}
    for flag in sorted(flags().values(), key=lambda flag: not flag.shared):
        value = values.get(flag.param)
        if value is None or (flag.type is bool and not value):
            continue
        for name, option in flag.targets:
            if name in chosen:
                options.setdefault(name, {})[option] = value
    return options


def parse_names(values: Iterable[str], features: tuple[str, ...]) -> dict[str, str]:
    """`ser extract --name` values (`KIND=NAME`, or a bare `NAME` when `features` holds
    one named kind) as {kind: name}, checked (`check_names`).

    >>> parse_names(("ours",), ("hubert", "logmel"))
    {'hubert': 'ours'}
    >>> parse_names(("bert=b", "mpnet=m"), ("mpnet", "bert"))
    {'bert': 'b', 'mpnet': 'm'}
    """
    models = [name for name in features if KINDS[name].named]
    pairs: list[tuple[str, str]] = []
    for value in values:
        name, given, stem = value.partition("=")
        if not (given and name in KINDS):  # a bare NAME (the store allows "=" in names)
            if not models:
                raise ConfigError(f"--name {value}: no model extractor in --features to name")
            if len(models) > 1:
                raise ConfigError(
                    f"--name {value} is ambiguous with {', '.join(models)} in --features: "
                    f"say which, e.g. --name {models[0]}={value}"
                )
            name, stem = models[0], value
        pairs.append((name, stem))
    return check_names(pairs, features)


def check_names(pairs: Iterable[tuple[str, str]], features: tuple[str, ...]) -> dict[str, str]:
    """{kind: name}, sorted; `ConfigError` unless each is a named kind of `features`
    named once, with a valid set name no other kind has."""
    models = [name for name in features if KINDS[name].named]
    named: dict[str, str] = {}
    for name, stem in pairs:
        if name not in models:
            raise ConfigError(
                f"--name {name}={stem}: {name} is not one of the model extractors this run "
                f"has ({', '.join(models) or 'none'}); other kinds' sets have fixed names"
            )
        if name in named:
            raise ConfigError(f"--name given twice for {name}")
        named[name] = check_set_name(stem)
    if len(set(named.values())) < len(named):
        raise ConfigError("--name: two extractors cannot write feature sets of one name")
    return dict(sorted(named.items()))
