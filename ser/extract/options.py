"""What each built-in extractor kind takes: its frozen options dataclass, the flags
`ser extract` derives from it, the name its feature sets get and, from their recorded
provenance, the options that make them again (`from_attrs`, for `ser predict`).

Torch-free, apart from the extractors (`hubert.py`, `text_encoder.py`, `is13.py`,
`logmel.py`): `ser extract` parses its options and answers a finished request without
loading torch. A field's metadata says how `ser extract` offers it: `flag="kind"` is one
`--<kind>-<field>` per kind (`--hubert-model`), `flag="shared"` one `--<field>` for every
kind that has it (`--layers`); `precision`, `name` (`--name KIND=NAME`) and `transcripts`
(`--text-source asr`) are run-wide, and the other fields keep their defaults.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ser.cache.model_names import check_set_name
from ser.errors import ConfigError

MelScale = Literal["slaney", "htk"]
FeatureSetName = Literal["is13", "compare2016"]
#: Our openSMILE feature set name -> the opensmile.FeatureSet member.
OPENSMILE_SETS = {"is13": "IS13", "compare2016": "ComParE_2016"}


def option(default: Any, help: str = "", flag: str | None = None, **meta: Any) -> Any:
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


def _check_named(name: str | None) -> None:
    if name is not None:
        check_set_name(name)


@dataclass(frozen=True)
class HubertOptions(KindOptions):
    """model: a Hugging Face id or local folder; layers: "last", "all", "12" or "6,9,12"
    (0 = transformer input, n = last layer; each layer is its own feature set);
    normalize: per-utterance zero-mean unit-variance input, None = as the model's
    preprocessor config says; precision: auto, fp32, bf16 or fp16; name: the feature
    sets' name stem (None: the model's id, see `ser.cache.model_names.set_stem`)."""

    model: str = option(
        "facebook/hubert-base-ls960", "model (hub id or folder)", "kind", metavar="ID_OR_DIR"
    )
    layers: str = option(
        "last", "hidden states to keep: 12, 6,9,12, all or last (one set each)", "shared",
        metavar="LIST",
    )  # fmt: skip
    normalize: bool | None = None
    precision: str = "auto"
    name: str | None = None

    def __post_init__(self) -> None:
        layers: Any = self.layers
        if isinstance(layers, int):
            layers = str(layers)
        elif not isinstance(layers, str):
            layers = ",".join(str(int(layer)) for layer in layers)
        object.__setattr__(self, "layers", layers)
        parse_layers(layers, n_layers=10**6, model=self.model)  # syntax only; range at specs()
        _check_named(self.name)

    @classmethod
    def set_name(cls, stem: str, attrs: Mapping[str, Any]) -> str:
        return f"{stem}.L{attrs.get('layer')}"

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {**super().from_attrs(attrs), "layers": str(attrs["layer"])}


@dataclass(frozen=True)
class TextSource:
    """Transcripts other than the corpus's: the store's transcript set `name`, whose
    provenance `attrs` (with its fingerprint) joins the text sets' provenance. A tuple of
    pairs, not a dict: options are frozen, hashable and have a stable repr (dask keys)."""

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
        kept = {k: v for k, v in attrs.items() if k.startswith("asr_")}
        kept["fingerprint"] = attrs["transcripts_fingerprint"]
        return cls(str(attrs["transcripts"]), tuple(sorted(kept.items())))

    def provenance(self) -> dict[str, object]:
        """What a text set extracted from these transcripts adds to its attrs."""
        attrs = dict(self.attrs)
        fingerprint = attrs.pop("fingerprint")
        return {
            "text_source": "asr",
            "transcripts": self.name,
            "transcripts_fingerprint": fingerprint,
            **attrs,
        }


@dataclass(frozen=True)
class TextEncoderOptions(KindOptions):
    """model: a Hugging Face id or local folder (each registered kind has its paper's);
    max_tokens: cut transcripts at this many tokens, start and end tokens included (None:
    the model's limit); precision: auto, fp32, bf16 or fp16; name: the feature set's name
    (None: the model's id); transcripts: the store's transcript set to read instead of the
    gold transcripts (None: gold; the set is then named `<name>@<transcript set>`)."""

    model: str = option("", "model (hub id or folder)", "kind", metavar="ID_OR_DIR")
    max_tokens: int | None = None
    precision: str = "auto"
    name: str | None = None
    transcripts: TextSource | None = None

    def __post_init__(self) -> None:
        if not self.model:
            raise ConfigError("a text encoder needs a model (a hub id or a folder)")
        _check_named(self.name)

    @classmethod
    def set_name(cls, stem: str, attrs: Mapping[str, Any]) -> str:
        return f"{stem}@{attrs['transcripts']}" if attrs.get("text_source") == "asr" else stem

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> dict[str, Any]:
        options = super().from_attrs(attrs)
        options["transcripts"] = (
            TextSource.recorded(attrs) if attrs.get("text_source") == "asr" else None
        )
        return options


@dataclass(frozen=True)
class Is13Options(KindOptions):
    """feature_set: "is13" (IS13_ComParE) or "compare2016" (ComParE_2016); sample_rate:
    the rate audio is decoded at (IEMOCAP is 16 kHz)."""

    feature_set: FeatureSetName = "is13"
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        if self.feature_set not in OPENSMILE_SETS:
            raise ConfigError(
                f"unknown openSMILE feature set {self.feature_set!r}: "
                f"use one of {', '.join(OPENSMILE_SETS)}"
            )
        if self.sample_rate < 8000:
            raise ConfigError(f"sample_rate {self.sample_rate} too low for openSMILE")


@dataclass(frozen=True)
class LogmelOptions(KindOptions):
    """n_mels bands from fmin to fmax (None: Nyquist); win_ms / hop_ms analysis window and
    hop; n_fft (None: next power of two of the window); log(mel power + log_offset)."""

    n_mels: int = 80
    sample_rate: int = 16000
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int | None = None
    fmin: float = 0.0
    fmax: float | None = None
    mel_scale: MelScale = "slaney"
    log_offset: float = 1e-6

    def __post_init__(self) -> None:
        if self.mel_scale not in ("slaney", "htk"):
            raise ConfigError(f"unknown mel_scale {self.mel_scale!r}: use slaney or htk")
        if self.n_mels < 1 or self.hop_ms <= 0 or self.win_ms <= 0 or self.log_offset <= 0:
            raise ConfigError("n_mels, win_ms, hop_ms and log_offset must be positive")
        if not 0 <= self.fmin < (self.fmax or self.sample_rate / 2) <= self.sample_rate / 2:
            raise ConfigError(
                f"need 0 <= fmin < fmax <= {self.sample_rate / 2} Hz (Nyquist), "
                f"got fmin {self.fmin}, fmax {self.fmax}"
            )

    @property
    def win_length(self) -> int:
        return round(self.win_ms * self.sample_rate / 1000)

    @property
    def hop_length(self) -> int:
        return round(self.hop_ms * self.sample_rate / 1000)

    @property
    def fft_size(self) -> int:
        return self.n_fft or 1 << (self.win_length - 1).bit_length()

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> dict[str, Any]:
        rate = float(attrs["sample_rate"])  # window and hop are stored in samples
        win, hop = attrs["win_length"] * 1000 / rate, attrs["hop_length"] * 1000 / rate
        ms = {"win_ms": win, "hop_ms": hop}
        return {**super().from_attrs(attrs), **ms, "mel_scale": attrs.get("mel_scale", "slaney")}


def parse_layers(spec: str, n_layers: int, model: str) -> tuple[int, ...]:
    """Hidden-state indices from "12", "6,9,12", "all" (0..n) or "last" (n).

    Layer 0 is the transformer's input (HF `hidden_states[0]`), layer n its last output.

    >>> parse_layers("6, 9,12", 12, "m")
    (6, 9, 12)
    >>> parse_layers("all", 2, "m")
    (0, 1, 2)
    """
    text = spec.strip().lower()
    if text == "all":
        return tuple(range(n_layers + 1))
    if text == "last":
        return (n_layers,)
    if not re.fullmatch(r"\d+(\s*,\s*\d+)*", text):
        raise ConfigError(f"bad --layers {spec!r}: use a number, a list like 6,9,12, all or last")
    layers = tuple(dict.fromkeys(int(part) for part in text.split(",")))
    bad = [layer for layer in layers if layer > n_layers]
    if bad:
        raise ConfigError(
            f"layer(s) {', '.join(map(str, bad))} out of range: {model} has {n_layers} "
            f"transformer layers (valid: 0..{n_layers}, all, last)"
        )
    return layers
