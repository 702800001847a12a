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

from ser.errors import ConfigError

T = TypeVar("T")
#: What a set's rows can be stored as (`--store-dtype`): float16 unless asked, half the disk.
STORE_DTYPES = ("float16", "float32")


def option(default: T, help: str = "", flag: str | None = None, **meta: str) -> T:
    """An options field: its default, its `ser extract` help and how it is offered."""
    return field(default=default, metadata={"help": help, "flag": flag, **meta})


def store_dtype_option() -> Any:
    """The `store_dtype` field of a kind whose rows may be stored as float32."""
    help = (
        "dtype the sets' rows are stored in: float16 (the default, half the disk) or "
        "float32 (an fp32 encoder's values kept whole)"
    )
    return option(None, help, "shared", metavar="float16|float32")


def stored_dtype(value: str | None) -> str:
    """The dtype `--store-dtype` `value` stores rows in (None: float16)."""
    if value is None:
        return STORE_DTYPES[0]
    if value not in STORE_DTYPES:
        raise ConfigError(f"--store-dtype {value!r}: choose {' or '.join(STORE_DTYPES)}")
    return value


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
        """The options that make a feature set with these provenance attrs again (its
        `dtype` as `store_dtype`, for the kinds that offer it; float16 is the default)."""
        names = [f.name for f in dataclasses.fields(cls)]
        found = {name: attrs[name] for name in names if name in attrs}
        if "store_dtype" in names and attrs.get("dtype", STORE_DTYPES[0]) != STORE_DTYPES[0]:
            found["store_dtype"] = attrs["dtype"]
        return found


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
