"""What every extractor shares: the `Extractor` interface, feature set specs, per-input
failures, model loading with clear errors, and weight checksums.

An extractor is built from a frozen options dataclass, is cheap to construct and to
pickle (weights load in `load`, once per process). Pretrained extractors record their
resolved precision as a provenance attr, so features of different precision never mix.
"""

from __future__ import annotations

import hashlib
import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import numpy as np

from ser.cache.fingerprint import model_location
from ser.cache.model_names import check_model_folder, looks_like_path, set_stem
from ser.corpus.audio import decoders
from ser.errors import ConfigError, SerError
from ser.extract.loading import (
    check_missing,
    damaged_weights,
    describe_load,
    pickled_weights,
    quiet_transformers,
)
from ser.runtime.precision import autocast_dtype, check_precision, resolve_precision

if TYPE_CHECKING:  # torch is imported where it computes: the kinds' modules import torch-free
    import torch
    from transformers import PretrainedConfig

Level = Literal["frame", "token", "utterance"]
Modality = Literal["audio", "text"]
T = TypeVar("T")


@dataclass(frozen=True)
class FeatureSetSpec:
    """One feature set an extractor writes: its store name and provenance attrs
    (`base_attrs`, frame_shift, sample_rate and every setting that changes the numbers)."""

    name: str
    attrs: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class Outputs:
    """One batch's outputs on the host: per input, rows by set name. `problems`: per
    input, why a set failed, the rows already cast to each set's stored dtype and checked
    (None: not yet; the runner checks them)."""

    rows: list[dict[str, np.ndarray]]
    problems: list[dict[str, str]] | None = None


class Pending:
    """A batch's outputs on their way to the host (a device copy in flight): `result`
    waits for them. Launching a batch returns one, so the thread that launches GPU work
    never waits for the last batch's copy."""

    def __init__(self, finish: Callable[[], Outputs]) -> None:
        self._finish = finish

    @classmethod
    def ready(cls, outputs: Outputs) -> Pending:
        return cls(lambda: outputs)

    def result(self) -> Outputs:
        return self._finish()


class ExtractionError(SerError):
    """Some inputs of a batch cannot be extracted: `failures` maps each one's position in
    the batch to the reason, all at once and before any compute, so the caller can fail
    those utterances and extract the rest."""

    def __init__(self, failures: dict[int, str]) -> None:
        self.failures = dict(sorted(failures.items()))
        detail = "; ".join(f"input {i}: {why}" for i, why in self.failures.items())
        super().__init__(f"{len(self.failures)} input(s) cannot be extracted: {detail}")


class Extractor(ABC):
    """A feature extractor (docs/dev/extract.md, "Extractors"): construct (cheap) ->
    `specs()` (may hash the weights; cached) -> `load(device)` once per process ->
    `extract(batch)` many times."""

    kind: str  # set by `build_extractor`: one class may serve several kinds
    modality: ClassVar[Modality]
    # False for kinds that compute off torch (openSMILE): one process uses one core, so
    # their batches fan out over processes by default (`ser.runtime.execution`).
    uses_torch: ClassVar[bool] = True

    # Any: each kind's own frozen options dataclass, which its class annotates (`options:
    # SpeechOptions`); typed KindOptions here, a kind's fields would be unknown to its methods.
    def __init__(self, options: Any) -> None:
        self.options = options

    @property
    def sample_rate(self) -> int | None:
        """Rate (Hz) that audio inputs must have; None for text extractors."""
        return None

    def specs(self) -> list[FeatureSetSpec]:
        """The feature sets this extractor writes, with provenance attrs."""
        return list(self._specs)

    @property
    def _specs(self) -> tuple[FeatureSetSpec, ...]:
        """`specs()`, a `cached_property` in each kind that does not define `specs()`:
        working it out may hash the weights."""
        raise NotImplementedError(f"{type(self).__name__} defines neither specs() nor _specs")

    @abstractmethod
    def load(self, device: torch.device) -> None:
        """Load weights onto `device`; called once per process before `extract`."""

    @abstractmethod
    def extract(self, batch: Sequence[Any]) -> list[dict[str, np.ndarray]]:
        """One `{spec name: [n_rows, dim] float32}` per input, in batch order;
        `ExtractionError` names every input that cannot be extracted."""

    def extract_pending(self, batch: Sequence[Any]) -> Pending:
        """`extract`, its outputs possibly still on their way from the device: kinds that
        finish a batch on the GPU (`ser.extract.device_rows`) return before the copy ends."""
        return Pending.ready(Outputs(self.extract(batch)))

    def loaded(self) -> str | None:
        """The one line the runner prints about what `load` loaded; None without weights."""
        return None

    def padded_seconds(self, seconds: float) -> float:
        """Audio extractors: the seconds of input one utterance of `seconds` costs a forward
        call, what batches are planned by (Whisper's encoder: whole 30 s windows)."""
        return seconds

    def row_count(self, n_samples: int, level: Level) -> int | None:
        """Audio extractors: the rows a set of `level` gets of `n_samples` of input at
        `sample_rate`, known before the model runs (0: too short to give one, a failure);
        None where only running it tells (`ser.extract.row_counts`)."""
        return None

    def length_limit(self) -> tuple[float, str] | None:
        """Audio extractors that take a recording in one piece, at a cost that grows with
        its length: the most seconds they take, and why (None: any length)."""
        return None

    def too_long(self, seconds: float) -> str | None:
        """Why audio of `seconds` is refused (over `length_limit`), or None."""
        limit = self.length_limit()
        if limit is None or seconds <= limit[0]:
            return None
        return (
            f"{seconds:.1f} s of audio is over the {limit[0]:g} s {self.kind} takes in one "
            f"piece ({limit[1]}): cut the recording into utterances (a manifest's start and end)"
        )

    def check_lengths(self, batch: Sequence[np.ndarray]) -> None:
        """`ExtractionError` for every input over `length_limit` (at `sample_rate`)."""
        rate = self.sample_rate or 16000
        failures = {i: why for i, w in enumerate(batch) if (why := self.too_long(len(w) / rate))}
        if failures:
            raise ExtractionError(failures)

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """Token counts of `texts` (text extractors), for batching by length."""
        raise TypeError(f"{self.kind} extracts audio: batch it by number of samples")

    # Attributes holding loaded weights, dropped when pickling: extractors travel to other
    # processes (dask workers) light, and each worker calls `load` itself.
    _transient: ClassVar[tuple[str, ...]] = ()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update({key: None for key in self._transient if key in state})
        return state


