"""Provenance attributes and their fingerprint."""

from __future__ import annotations

import pytest

from ser import __version__
from ser.cache.fingerprint import differences, fingerprint, provenance
from ser.errors import StoreError

BASE = {"extractor": "bert", "modality": "text", "level": "token", "dim": 8, "dtype": "float16"}


def test_provenance_normalises_and_adds_version() -> None:
    prov = provenance({**BASE, "layers": (6, 9), "complete": True, "fingerprint": "x"})
    assert prov["layers"] == [6, 9] and prov["ser_version"] == __version__
    assert "complete" not in prov and "fingerprint" not in prov


def test_fingerprint_ignores_order_and_bookkeeping() -> None:
    a = provenance(BASE)
    b = provenance(dict(reversed(BASE.items())))
    assert fingerprint(a) == fingerprint(b) == fingerprint({**a, "complete": True})
    assert fingerprint(a) != fingerprint({**a, "dim": 9})


def test_differences_name_each_key() -> None:
    old = provenance({**BASE, "model": "bert-base", "layer": 12})
    new = provenance({**BASE, "model": "bert-large", "revision": "main"})
    assert differences(old, new) == [
        "layer: 12 -> (absent)",
        'model: "bert-base" -> "bert-large"',
        'revision: (absent) -> "main"',
    ]


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({k: v for k, v in BASE.items() if k != "level"}, "lack level"),
        ({**BASE, "dtype": "float64"}, "dtype='float64'"),
        ({**BASE, "modality": "video"}, "modality"),
        ({**BASE, "dim": 0}, "positive integer"),
        ({**BASE, "dim": True}, "positive integer"),
        ({**BASE, "path": object()}, "plain JSON"),
    ],
)
def test_bad_attrs(attrs: dict, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        provenance(attrs)
