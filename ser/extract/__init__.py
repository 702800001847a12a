"""Feature extractors (stage 1): HuBERT-family SSL, MPNet, BERT, openSMILE IS13, log-mel.

`build_extractor(kind, **options)` builds one from keyword options that map onto its
frozen options dataclass (the CLI's flags):

>>> extractor = build_extractor("logmel", n_mels=40)
>>> [spec.name for spec in extractor.specs()]
['logmel40']
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

from ser.errors import ConfigError
from ser.extract.base import ExtractionError, Extractor, FeatureSetSpec
from ser.extract.bert import BertExtractor, BertOptions
from ser.extract.hubert import HubertExtractor, HubertOptions
from ser.extract.is13 import Is13Extractor, Is13Options
from ser.extract.logmel import LogmelExtractor, LogmelOptions
from ser.extract.mpnet import MpnetExtractor, MpnetOptions


class Registered(NamedTuple):
    """An extractor kind: its options dataclass and its extractor class."""

    options: type[Any]
    extractor: type[Extractor]


EXTRACTORS: dict[str, Registered] = {
    "hubert": Registered(HubertOptions, HubertExtractor),
    "mpnet": Registered(MpnetOptions, MpnetExtractor),
    "bert": Registered(BertOptions, BertExtractor),
    "is13": Registered(Is13Options, Is13Extractor),
    "logmel": Registered(LogmelOptions, LogmelExtractor),
}


def build_extractor(kind: str, **options: Any) -> Extractor:
    """The extractor `kind` with `options` (None values take the default).

    Unknown kinds or option names raise `ConfigError` listing the valid ones.
    """
    if kind not in EXTRACTORS:
        raise ConfigError(f"unknown extractor {kind!r}: use one of {', '.join(EXTRACTORS)}")
    registered = EXTRACTORS[kind]
    valid = [field.name for field in dataclasses.fields(registered.options)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"extractor {kind} has no option(s) {', '.join(unknown)}: "
            f"its options are {', '.join(valid)}"
        )
    given = {name: value for name, value in options.items() if value is not None}
    return registered.extractor(registered.options(**given))  # type: ignore[call-arg]


__all__ = [
    "EXTRACTORS",
    "BertOptions",
    "ExtractionError",
    "Extractor",
    "FeatureSetSpec",
    "HubertOptions",
    "Is13Options",
    "LogmelOptions",
    "MpnetOptions",
    "build_extractor",
]
