"""Views: what only audio can give a training set, extracted once beside the clean set.

`ser extract --augment speed=0.9,1.1 --augment noise=20` writes, for each audio feature
set, one more set per view: `<set>.speed0.9`, `<set>.speed1.1`, `<set>.noise20db`. A view
set's attrs are the clean set's plus `view_of` (the clean set's name), `view`
(`"speed=0.9"`) and `view_of_fingerprint` (the clean set's fingerprint, out of the view's
own: `ser store verify` and `ser train --views` compare it with the clean set's now, to
find a view made from a clean set since extracted again), so its fingerprint is its own
and resume, mismatch and overwrite work as for any set. A view that comes out byte for
byte its clean set (the perturbation left the audio unchanged) is refused, not kept
(`refuse_unchanged`). The runner plans a view as one more pass of the same extractor
whose audio is transformed here after decoding (`Viewed`, a source that travels to
processes and dask workers as the plain one does).

Speed perturbation resamples the waveform by the factor and treats the result as at the
original rate (Kaldi's and SpeechBrain's: tempo and pitch change together; 1.1 gives
shorter audio). Noise adds white Gaussian noise at an SNR in dB relative to the
utterance's own power, drawn from a generator seeded from the utterance id and the SNR,
so the same command gives the same bytes in any batch order and number of processes.
Both are bounded where --augment is read (`SPEEDS`, `SNRS`): out of them a view is no
augmentation (noise fainter than a recording's own; from about 150 dB it leaves float32
samples as they were) or leaves nothing of the speech.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ser.cache import FeatureStore
from ser.cache.fingerprint import VIEW_SOURCE, fingerprint, provenance
from ser.cache.verify import RECORDED, VIEW_ATTRS
from ser.corpus.audio import Clip, load_audio, resampled_length
from ser.errors import ConfigError

ViewKind = Literal["speed", "noise"]
TEXT_NOTE = "text sets get no views: --augment changes audio only"
#: The speed factors a view takes: over the first, at most the second, never 1.
SPEEDS = (0.5, 2.0)
#: The SNRs in dB a noise view takes, both included: at -5 dB the noise has three times
#: the speech's power; above 60 dB it is fainter than a recording's own noise floor.
SNRS = (-5.0, 60.0)


@dataclass(frozen=True)
class View:
    """One view: speed perturbation by `value` (a factor) or noise at `value` dB SNR."""

    kind: ViewKind
    value: float

    @property
    def spec(self) -> str:
        """As --augment takes it and the `view` attr records it: `speed=0.9`, `noise=20`."""
        return f"{self.kind}={self._number}"

    @property
    def suffix(self) -> str:
        """What the view's set names add to the clean set's: `speed0.9`, `noise20db`."""
        return f"speed{self._number}" if self.kind == "speed" else f"noise{self._number}db"

    @property
    def _number(self) -> str:
        if self.kind == "noise" and float(self.value).is_integer():
            return str(int(self.value))
        return format(self.value, "g")

    def seconds(self, seconds: float) -> float:
        """How long audio of `seconds` is in this view (speed changes duration)."""
        return seconds / self.value if self.kind == "speed" else seconds

    def length(self, n_samples: int, sample_rate: int) -> int:
        """How many samples `apply` gives of `n_samples` (speed resamples; noise keeps them)."""
        if self.kind == "speed":
            return resampled_length(n_samples, sample_rate, sample_rate / self.value)
        return n_samples

    def apply(self, wave: np.ndarray, utt_id: str, sample_rate: int) -> np.ndarray:
        """The view of one decoded utterance (float32 mono at `sample_rate`)."""
        if self.kind == "speed":
            import soxr

            # Resampled to rate / factor and read at rate: factor 1.1 plays 10 % faster.
            fast = soxr.resample(wave, sample_rate, sample_rate / self.value, quality="HQ")
            return np.ascontiguousarray(fast, dtype=np.float32)
        return _noisy(wave, utt_id, self.value)


def view_of_suffix(suffix: str) -> View | None:
    """The view a set name's suffix names (`speed0.9`, `noise20db`; what `View.suffix`
    writes), None for any other suffix (a layer's, `L3`)."""
    found = re.fullmatch(r"speed([0-9.]+)|noise(-?[0-9.]+)db", suffix)
    if found is None:
        return None
    speed, noise = found.groups()
    return View("speed", float(speed)) if speed is not None else View("noise", float(noise))


def _noisy(wave: np.ndarray, utt_id: str, snr: float) -> np.ndarray:
    samples = wave.astype(np.float64)
    # fsum: correctly rounded, so the noise's scale is the same on every CPU's sum order.
    power = math.fsum((samples * samples).tolist()) / max(len(samples), 1)
    if power == 0.0:
        return wave  # silence: noise relative to no power is none
    seed = [zlib.crc32(utt_id.encode()), zlib.crc32(format(snr, "g").encode())]
    noise = np.random.default_rng(seed).standard_normal(len(samples))
    scale = math.sqrt(power / 10.0 ** (snr / 10.0))
    return np.ascontiguousarray(samples + scale * noise, dtype=np.float32)


@dataclass(frozen=True)
class Viewed:
    """An utterance's audio as a view sees it: decoded, then transformed."""

    audio: Path | Clip
    utt_id: str
    view: View

    def load(self, sample_rate: int) -> np.ndarray:
        return self.view.apply(load_audio(self.audio, sample_rate), self.utt_id, sample_rate)


def viewed(
    sources: Sequence[Path | Clip | None], utt_ids: Sequence[str], view: View
) -> list[Viewed | None]:
    """Each row's audio in `view` (None: no audio, failing as the clean set's row does)."""
    return [
        None if source is None else Viewed(source, utt_id, view)
        for source, utt_id in zip(sources, utt_ids, strict=True)
    ]


def view_spec_of(name: str, attrs: Mapping[str, Any], view: View) -> tuple[str, dict[str, Any]]:
    """The name and attrs of set `name`'s (with `attrs`) view."""
    source = fingerprint(provenance(attrs))  # the clean set's, as the store begins it
    return f"{name}.{view.suffix}", {
        **attrs,
        "view_of": name,
        "view": view.spec,
        VIEW_SOURCE: source,
    }


def clean_of(name: str, attrs: Mapping[str, Any]) -> tuple[str, dict[str, Any], View] | None:
    """A view set's clean set (its name and attrs) and its view; None for a set no view."""
    if "view" not in attrs:
        return None
    view = parse_augment([str(attrs["view"])])[0]
    clean = {k: v for k, v in attrs.items() if k not in VIEW_ATTRS}
    return str(attrs.get("view_of", name.removesuffix(f".{view.suffix}"))), clean, view


def parse_augment(values: Iterable[str]) -> tuple[View, ...]:
    """`--augment` values (`speed=F1,F2,...`, `noise=DB1,...`, repeatable) as views in
    the order given; `ConfigError` naming the value for a bad one."""
    views: list[View] = []
    for value in values:
        kind, _, numbers = value.partition("=")
        kind = kind.strip()
        if kind not in ("speed", "noise") or not numbers.strip():
            raise ConfigError(
                f"--augment {value!r}: give speed=FACTOR[,FACTOR...] or noise=SNR_DB[,SNR_DB...]"
            )
        for number in numbers.split(","):
            view = View("speed" if kind == "speed" else "noise", _number(value, number))
            _check(value, view)
            if view in views:
                raise ConfigError(f"--augment {value!r}: {view.spec} is given twice")
            views.append(view)
    return tuple(views)


def _number(value: str, number: str) -> float:
    try:
        return float(number)
    except ValueError:
        raise ConfigError(f"--augment {value!r}: {number.strip()!r} is not a number") from None


def _check(value: str, view: View) -> None:
    if not math.isfinite(view.value):
        what = "a speed factor" if view.kind == "speed" else "an SNR in dB"
        raise ConfigError(f"--augment {value!r}: {what} must be a finite number")
    got = format(view.value, "g")
    low, high = SPEEDS
    if view.kind == "speed" and not (low < view.value <= high and view.value != 1.0):
        raise ConfigError(
            f"--augment {value!r}: a speed factor is over {low:g} and at most {high:g}, "
            f"not 1 (got {got})"
        )
    low, high = SNRS
    if view.kind == "noise" and not low <= view.value <= high:
        raise ConfigError(
            f"--augment {value!r}: noise is an SNR in dB from {low:g} to {high:g} (got "
            f"{got}): above, the noise is fainter than the recording's own; below, it "
            "drowns the speech"
        )


def refuse_unchanged(store: FeatureStore, names: Iterable[str]) -> None:
    """Delete and refuse (`ConfigError`) each of the complete view sets `names` whose
    rows are byte for byte their clean set's: a view that changed nothing would only
    train the clean rows twice as often."""
    for name in names:
        attrs = store.info(name).attrs
        clean = str(attrs.get("view_of", ""))
        if clean not in store.feature_sets() or not store.info(clean).complete:
            continue
        own, theirs = attrs.get(RECORDED), store.info(clean).attrs.get(RECORDED)
        if own is None or own != theirs:
            continue
        if not np.array_equal(store.read(name).offsets, store.read(clean).offsets):
            continue
        store.delete_feature_set(name)
        raise ConfigError(
            f"--augment {attrs.get('view')!r}: view set {name} came out byte for byte its "
            f"clean set {clean} (the perturbation left the audio unchanged), so it is not "
            "kept; give a lower SNR or another speed factor"
        )
