"""What every extractor kind's options share: the `KindOptions` base (how a set is named
and, from its recorded provenance, made again: `from_attrs`, for `ser predict`), the
`option` field that `ser extract` derives a flag from (`flag="kind"`: `--<kind>-<field>`;
`"shared"`: one `--<field>`), and the text kinds' `TextSource`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


def option(default: T, help: str = "", flag: str | None = None, **meta: str) -> T:
    """An options field: its default, its `ser extract` help and how it is offered."""
    return field(default=default, metadata={"help": help, "flag": flag, **meta})


@dataclass(frozen=True)
class KindOptions:
    """The base of every kind's options: how a set is named and made again."""

    @classmethod
    def set_name(cls, stem: str, attrs: Mapping[str, Any]) -> str | None:
        """The name a set with `attrs` gets under the name `stem` (a model's id or --name);
        None for kinds whose sets have fixed names."""
        return None

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """The options that make a feature set with these provenance attrs again."""
        return {f.name: attrs[f.name] for f in dataclasses.fields(cls) if f.name in attrs}


@dataclass(frozen=True)
class TextSource:
    """The store's transcript set `name`, whose provenance `attrs` (with its fingerprint)
    joins the text sets'. Pairs, not a dict: options are hashable with a stable repr."""

    name: str
    attrs: tuple[tuple[str, object], ...]

    @classmethod
    def of(cls, name: str, attrs: Mapping[str, object]) -> TextSource:
        """The source for a transcript set's stored attrs (bookkeeping dropped)."""
        if "fingerprint" not in attrs:
            raise ValueError(f"transcript set {name!r}: attrs lack its fingerprint")
        kept = {k: v for k, v in attrs.items() if k.startswith("asr_") or k == "fingerprint"}
        return cls(name, tuple(sorted(kept.items())))

    @classmethod
    def recorded(cls, attrs: Mapping[str, object]) -> TextSource:
        """The source a text set with these attrs was extracted from."""
        return cls.of(
            str(attrs["transcripts"]), {**attrs, "fingerprint": attrs["transcripts_fingerprint"]}
        )

    def provenance(self) -> dict[str, object]:
        """What a text set extracted from these transcripts adds to its attrs."""
        attrs = dict(self.attrs)
        source = {"text_source": "asr", "transcripts": self.name}
        return {**source, "transcripts_fingerprint": attrs.pop("fingerprint"), **attrs}
