"""Which hidden states an encoder kind keeps, and the utterance-level views of them.

Layer n is Hugging Face's `hidden_states[n]` (0 = the first transformer layer's input).
`--layers` takes `12`, `6,9,12`, `0-12`, `0-4,8`, `all` (0..n) or `last` (n); one feature
set per layer. `--pool mean,meanstd` adds, per layer, an utterance-level set of the mean
of its rows (`mean`, D values) or their mean then standard deviation (`meanstd`, 2D),
computed in float32 from the rows before they are stored (fp16, like the rows): all layers
of a large model in megabytes. Torch-free: `recorded_hidden_states` imports nothing itself.

>>> parse_layers("0-2,5", 12, "m")
(0, 1, 2, 5)
>>> parse_pools("meanstd, mean")
('meanstd', 'mean')
>>> pooled(np.array([[1.0, 2.0], [3.0, 6.0]], np.float32), "meanstd")
array([[2., 4., 1., 2.]], dtype=float32)
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ser.cache.fingerprint import model_location
from ser.cache.model_names import check_set_name
from ser.errors import ConfigError
from ser.extract.base import FeatureSetSpec, Level, Pending, PretrainedExtractor, base_attrs
from ser.extract.device_rows import Hidden, finish_states
from ser.extract.options import (
    STORE_DTYPES,
    KindOptions,
    option,
    store_dtype_option,
    stored_dtype,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

POOLS = ("mean", "meanstd")
LAYERS_HELP = "hidden states to keep, one set each: 12, 6,9,12, 0-12, 0-4,8, all or last"
POOL_HELP = (
    "utterance-level sets to add per layer: mean, meanstd or mean,meanstd (mean then std "
    "over the rows) [default: none]"
)
POOLED_ONLY_HELP = "write only the --pool sets, no frame or token sets"
_ITEM = r"\d+(\s*-\s*\d+)?"
_LAYERS_HELP = "use a number, a list or range like 6,9,12 / 0-12 / 0-4,8, all or last"


def layers_text(value: str | int | Sequence[int]) -> str:
    """A `layers` option as text: an int or a list of ints becomes "12" / "6,9"."""
    if isinstance(value, str):
        return value
    if isinstance(value, int):  # True is no layer: "True" fails as bad --layers syntax
        return str(value)
    return ",".join(str(int(layer)) for layer in value)


def parse_layers(spec: str, n_layers: int, model: str) -> tuple[int, ...]:
    """Hidden-state indices of a `--layers` spec, in the order given, each once.

    >>> parse_layers("6, 9,12", 12, "m"), parse_layers("all", 2, "m"), parse_layers("last", 2, "m")
    ((6, 9, 12), (0, 1, 2), (2,))
    """
    text = spec.strip().lower()
    if text == "all":
        return tuple(range(n_layers + 1))
    if text == "last":
        return (n_layers,)
    if not re.fullmatch(rf"{_ITEM}(\s*,\s*{_ITEM})*", text):
        raise ConfigError(f"bad --layers {spec!r}: {_LAYERS_HELP}")
    chosen: list[int] = []
    for item in text.split(","):
        first, _, last = (part.strip() for part in item.partition("-"))
        low, high = int(first), int(last or first)
        if high < low:
            raise ConfigError(f"bad --layers {spec!r}: range {item.strip()} runs backwards")
        chosen += range(low, high + 1)
    layers = tuple(dict.fromkeys(chosen))
    bad = [layer for layer in layers if layer > n_layers]
    if bad:
        raise ConfigError(
            f"layer(s) {', '.join(map(str, bad))} out of range: {model} has {n_layers} "
            f"transformer layers (valid: 0..{n_layers}, all, last)"
        )
    return layers


def check_layers(spec: str) -> None:
    """`ConfigError` for a `--layers` spec of bad syntax (the range is checked once the
    model's depth is known)."""
    parse_layers(spec, n_layers=10**6, model="the model")


def parse_pools(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """The pooled views of a `--pool` value ("", "none", "mean", "mean,meanstd" or a list)."""
    items = spec.split(",") if isinstance(spec, str) else list(spec or ())
    names = tuple(dict.fromkeys(str(item).strip().lower() for item in items if str(item).strip()))
    if names == ("none",):
        return ()
    bad = [name for name in names if name not in POOLS]
    if bad:
        raise ConfigError(
            f"bad --pool {spec!r}: {', '.join(bad)} is not a pooled view (use mean, "
            "meanstd or both, comma-separated; none: frames or tokens only)"
        )
    return names


def pooled(rows: np.ndarray, pool: str) -> np.ndarray:
    """One utterance's `[n, D]` rows as `[1, D]` (mean) or `[1, 2D]` (mean, then std),
    in float32; an utterance without rows stays without (it fails as it would unpooled)."""
    if len(rows) == 0:
        return rows[:0]
    values = np.asarray(rows, dtype=np.float32)
    mean = values.mean(axis=0, keepdims=True)
    if pool == "mean":
        return mean
    std = values.std(axis=0, keepdims=True)  # over the rows, population (ddof 0)
    return np.concatenate([mean, std], axis=1)


def describe(layers: Sequence[int], pool: str) -> str:
    """What of a model the sets hold, for the load line: "layers 0,1,2, pooled mean"."""
    pools = f", pooled {pool}" if pool else ""
    return f"layer{'s' if len(layers) > 1 else ''} {','.join(map(str, layers))}{pools}"


def layer_specs(
    attrs: Sequence[Mapping[str, Any]],
    pools: Sequence[str],
    name: Callable[[Mapping[str, Any]], str],
    rows: bool = True,
) -> tuple[FeatureSetSpec, ...]:
    """Each layer's set (when `rows`) and then its pooled sets: level "utterance", dim D
    or 2D, `pool` added to the layer's attrs. `name(attrs)` names a set (its options'
    `set_name` under the extractor's stem)."""
    specs: list[FeatureSetSpec] = []
    for layer in attrs:
        if rows:
            specs.append(FeatureSetSpec(name(layer), dict(layer)))
        for pool in pools:
            dim = int(layer["dim"]) * (2 if pool == "meanstd" else 1)
            view = {**layer, "level": "utterance", "dim": dim, "pool": pool}
            specs.append(FeatureSetSpec(name(view), view))
    return tuple(specs)


def layer_outputs(
    specs: Sequence[FeatureSetSpec], states: Mapping[int, np.ndarray]
) -> dict[str, np.ndarray]:
    """One input's outputs by set name, from its rows per layer (`states[layer]`, float32)."""
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        rows = states[int(spec.attrs["layer"])]
        pool = spec.attrs.get("pool")
        out[spec.name] = rows if pool is None else pooled(rows, str(pool))
    return out


class _EnoughLayers(Exception):
    """Raised by a hook once the highest wanted layer has run, to skip those above."""


@contextmanager
def recorded_hidden_states(layers: nn.ModuleList, top: int) -> Iterator[list[torch.Tensor]]:
    """Collect HF's `hidden_states` 0..top (the first layer's input, then each layer's
    output) while the caller runs the encoder inside this block, then stop its forward:
    the block ends quietly once layer `top` has run. A raising hook, not a truncated
    `layers` list: the model is never mutated (threads share it), and the encoder's code
    after its layers (a final LayerNorm) is skipped too; a caller whose last hidden
    state includes that code applies it itself."""
    states: list[torch.Tensor] = []

    def record_input(module: nn.Module, args: tuple[Any, ...]) -> None:
        states.append(args[0])
        if top == 0:
            raise _EnoughLayers

    def record_output(
        module: nn.Module, args: tuple[Any, ...], output: torch.Tensor | tuple[torch.Tensor, ...]
    ) -> None:
        states.append(output[0] if isinstance(output, tuple) else output)
        if len(states) > top:
            raise _EnoughLayers

    handles = [layers[0].register_forward_pre_hook(record_input)]
    handles += [layer.register_forward_hook(record_output) for layer in layers[:top]]
    try:
        yield states
    except _EnoughLayers:
        pass
    finally:
        for handle in handles:
            handle.remove()


def settle_options(options: LayerOptions, kind: str, name: str | None) -> None:
    """The speech and text kinds' shared option checks (their `__post_init__`): a model
    named, `layers` and `pool` in canonical text, `--pooled-only` with a pool, a valid
    `--name`. Canonical text keeps options (and so fingerprints) the same however written."""
    if not options.model:
        raise ConfigError(f"the {kind} kind needs a model: --{kind}-model (hub id or folder)")
    object.__setattr__(options, "layers", layers_text(options.layers))
    object.__setattr__(options, "pool", ",".join(parse_pools(options.pool)))
    check_layers(options.layers)  # syntax only; the range once the model is known
    if options.pooled_only and not options.pool:
        raise ConfigError("--pooled-only needs --pool (mean, meanstd or both)")
    if name is not None:
        check_set_name(name)
    canonical = stored_dtype(options.store_dtype)  # float16 given is the default
    object.__setattr__(options, "store_dtype", None if canonical == STORE_DTYPES[0] else canonical)


@dataclass(frozen=True)
class LayerOptions(KindOptions):
    """The options the kinds that keep an encoder's hidden states (speech, text) begin
    with, in this order: the model, its layers, their pooled views."""

    model: str = option("", "model (hub id or folder)", "kind", metavar="ID_OR_DIR")
    layers: str = option("last", LAYERS_HELP, "both", metavar="LIST")
    pool: str = option("", POOL_HELP, "shared", metavar="LIST")
    pooled_only: bool = option(False, POOLED_ONLY_HELP, "shared")
    store_dtype: str | None = store_dtype_option()


class LayerExtractor(PretrainedExtractor):
    """A pretrained encoder whose sets are hidden states of its `layers` and their pooled
    views: each kind gives its depth (`n_layers`) and its padded states (`_hidden`)."""

    options: LayerOptions

    @property
    @abstractmethod
    def n_layers(self) -> int:
        """The encoder's transformer layers (the last hidden state's index)."""

    @abstractmethod
    def _hidden(self, batch: Sequence[Any]) -> Hidden:
        """The chosen layers' rows of the batch, padded: [B, L, T, D], and each input's count."""

    @cached_property
    def layers(self) -> tuple[int, ...]:
        return parse_layers(self.options.layers, self.n_layers, self.options.model)

    def _layer_specs(self, layers: Sequence[Mapping[str, Any]]) -> tuple[FeatureSetSpec, ...]:
        """Each layer's set (none with --pooled-only) and its --pool views, named as the
        kind's options name them under the stem."""

        def name(attrs: Mapping[str, Any]) -> str:
            return str(self.options.set_name(self.stem, attrs))

        pools = parse_pools(self.options.pool)
        return layer_specs(layers, pools, name, rows=not self.options.pooled_only)

    def _model_attrs(
        self,
        level: Level,
        dim: int,
        frame_shift: float | None,
        sample_rate: int | None,
        **extra: object,
    ) -> dict[str, Any]:
        """`base_attrs` of the encoder's sets (rows as `--store-dtype` says): the model's
        place (a folder: found from anywhere), its type and its weights' checksum, then
        `extra`."""
        return base_attrs(
            self.kind,
            self.modality,
            level,
            dim,
            stored_dtype(self.options.store_dtype),
            frame_shift=frame_shift,
            sample_rate=sample_rate,
            model=model_location(self.options.model),
            model_type=self.config.model_type,
            weights_sha256=self.weights_checksum(),
            **extra,
        )

    def extract(self, batch: Sequence[Any]) -> list[dict[str, np.ndarray]]:
        hidden = self._hidden(batch)
        states = hidden.states.float().cpu().numpy()  # [B, L, T, D]
        return [
            layer_outputs(
                self._specs, {layer: states[i, k, :n] for k, layer in enumerate(self.layers)}
            )
            for i, n in enumerate(hidden.lengths)
        ]

    def extract_pending(self, batch: Sequence[Any]) -> Pending:
        """The sets finished on the device (`device_rows`), on their way to the host."""
        hidden = self._hidden(batch)
        return finish_states(self._specs, self.layers, hidden.states, hidden.lengths)
