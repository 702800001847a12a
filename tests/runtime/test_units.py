"""Sizes a user gives (`--memory-budget 384MB`): decimal and binary units, refusals."""

from __future__ import annotations

import pytest

from ser.runtime.units import human_bytes, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("384MB", 384_000_000),
        ("384 MiB", 384 * 2**20),
        ("2GiB", 2 * 2**30),
        ("2g", 2 * 2**30),
        ("1.5GB", 1_500_000_000),
        ("4096", 4096),
        ("10b", 10),
        (".5K", 512),
    ],
)
def test_sizes_parse_in_their_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MB", "12 parsecs", "-3GB", "0", "0.1B", "1e3"])
def test_a_bad_size_is_refused_saying_what_it_takes(text: str) -> None:
    with pytest.raises(ValueError, match="384MB"):
        parse_size(text)


def test_a_parsed_size_prints_back_in_binary_units() -> None:
    assert human_bytes(parse_size("2GiB")) == "2.0 GiB"