class PretrainedExtractor(Extractor):
    """An extractor around a Hugging Face model: weights on the CPU first (for the
    checksum `specs()` needs), moved to the device by `load`."""

    _transient = ("_model", "_frozen_for")

    def __init__(self, options: Any) -> None:  # Any: as `Extractor`'s
        import torch

        super().__init__(options)  # with a model, a precision and a name (None: the model's)
        self.requested_precision = check_precision(options.precision)
        self._model: torch.nn.Module | None = None
        self._frozen_for: str | None = None  # the precision `load` froze the model for
        self._checksum: str | None = None
        self.device = torch.device("cpu")

    @property
    def precision(self) -> str:
        """The resolved precision on the current device (the CPU before `load`)."""
        return resolve_precision(self.requested_precision, self.device, "extract")

    @property
    def source(self) -> str:
        """Where `from_pretrained` finds the model: `options.model`, unless a kind knows
        better (a sentence-transformers package keeps it in a subfolder)."""
        return str(self.options.model)

    @cached_property
    def config(self) -> PretrainedConfig:
        check_model_folder(self.source, "model config")  # before transformers' (seconds) import
        from transformers import AutoConfig

        config = load_pretrained(AutoConfig.from_pretrained, self.source, "model config")
        self._check_config(config)
        return config

    def _check_config(self, config: PretrainedConfig) -> None:
        """`ConfigError` for a model this extractor cannot run."""

    def model_options(self) -> dict[str, Any]:
        """Keyword arguments of the model's `from_pretrained`."""
        return {}

    @cached_property
    def stem(self) -> str:
        """Its feature sets' name: the model's own id, or --name."""
        return set_stem(self.options.model, self.options.name)

    def loaded(self) -> str | None:
        if self._model is None:
            return None
        source = model_location(self.options.model)  # a folder by its resolved path
        return describe_load(
            self.stem, self._load_detail(), self.precision, str(self.device), source
        )

    def _load_detail(self) -> str:
        """What of the model the features hold, for `loaded()`."""
        return "last layer"

    def load(self, device: torch.device) -> None:
        before = self.precision
        self.weights_checksum()  # of the weights as loaded, before `freeze_for_inference`
        precision = resolve_precision(self.requested_precision, device, "extract")
        if self._frozen_for not in (None, precision):
            # Frozen for another precision: start again from the checkpoint's weights
            # (casting bf16 weights to fp16 would not round like float32 ones do).
            self._model = None
        self._model = self._loaded_model().to(device)
        self.device = device
        if precision != before:
            # The cached specs' attrs hold the precision, which "auto" makes another here.
            self.__dict__.pop("_specs", None)
        freeze_for_inference(self._model, autocast_dtype(precision))
        self._frozen_for = precision

    @property
    def model(self) -> torch.nn.Module:
        if self._model is None:
            raise RuntimeError(f"{self.kind}: call load(device) before extract()")
        return self._model

    def pretrained(self) -> torch.nn.Module:
        """The model as its checkpoint holds it, float32 on the CPU, before `load` freezes
        it for inference (an export writes a changed copy back with save_pretrained)."""
        return self._loaded_model()

    def weights_checksum(self) -> str:
        if self._checksum is None:
            self._checksum = weights_checksum(self._loaded_model())
        return self._checksum

    def _loaded_model(self) -> torch.nn.Module:
        if self._model is None:
            import torch
            from transformers import AutoModel

            # A fixed seed makes weights missing from the checkpoint (initialised at
            # random, e.g. an unused pooler) the same in every process, so checksums and
            # outputs are stable.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model, info = load_pretrained(
                    AutoModel.from_pretrained,
                    self.source,
                    "model",
                    dtype=torch.float32,
                    output_loading_info=True,
                    **self.model_options(),
                )
            check_missing(info["missing_keys"], self.options.model)
            self._model = model
            self._model.eval()
        return self._model


