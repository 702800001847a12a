"""A record's parts to and from JSON by their fields' types (ser.runs.codec)."""

from __future__ import annotations

import doctest

import pytest

import ser.runs.codec
from ser.errors import ReportError
from ser.runs.codec import decode, encode
from ser.runs.data import AudioSeen, Data, FoldSeen
from ser.runs.provenance import ExecutionRecord


def test_a_part_reads_and_writes_back_what_its_writer_wrote() -> None:
    obj = {"utterances": 50, "dropped": {"label outside class set 4": 10},
           "audio_seen": {"seen": None, "tested": 10, "unknown": "no prints"}}  # fmt: skip
    data = decode(Data, obj, "data")
    assert data.audio_seen == AudioSeen(seen=None, tested=10, unknown="no prints")
    assert encode(data) == obj  # `seen` null is written (ALWAYS), the unset keys are not


def test_unknown_keys_are_kept_and_written_back() -> None:
    obj = {"seen": 1, "tested": 2, "from_a_newer_ser": [1, 2]}
    part = decode(FoldSeen, obj, "fold")
    assert part.extra == {"from_a_newer_ser": [1, 2]} and encode(part) == obj


@pytest.mark.parametrize(
    ("obj", "message"),
    [({"processes": "two", "threads": 1, "source": "x"}, "'processes' must be an integer"),
     ({"processes": 1, "threads": 1}, "lacks source"),
     ({"processes": 1, "threads": True, "source": "x"}, "'threads' must be an integer"),
     ([1], "must be a JSON object")],
)  # fmt: skip
def test_another_type_is_refused_naming_the_key(obj: object, message: str) -> None:
    with pytest.raises(ReportError, match=message) as refused:
        decode(ExecutionRecord, obj, "run.json, 'execution'")
    assert str(refused.value).startswith("run.json, 'execution'")


def test_a_union_reads_as_its_first_type_that_fits() -> None:
    from ser.runs.config import RunConfig

    seeds = tuple[int, ...] | int
    assert RunConfig.from_json({"seeds": [0, 1]}).typed("seeds", seeds) == (0, 1)
    assert RunConfig.from_json({"seeds": 3}).typed("seeds", seeds) == 3  # some older records
    with pytest.raises(ReportError, match="'seeds'"):
        RunConfig.from_json({"seeds": "three"}).typed("seeds", seeds)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(ser.runs.codec)
    assert result.attempted > 0 and result.failed == 0
