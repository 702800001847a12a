"""openSMILE functionals: IS13_ComParE (6373 per utterance) or ComParE_2016.

openSMILE ships both configs; it runs on the CPU, one utterance at a time, whatever the
device. Utterances under 60 ms leave its pitch window empty and give NaN, so they are
rejected before any work; so are recordings over `MAX_SECONDS`, whose functionals cannot
be computed a window at a time and whose memory grows with their length.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ser.errors import ConfigError
from ser.extract.base import (
    ExtractionError,
    Extractor,
    FeatureSetSpec,
    Level,
    base_attrs,
    check_audio,
)
from ser.extract.options import KindOptions

if TYPE_CHECKING:
    import torch

FeatureSetName = Literal["is13", "compare2016"]
# Our openSMILE feature set name -> the opensmile.FeatureSet member.
_FEATURE_SETS = {"is13": "IS13", "compare2016": "ComParE_2016"}
# The longest analysis window in both configs (pitch): shorter input gives NaN.
MIN_SECONDS = 0.06
#: The longest recording taken: functionals (percentiles, regressions) are of the whole
#: recording, so openSMILE holds every frame's descriptors, ~48 MB a minute (a 30-minute
#: one peaks at 1.8 GB, a 2-hour one would at ~6 GB: benchmarks/bench_long_audio.py).
MAX_SECONDS = 1800.0


@dataclass(frozen=True)
class Is13Options(KindOptions):
    """feature_set: "is13" (IS13_ComParE) or "compare2016" (ComParE_2016); sample_rate:
    the rate audio is decoded at (IEMOCAP is 16 kHz)."""

    feature_set: FeatureSetName = "is13"
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        if self.feature_set not in _FEATURE_SETS:
            raise ConfigError(
                f"unknown openSMILE feature set {self.feature_set!r}: "
                f"use one of {', '.join(_FEATURE_SETS)}"
            )
        if self.sample_rate < 8000:
            raise ConfigError(f"sample_rate {self.sample_rate} too low for openSMILE")


class Is13Extractor(Extractor):
    """Feature set `is13` (or `compare2016`): one float32 row of functionals per utterance.

    >>> import torch
    >>> is13 = Is13Extractor()
    >>> is13.load(torch.device("cpu"))
    >>> rows = is13.extract([np.zeros(8000, np.float32)])[0]["is13"]
    >>> rows.shape, rows.dtype
    ((1, 6373), dtype('float32'))
    """

    kind = "is13"
    modality = "audio"
    uses_torch = False
    _transient = ("_smile",)

    def __init__(self, options: Is13Options | None = None) -> None:
        self.options = options or Is13Options()
        self._smile: Any = None  # an opensmile.Smile: opensmile ships no type hints

    @property
    def sample_rate(self) -> int:
        return self.options.sample_rate

    def row_count(self, n_samples: int, level: Level) -> int:
        """One row of functionals, of audio as long as the pitch window at least."""
        return int(n_samples >= self._min_samples)

    @property
    def _min_samples(self) -> int:
        return math.ceil(MIN_SECONDS * self.sample_rate)

    @cached_property
    def _specs(self) -> tuple[FeatureSetSpec, ...]:
        import opensmile

        smile = self._make_smile()
        attrs = base_attrs(
            self.kind,
            "audio",
            "utterance",
            len(smile.feature_names),
            "float32",
            frame_shift=None,
            sample_rate=self.sample_rate,
            feature_set=self.options.feature_set,
            opensmile_config=_FEATURE_SETS[self.options.feature_set],
            feature_level="functionals",
            opensmile_version=opensmile.__version__,
        )
        return (FeatureSetSpec(self.options.feature_set, attrs),)

    def length_limit(self) -> tuple[float, str]:
        return MAX_SECONDS, "its functionals are of the whole recording: ~48 MB of memory a minute"

    def load(self, device: torch.device) -> None:
        self._smile = self._make_smile()

    def extract(self, batch: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        check_audio(batch, self._min_samples, "openSMILE (60 ms pitch window)", self.sample_rate)
        self.check_lengths(batch)
        if self._smile is None:
            raise RuntimeError("is13: call load(device) before extract()")
        name = self._specs[0].name
        rows, failures = [], {}
        for i, wave in enumerate(batch):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "Segment too short"
                frame = self._smile.process_signal(np.asarray(wave, np.float32), self.sample_rate)
            row = frame.to_numpy(dtype=np.float32)  # [1, n_features]
            if not np.isfinite(row).all():
                failures[i] = "openSMILE produced NaN or infinite functionals"
            rows.append({name: row})
        if failures:
            raise ExtractionError(failures)
        return rows

    def _make_smile(self) -> Any:
        import opensmile

        return opensmile.Smile(
            feature_set=getattr(opensmile.FeatureSet, _FEATURE_SETS[self.options.feature_set]),
            feature_level=opensmile.FeatureLevel.Functionals,
            # One signal per call, on this thread: a process keeps to one core for
            # openSMILE, and ser runs one process per core instead (ser/runtime/execution.py).
            num_workers=1,
            multiprocessing=False,
        )
