"""The extraction pipeline: the thread that launches batches never waits for a batch's
copy or its commit, commits land in plan order, a stop keeps whole shards only, and an
error in the writer reaches the caller without a hang."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
import torch

import ser.extract.pipeline as pipeline
from ser.errors import StoreError
from ser.extract.base import Extractor, FeatureSetSpec, Outputs, Pending
from ser.extract.pipeline import StageTimes, run_jobs
from ser.extract.plan import plan_shards
from ser.extract.shards import make_jobs

CPU = torch.device("cpu")


class Deferred(Extractor):
    """One set of a row per input holding its first sample; each batch's outputs land
    only once `release(k)` lets batch k through (a copy still in flight)."""

    kind = "deferred"
    modality = "audio"

    def __init__(self) -> None:
        self.launched: list[int] = []
        self.gates: dict[int, threading.Event] = {}

    @property
    def sample_rate(self) -> int:
        return 16000

    def specs(self) -> list[FeatureSetSpec]:
        return [FeatureSetSpec("a", {"level": "utterance", "dim": 1, "dtype": "float32"})]

    def load(self, device: torch.device) -> None:
        pass

    def extract(self, batch: Sequence[Any]) -> list[dict[str, np.ndarray]]:
        return [{"a": np.full((1, 1), wave[0], np.float32)} for wave in batch]

    def extract_pending(self, batch: Sequence[Any]) -> Pending:
        k = len(self.launched)
        self.launched.append(k)
        gate = self.gates.setdefault(k, threading.Event())
        rows = self.extract(batch)

        def finish() -> Outputs:
            if not gate.wait(timeout=10):
                raise TimeoutError(f"batch {k} was never released")
            return Outputs(rows)

        return Pending(finish)

    def release(self, k: int) -> None:
        self.gates.setdefault(k, threading.Event()).set()


class WholeShards:
    """A ShardWriter stand-in's parts: none (what these tests look at is whole shards)."""

    def write_part(self, shard_id: int, rows: dict, failures: dict) -> None:
        pass

    def part_indices(self, shard_id: int) -> set[int]:
        return set()

    def read_part(self, shard_id: int) -> tuple[dict, dict]:
        return {}, {}


class Recorder(WholeShards):
    def __init__(self, fail_on: int | None = None) -> None:
        self.shards: dict[int, dict[int, np.ndarray]] = {}
        self.fail_on = fail_on

    def write(self, shard_id: int, rows: dict, failures: dict) -> None:
        if shard_id == self.fail_on:
            raise StoreError(f"no space left on the device writing shard {shard_id}")
        self.shards[shard_id] = dict(rows)


def corpus(folder: Path, n: int) -> list[Any]:
    paths = []
    for i in range(n):
        path = folder / f"{i}.wav"
        soundfile.write(path, np.full(320, i / 100, np.float32), 16000, subtype="FLOAT")
        paths.append(path)
    return paths


def jobs_of(sources: list[Any], writer: Recorder, shard_size: int = 2) -> list[Any]:
    plan = plan_shards([0.02] * len(sources), budget=0.02, shard_size=shard_size)  # 1 a batch
    specs = Deferred().specs()
    return make_jobs(plan.shards, specs, sources, {"a": writer}, {"a": set()})


def test_batches_launch_while_earlier_copies_are_in_flight(tmp_path: Path) -> None:
    extractor, writer = Deferred(), Recorder()
    seen: list[int] = []

    def release_once_all_launched() -> None:
        # A synchronous loop would wait on batch 0's copy forever: nothing is released
        # until every batch has launched (or 5 s have passed).
        for _ in range(500):
            if len(extractor.launched) == 4:
                break
            threading.Event().wait(0.01)
        seen.append(len(extractor.launched))
        for k in range(4):
            extractor.release(k)

    releaser = threading.Thread(target=release_once_all_launched)
    releaser.start()
    steps = list(run_jobs(extractor, jobs_of(corpus(tmp_path, 4), writer), CPU))
    releaser.join()
    assert seen == [4]
    assert [(step[1], step[2]) for step in steps] == [
        ((0,), False), ((1,), True), ((2,), False), ((3,), True)
    ]  # fmt: skip
    assert {k: sorted(v) for k, v in writer.shards.items()} == {0: [0, 1], 1: [2, 3]}


def test_a_stop_keeps_whole_shards_only(tmp_path: Path) -> None:
    extractor, writer = Deferred(), Recorder()
    for k in range(6):
        extractor.release(k)
    steps = run_jobs(extractor, jobs_of(corpus(tmp_path, 6), writer), CPU)
    for _, _, committed in steps:
        if committed:
            break  # the caller stops (Ctrl-C) once a shard is in
    steps.close()
    assert writer.shards and all(len(rows) == 2 for rows in writer.shards.values())
    assert not any(t.name == "ser-writer" for t in threading.enumerate())


def test_an_error_while_writing_reaches_the_caller(tmp_path: Path) -> None:
    extractor, writer = Deferred(), Recorder(fail_on=1)
    for k in range(8):
        extractor.release(k)
    with pytest.raises(StoreError, match="shard 1"):
        list(run_jobs(extractor, jobs_of(corpus(tmp_path, 8), writer), CPU))
    assert set(writer.shards) == {0}
    assert not any(t.name == "ser-writer" for t in threading.enumerate())


def test_stage_times_are_counted(tmp_path: Path) -> None:
    extractor, writer = Deferred(), Recorder()
    for k in range(4):
        extractor.release(k)
    stats = StageTimes()
    list(run_jobs(extractor, jobs_of(corpus(tmp_path, 4), writer), CPU, decoders=2, stats=stats))
    record = stats.record()
    assert record["batches"] == 4 and stats.decode > 0 and stats.write > 0 and stats.copy >= 0


class PartRecorder(Recorder):
    """A `Recorder` that keeps each part written, and hands the last back as a store's
    `ShardWriter` does."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[tuple[int, dict, dict]] = []

    def write_part(self, shard_id: int, rows: dict, failures: dict) -> None:
        self.parts.append((shard_id, dict(rows), dict(failures)))

    def part_indices(self, shard_id: int) -> set[int]:
        return {i for s, rows, failed in self.parts[-1:] if s == shard_id for i in (*rows, *failed)}

    def read_part(self, shard_id: int) -> tuple[dict, dict]:
        return self.parts[-1][1:] if self.parts else ({}, {})


def test_a_long_shard_keeps_its_finished_batches_and_a_resume_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shard under way past `PART_SECONDS` (0 here) writes its finished batches as its
    part (a kill then loses only the batch under way); a resume extracts only the batches
    after them (the last always), and its shard holds the rows of both."""
    monkeypatch.setattr(pipeline, "PART_SECONDS", 0.0)
    extractor, writer = Deferred(), PartRecorder()
    for k in range(8):
        extractor.release(k)
    sources = corpus(tmp_path, 4)
    list(run_jobs(extractor, jobs_of(sources, writer, shard_size=4), CPU))
    assert [sorted(rows) for _, rows, _ in writer.parts] == [[0], [0, 1], [0, 1, 2]]
    whole = writer.shards.pop(0)
    writer.parts = writer.parts[:2]  # killed in its third batch
    (job,) = jobs_of(sources, writer, shard_size=4)
    assert job.shard.batches == ((2,), (3,)) and job.kept == (0, 1)
    list(run_jobs(extractor, [job], CPU))
    assert sorted(writer.shards[0]) == [0, 1, 2, 3]
    assert all(np.array_equal(writer.shards[0][i], whole[i]) for i in range(4))
