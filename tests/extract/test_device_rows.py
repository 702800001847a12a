"""A batch finished on its device holds what the host's numpy path stores: rows cast to
the stored dtype, pooled views, and the same failure for a set whose values are not
finite or overflow the stored dtype."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch

import ser.extract.device_rows
from ser.extract.base import FeatureSetSpec
from ser.extract.device_rows import NOT_FINITE, beyond, finish_states, pad_states
from ser.extract.layer_sets import layer_outputs
from ser.extract.shards import _checked

LAYERS = (0, 3)


def specs(dtype: str = "float16") -> list[FeatureSetSpec]:
    out = []
    for layer in LAYERS:
        base = {"layer": layer, "dtype": dtype}
        out += [
            FeatureSetSpec(f"m.L{layer}", base),
            FeatureSetSpec(f"m.L{layer}.mean", {**base, "pool": "mean"}),
            FeatureSetSpec(f"m.L{layer}.meanstd", {**base, "pool": "meanstd"}),
        ]
    return out


def host_path(
    sets: list[FeatureSetSpec], states: list[torch.Tensor]
) -> list[dict[str, tuple[np.ndarray | None, str | None]]]:
    """The numpy path: per input, each set's (rows, problem) as the runner stores them."""
    out = []
    dtypes = {s.name: str(s.attrs["dtype"]) for s in sets}
    with np.errstate(invalid="ignore", over="ignore"):  # the non-finite cases are the point
        for state in states:  # [L, T_i, D]
            rows = {layer: state[k].numpy() for k, layer in enumerate(LAYERS)}
            found = layer_outputs(sets, rows)
            out.append({name: _checked(value, dtypes[name]) for name, value in found.items()})
    return out


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_rows_and_pooled_views_match_the_host_path(dtype: str) -> None:
    generator = torch.Generator().manual_seed(0)
    states = [torch.randn(2, n, 5, generator=generator) * 3 for n in (7, 1, 4)]
    sets = specs(dtype)
    out = finish_states(sets, LAYERS, pad_states(states), [7, 1, 4]).result()
    assert out.problems == [{}, {}, {}]
    for i, expected in enumerate(host_path(sets, states)):
        for name, (rows, problem) in expected.items():
            assert problem is None
            got = out.rows[i][name]
            assert got.dtype == np.dtype(dtype) and got.shape == rows.shape
            np.testing.assert_allclose(got.astype(np.float32), rows, rtol=2e-3, atol=1e-5)


def test_padding_past_an_inputs_rows_is_never_read() -> None:
    state = torch.ones(1, 2, 4, 3)  # [B, L, T, D]
    state[0, :, 2:] = torch.nan  # past the input's 2 rows
    out = finish_states(specs(), LAYERS, state, [2]).result()
    assert out.problems == [{}]
    assert out.rows[0]["m.L3.meanstd"].tolist() == [[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]]


def test_a_set_that_is_not_finite_or_overflows_fails_as_on_the_host() -> None:
    states = [torch.ones(2, 3, 2) for _ in range(3)]
    states[0][0, 1, 0] = torch.inf  # layer 0 of input 0: the model's own inf
    states[1][1, 2, 1] = 1e6  # layer 3 of input 1: beyond float16
    sets = specs()
    out = finish_states(sets, LAYERS, pad_states(states), [3, 3, 3]).result()
    expected = host_path(sets, states)
    for i in range(3):
        failed = {name: why for name, (_, why) in expected[i].items() if why is not None}
        assert out.problems[i] == failed
        assert set(out.rows[i]) == {s.name for s in sets} - set(failed)
    assert out.problems[0]["m.L0"] == NOT_FINITE
    assert out.problems[1]["m.L3"] == beyond("float16")
    assert out.problems[1]["m.L3.mean"] == beyond("float16")


def test_sets_of_one_batch_share_a_dtype() -> None:
    mixed = [FeatureSetSpec("a", {"layer": 0, "dtype": "float16"}),
             FeatureSetSpec("b", {"layer": 0, "dtype": "float32"})]  # fmt: skip
    with pytest.raises(ValueError, match="share a stored dtype"):
        finish_states(mixed, (0,), torch.ones(1, 1, 2, 2), [2])


def test_doctests() -> None:
    assert doctest.testmod(ser.extract.device_rows).failed == 0


def test_layers_out_of_order_or_pooled_only_are_gathered() -> None:
    states = torch.arange(2 * 3 * 2 * 1, dtype=torch.float32).view(2, 3, 2, 1)  # [B, L, T, D]
    sets = [FeatureSetSpec("c", {"layer": 2, "dtype": "float32"}),
            FeatureSetSpec("a", {"layer": 0, "dtype": "float32"})]  # fmt: skip
    out = finish_states(sets, (0, 1, 2), states, [2, 2]).result()
    assert out.rows[1]["c"].ravel().tolist() == [10.0, 11.0]
    assert out.rows[1]["a"].ravel().tolist() == [6.0, 7.0]
    pooled = [FeatureSetSpec("m", {"layer": 1, "dtype": "float32", "pool": "mean"})]
    assert finish_states(pooled, (0, 1, 2), states, [2, 2]).result().rows[0]["m"].tolist() == [
        [2.5]
    ]
