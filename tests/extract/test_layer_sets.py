"""Layer specs, pooled views and their sets (`ser.extract.layer_sets`)."""

from __future__ import annotations

import numpy as np
import pytest

from ser.errors import ConfigError
from ser.extract.layer_sets import (
    layer_outputs,
    layer_specs,
    layers_text,
    parse_layers,
    parse_pools,
    pooled,
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("12", (12,)),
        ("6,9,12", (6, 9, 12)),
        (" 6 , 9 ", (6, 9)),
        ("9,6,9", (9, 6)),
        ("0-12", tuple(range(13))),
        ("0-4,8", (0, 1, 2, 3, 4, 8)),
        ("3 - 5, 4, 12", (3, 4, 5, 12)),
        ("all", tuple(range(13))),
        ("last", (12,)),
        ("ALL", tuple(range(13))),
        ("0", (0,)),
    ],
)
def test_parse_layers(spec: str, expected: tuple[int, ...]) -> None:
    assert parse_layers(spec, 12, "hubert-base") == expected


@pytest.mark.parametrize("spec", ["13", "6,9,24", "0-13"])
def test_parse_layers_out_of_range_names_the_layer_count(spec: str) -> None:
    with pytest.raises(ConfigError, match="out of range: hubert-base has 12 transformer layers"):
        parse_layers(spec, 12, "hubert-base")


@pytest.mark.parametrize("spec", ["", "-1", "6;9", "first", "1.5", "3-", "1-2-3", "all,3"])
def test_parse_layers_rejects_bad_syntax(spec: str) -> None:
    with pytest.raises(ConfigError, match="bad --layers"):
        parse_layers(spec, 12, "m")


def test_a_backwards_range_is_refused() -> None:
    with pytest.raises(ConfigError, match="range 9-3 runs backwards"):
        parse_layers("9-3", 12, "m")


def test_layers_options_take_ints_and_lists() -> None:
    assert (layers_text(12), layers_text((6, 9)), layers_text("0-4")) == ("12", "6,9", "0-4")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("", ()), ("none", ()), ("mean", ("mean",)), ("meanstd,MEAN", ("meanstd", "mean")),
     (("mean", "mean"), ("mean",)), (None, ())],
)  # fmt: skip
def test_parse_pools(spec: object, expected: tuple[str, ...]) -> None:
    assert parse_pools(spec) == expected


def test_unknown_pool_is_refused() -> None:
    with pytest.raises(ConfigError, match="max is not a pooled view"):
        parse_pools("mean,max")


def test_pooling_is_float32_mean_then_population_std() -> None:
    rows = np.random.default_rng(0).standard_normal((7, 3)).astype(np.float16)
    mean, meanstd = pooled(rows, "mean"), pooled(rows, "meanstd")
    values = rows.astype(np.float32)
    assert mean.dtype == meanstd.dtype == np.float32
    np.testing.assert_array_equal(mean, values.mean(axis=0, keepdims=True))
    np.testing.assert_array_equal(meanstd[:, :3], mean)
    np.testing.assert_allclose(meanstd[0, 3:], values.std(axis=0, ddof=0), rtol=1e-6)
    np.testing.assert_array_equal(pooled(rows[:1], "meanstd")[0, 3:], 0)  # one row: std 0
    assert pooled(rows[:0], "mean").shape == (0, 3)  # no rows: none (the row fails as unpooled)


def test_layer_specs_and_outputs() -> None:
    attrs = [{"dim": 4, "level": "frame", "layer": layer} for layer in (1, 3)]
    specs = layer_specs(attrs, ("mean", "meanstd"), lambda a: f"m.L{a['layer']}.{a.get('pool')}")
    assert [(s.name, s.attrs["level"], s.attrs["dim"]) for s in specs] == [
        ("m.L1.None", "frame", 4),
        ("m.L1.mean", "utterance", 4),
        ("m.L1.meanstd", "utterance", 8),
        ("m.L3.None", "frame", 4),
        ("m.L3.mean", "utterance", 4),
        ("m.L3.meanstd", "utterance", 8),
    ]
    assert "pool" not in specs[0].attrs and specs[1].attrs["pool"] == "mean"
    only = layer_specs(attrs, ("mean",), lambda a: str(a["layer"]), rows=False)
    assert [s.attrs.get("pool") for s in only] == ["mean", "mean"]
    rows = {1: np.ones((5, 4), np.float32), 3: np.arange(8, dtype=np.float32).reshape(2, 4)}
    out = layer_outputs(specs, rows)
    assert out["m.L1.None"] is rows[1] and out["m.L3.meanstd"].shape == (1, 8)
    np.testing.assert_array_equal(out["m.L3.mean"], [[2, 3, 4, 5]])