def load_pretrained(loader: Callable[..., T], model: str, what: str, **kwargs: object) -> T:
    """`loader(model, **kwargs)` (a `from_pretrained`); `ConfigError` when the folder is
    missing or the id cannot be resolved (offline, no cached copy)."""
    check_model_folder(model, what)
    from safetensors import SafetensorError

    target = str(Path(model).expanduser()) if looks_like_path(model) else model
    try:
        with quiet_transformers():  # one line per model, printed by the runner
            return loader(target, **kwargs)
    except SafetensorError as error:  # a weights file cut short
        folder = Path(target) if looks_like_path(model) else None
        raise damaged_weights(model, folder, error) from None
    except pickle.UnpicklingError as error:  # torch.load's weights-only refusal
        folder = Path(target) if looks_like_path(model) else None
        raise pickled_weights(model, folder, error) from None
    except (OSError, ValueError, KeyError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        where = (
            f"folder {model} holds no loadable {what}"
            if looks_like_path(model)
            else f"cannot load the {what} of {model!r}: no cached copy, and the Hugging Face "
            "hub is unreachable (offline machine?) or has no such model; pass a local folder"
        )
        raise ConfigError(f"{where} ({reason})") from error


def load_feature_extractor(loader: Callable[..., T], model: str) -> T | None:
    """The model's feature extractor (`loader` a `from_pretrained`); None for a folder
    that has only weights and config, where the family's defaults serve."""
    try:
        return load_pretrained(loader, model, "feature extractor")
    except ConfigError:
        return None


def freeze_for_inference(model: torch.nn.Module, dtype: torch.dtype | None) -> None:
    """Do once what every forward would do again, without changing any output bit:
    weight-normalised layers (HuBERT's positional conv) get their weight computed once
    (~5 % of a HuBERT-base forward), and with a low-precision `dtype` linear and conv
    weights are stored in it, as autocast would cast them on every call (a tenth of a bf16
    HuBERT-base forward on the CPU); norms and embeddings stay float32, as autocast keeps them."""
    import torch
    from torch.nn.utils import parametrize

    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    if dtype is None:
        return
    for module in model.modules():
        if isinstance(module, torch.nn.Linear | torch.nn.modules.conv._ConvNd):
            module.to(dtype)


def weights_checksum(module: torch.nn.Module) -> str:
    """sha256 over the state dict (keys, dtypes, shapes, bytes): stable across runs and
    devices."""
    import torch

    digest = hashlib.sha256()
    state = module.state_dict()
    for key in sorted(state):
        tensor = state[key].detach().to("cpu").contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_audio(
    batch: Sequence[np.ndarray], min_samples: int, what: str, sample_rate: int = 16000
) -> None:
    """`ExtractionError` for every input not 1-D, under `min_samples` or not finite; a
    short one's length said in seconds too (`sample_rate`: the batch's, every pretrained
    speech encoder's 16 kHz unless given)."""
    failures: dict[int, str] = {}
    for i, wave in enumerate(batch):
        if wave.ndim != 1:
            failures[i] = f"audio must be mono [n_samples], got shape {tuple(wave.shape)}"
        elif len(wave) < min_samples:
            failures[i] = (
                f"audio too short for {what}: {len(wave) / sample_rate:.3f} s, under the "
                f"{min_samples / sample_rate:.3f} s it takes ({len(wave)} samples < {min_samples})"
            )
        elif not np.isfinite(wave).all():
            failures[i] = "audio holds NaN or infinite samples"
    if failures:
        raise ExtractionError(failures)


def base_attrs(
    kind: str, modality: Modality, level: Level, dim: int, dtype: str, **extra: object
) -> dict[str, Any]:
    """The attrs every feature set carries (an audio one: the decoders that read its
    audio), plus extractor-specific provenance."""
    import ser

    common = {"extractor": kind, "modality": modality, "level": level, "dim": int(dim)}
    decoder = {"decoder": decoders()} if modality == "audio" else {}
    return {**common, "dtype": dtype, "ser_version": ser.__version__, **decoder, **extra}
