"""The extraction runner: planning, shard execution with per-utterance failures, decoding
overlapped with compute, and a whole in-process extraction into a store."""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

import ser.extract.shards as shards_module
from ser.corpus.audio import load_audio
from ser.extract.base import ExtractionError, Extractor, FeatureSetSpec
from ser.extract.pipeline import run_jobs
from ser.extract.plan import audio_seconds, estimate_bytes, plan_shards
from ser.extract.registry import build_extractor
from ser.extract.run import ExtractConfig, extract_features
from ser.extract.shards import make_jobs
from tests.extract.test_pipeline import WholeShards

CPU = torch.device("cpu")


# --- planning ---------------------------------------------------------------------------


def test_plan_sorts_by_length_batches_within_budget_and_cuts_shards_by_count() -> None:
    costs = [5.0, 1.0, 30.0, 2.0, 2.0, 9.0, 1.0]
    plan = plan_shards(costs, budget=6.0, shard_size=4)
    # sorted: 1 (1), 6 (1), 3 (2), 4 (2) | 0 (5), 5 (9), 2 (30); ties by manifest index
    assert [shard.indices for shard in plan.shards] == [(1, 6, 3, 4), (0, 5, 2)]
    # padded cost: 3 x 2 s fits 6 s, a fourth 2 s utterance would not; long ones go alone
    assert plan.shards[0].batches == ((1, 6, 3), (4,))
    assert plan.shards[1].batches == ((0,), (5,), (2,))


@settings(max_examples=60, deadline=None)
@given(
    costs=st.lists(st.floats(0, 40, allow_nan=False), max_size=50),
    budget=st.floats(0.5, 120),
    shard_size=st.integers(1, 12),
)
def test_plan_covers_every_utterance_once_and_is_deterministic(
    costs: list[float], budget: float, shard_size: int
) -> None:
    plan = plan_shards(costs, budget, shard_size)
    flat = [i for shard in plan.shards for i in shard.indices]
    assert sorted(flat) == list(range(len(costs)))
    assert [shard.shard_id for shard in plan.shards] == list(range(len(plan.shards)))
    assert all(len(shard) == shard_size for shard in plan.shards[:-1])
    for shard in plan.shards:
        for batch in shard.batches:
            assert len(batch) == 1 or len(batch) * max(costs[i] for i in batch) <= budget
    assert plan_shards(list(costs), budget, shard_size) == plan


def test_shard_membership_depends_on_sort_keys_and_shard_size_only() -> None:
    keys = [3.0, 1.0, 2.0, 5.0, 4.0, 0.5]
    costs_then = [3.1, 0.0, 2.0, 5.2, 4.0, 0.5]  # a wav missing at the first run (0 s)...
    costs_now = [3.1, 1.1, 2.0, 5.2, 4.0, 0.5]  # ...restored before the resume
    first = plan_shards(costs_then, budget=4.0, shard_size=2, sort_keys=keys)
    second = plan_shards(costs_now, budget=50.0, shard_size=2, sort_keys=keys)
    assert [s.indices for s in first.shards] == [s.indices for s in second.shards]
    assert first.shards[1].batches == ((2,), (0,))  # the budget only cuts batches
    assert second.shards[1].batches == ((2, 0),)


def test_batches_respect_count_and_padded_budget() -> None:
    def batches(costs: list[float], budget: float, max_batch: int) -> list[tuple[int, ...]]:
        plan = plan_shards(costs, budget, len(costs), max_batch=max_batch)
        return list(plan.shards[0].batches)

    assert batches([1, 2, 3, 4, 5], math.inf, 2) == [(0, 1), (2, 3), (4,)]
    # budget 8: [1, 2] pads to 4, adding 3 would pad to 9 > 8
    assert batches([1, 2, 3, 8], 8, 10) == [(0, 1), (2,), (3,)]


def test_audio_seconds_reads_headers_and_gives_zero_for_unreadable(tmp_path: Path) -> None:
    stereo = tmp_path / "stereo.wav"
    soundfile.write(stereo, np.zeros((66150, 2), np.float32), 44100)  # 1.5 s
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not a wav at all")
    assert audio_seconds([stereo, None, tmp_path / "nope.wav", garbage]) == [1.5, 0.0, 0.0, 0.0]


def test_estimate_bytes_by_level() -> None:
    frame = {"level": "frame", "frame_shift": 0.02, "dim": 10, "dtype": "float16"}
    assert estimate_bytes(frame, [1.0, 2.0]) == (51 + 101) * 10 * 2 + 8 * 3
    token = {"level": "token", "dim": 4, "dtype": "float32"}
    assert estimate_bytes(token, [7, 3]) == 10 * 4 * 4 + 8 * 3
    functionals = {"level": "utterance", "dim": 6373, "dtype": "float32"}
    assert estimate_bytes(functionals, [1.0, 30.0]) == 2 * 6373 * 4 + 8 * 3


# --- shard execution with a fake extractor -----------------------------------------------


class FakeAudio(Extractor):
    """Two feature sets of rows filled with the input's first sample; rejects inputs
    shorter than 100 samples, and crashes the whole batch on an input of 1234 samples."""

    kind = "fake"
    modality = "audio"

    def __init__(self) -> None:
        self.calls: list[int] = []

    @property
    def sample_rate(self) -> int:
        return 16000

    def specs(self) -> list[FeatureSetSpec]:
        attrs = {"level": "frame", "dim": 2, "dtype": "float16", "frame_shift": 0.01}
        return [FeatureSetSpec("a", attrs), FeatureSetSpec("b", {**attrs, "dtype": "float32"})]

    def load(self, device: torch.device) -> None:
        pass

    def extract(self, batch: Sequence[Any]) -> list[dict[str, np.ndarray]]:
        self.calls.append(len(batch))
        short = {i: "too short" for i, wave in enumerate(batch) if len(wave) < 100}
        if short:
            raise ExtractionError(short)
        if any(len(wave) == 1234 for wave in batch):
            raise RuntimeError("boom")
        return [
            {name: np.full((len(w) // 160, 2), w[0], np.float32) for name in ("a", "b")}
            for w in batch
        ]


class Recorder(WholeShards):
    """A ShardWriter stand-in: keeps what each shard would commit."""

    def __init__(self) -> None:
        self.shards: dict[int, tuple[dict[int, np.ndarray], dict[int, str]]] = {}

    def write(self, shard_id: int, rows: dict, failures: dict) -> None:
        self.shards[shard_id] = (dict(rows), dict(failures))


def _wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    soundfile.write(path, samples, rate, subtype="FLOAT")
    return path


def test_each_bad_input_fails_alone_with_its_reason(tmp_path: Path) -> None:
    sources: list[Any] = [
        _wav(tmp_path / "ok.wav", np.full(1600, 0.25, np.float32)),
        None,  # no wav in the corpus
        tmp_path / "missing.wav",
        _wav(tmp_path / "short.wav", np.full(50, 0.5, np.float32)),
        _wav(tmp_path / "crash.wav", np.full(1234, 0.5, np.float32)),
        _wav(tmp_path / "nan.wav", np.full(800, np.nan, np.float32)),
        _wav(tmp_path / "ok2.wav", np.full(3200, -0.5, np.float32)),
    ]
    plan = plan_shards([1.0] * len(sources), budget=100.0, shard_size=100)
    writers = {"a": Recorder(), "b": Recorder()}
    fake = FakeAudio()
    jobs = make_jobs(plan.shards, fake.specs(), sources, writers, {"a": set(), "b": set()})
    committed = [job.shard.shard_id for job, _, last in run_jobs(fake, jobs, CPU) if last]

    assert committed == [0]
    rows, failures = writers["a"].shards[0]
    assert sorted(rows) == [0, 6]
    assert rows[0].dtype == np.float16 and rows[0].shape == (10, 2) and rows[0][0, 0] == 0.25
    assert writers["b"].shards[0][0][6].dtype == np.float32
    assert sorted(failures) == [1, 2, 3, 4, 5]
    assert "no wav file" in failures[1]
    assert "missing.wav does not exist" in failures[2]
    assert failures[3] == "too short"
    assert failures[4] == "RuntimeError: boom"
    assert "NaN" in failures[5]
    # 5 decoded inputs in one batch; the rejected one dropped, the other 4 re-run
    # together; that batch crashes, so each of the 4 runs alone
    assert fake.calls == [5, 4, 1, 1, 1, 1]


def test_only_feature_sets_missing_a_shard_are_written(tmp_path: Path) -> None:
    sources: list[Any] = [
        _wav(tmp_path / f"{i}.wav", np.full(320, 0.1, np.float32)) for i in range(4)
    ]
    plan = plan_shards([0.02] * 4, budget=100.0, shard_size=2)
    writers = {"a": Recorder(), "b": Recorder()}
    fake = FakeAudio()
    jobs = make_jobs(plan.shards, fake.specs(), sources, writers, {"a": {0}, "b": {0, 1}})
    list(run_jobs(fake, jobs, CPU))
    assert set(writers["a"].shards) == {1}
    assert writers["b"].shards == {}
    assert fake.calls == [2]  # shard 0 is done everywhere: not even decoded


def test_next_batch_decodes_while_the_current_one_computes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources: list[Any] = [
        _wav(tmp_path / f"{i}.wav", np.full(320, 0.1, np.float32)) for i in range(3)
    ]
    second_decoded = threading.Event()

    def spy(path: Path, sample_rate: int) -> np.ndarray:
        if Path(path).name == "1.wav":
            second_decoded.set()
        return load_audio(path, sample_rate)

    class Waiting(FakeAudio):
        overlapped: bool | None = None

        def extract(self, batch: Sequence[Any]) -> list[dict[str, np.ndarray]]:
            if self.overlapped is None:  # first batch: wait for the next one's decoding
                self.overlapped = second_decoded.wait(timeout=10)
            return super().extract(batch)

    monkeypatch.setattr(shards_module, "load_audio", spy)
    plan = plan_shards([1.0] * 3, budget=1.0, shard_size=3)  # one utterance per batch
    fake = Waiting()
    jobs = make_jobs(plan.shards, fake.specs()[:1], sources, {"a": Recorder()}, {"a": set()})
    list(run_jobs(fake, jobs, CPU))
    assert fake.overlapped is True


# --- a whole in-process extraction -------------------------------------------------------


@pytest.mark.slow
def test_extract_features_writes_every_utterance_to_its_own_rows(
    synthetic_corpus: tuple[Path, Any], tiny_models: Any, tmp_path: Path
) -> None:
    from ser.cache import FeatureStore

    root, truth = synthetic_corpus
    config = ExtractConfig(
        features=("hubert", "logmel"),
        options={"hubert": {"model": str(tiny_models.hubert), "layers": "1,2"}},
        device="cpu",
        batch_seconds=20.0,
        shard_size=64,
    )
    console = Console(record=True, width=120, force_terminal=False)
    report = extract_features(root, tmp_path / "f.zarr", config, console=console)

    names = ["tiny-hubert.L1", "tiny-hubert.L2", "logmel80"]
    assert report.extracted == tuple(names) and report.exit_code == 0
    assert report.n_utterances == len(truth.utterances)
    shown = console.export_text()
    assert "disk estimate" in shown and "tiny-hubert.L2" in shown and "total" in shown

    store = FeatureStore.open(tmp_path / "f.zarr")
    hubert = build_extractor("hubert", model=str(tiny_models.hubert), layers="1,2")
    hubert.load(CPU)
    data = store.read("tiny-hubert.L2")
    wavs = store.manifest.column("wav")
    for index in (0, 57, len(wavs) - 1):  # each utterance's rows are its own
        alone = hubert.extract([load_audio(root / wavs[index], 16000)])[0]["tiny-hubert.L2"]
        np.testing.assert_allclose(data.utterance(index), alone, atol=2e-2, rtol=1e-2)
    seconds = audio_seconds([root / w for w in wavs])
    estimate = estimate_bytes(store.info("tiny-hubert.L2").attrs, seconds)
    assert abs(estimate - data.data.nbytes) / data.data.nbytes < 0.05
    assert store.read("logmel80").offsets[-1] == store.info("logmel80").rows


def test_a_store_ser_store_init_made_is_extracted_into_and_an_older_one_still_opens(
    synthetic_corpus: tuple[Path, Any], tmp_path: Path
) -> None:
    from ser.cache import FeatureStore, Manifest
    from ser.corpus.kinds.iemocap import read as read_corpus

    root, _ = synthetic_corpus
    reading = read_corpus(root)
    # Log-mel: any extractor writes into such a store, and log-mel is the quickest.
    config = ExtractConfig(features=("logmel",), device="cpu", progress=False)
    quiet = Console(quiet=True)
    # `ser store init`: wav paths relative to the corpus root, as the manifest's contract.
    FeatureStore.create(tmp_path / "init.zarr", Manifest.from_utterances(reading.utterances, root))
    assert extract_features(root, tmp_path / "init.zarr", config, console=quiet).exit_code == 0
    made = FeatureStore.open(tmp_path / "init.zarr").manifest.column("wav")
    assert all(w and not Path(w).is_absolute() for w in made)
    # A store an earlier `ser extract` made holds absolute paths: opened, not refused.
    FeatureStore.create(tmp_path / "old.zarr", Manifest.from_utterances(reading.utterances))
    assert extract_features(root, tmp_path / "old.zarr", config, console=quiet).exit_code == 0
    assert FeatureStore.open(tmp_path / "old.zarr").feature_sets() == ["logmel80"]


def test_a_store_of_another_corpus_written_before_groups_is_extracted_into(
    crema_d_corpus: Any, tmp_path: Path
) -> None:
    """Before groups, every corpus's manifest carried IEMOCAP's session (0) and kind (a
    word for the corpus): a store of them holds the corpus read again without them, so
    extracting into it goes on, its manifest as it was, and it trains as its kind."""
    from ser.cache import FeatureStore, Manifest
    from ser.corpus.registry import read_corpus

    kind, reading = read_corpus(crema_d_corpus.root)
    columns = Manifest.from_utterances(reading.utterances, reading.root).columns()
    legacy = {**columns, "session": [0] * len(reading.utterances)}
    legacy["kind"] = ["acted"] * len(reading.utterances)
    FeatureStore.create(tmp_path / "old.zarr", Manifest.from_columns(legacy), kind.attrs())
    config = ExtractConfig(features=("logmel",), device="cpu", progress=False)
    report = extract_features(
        crema_d_corpus.root, tmp_path / "old.zarr", config, Console(quiet=True)
    )
    assert report.extracted == ("logmel80",)
    store = FeatureStore.open(tmp_path / "old.zarr")
    assert "session" in store.manifest.names and store.corpus.name == "crema-d"
    assert str(store.corpus.kind.parse_protocol("speaker-kfold")) == "speaker-kfold"


def test_the_corpus_read_says_how_far_it_is_unless_progress_is_off(
    crema_d_corpus: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ser extract`'s corpus read, as `ser store init`'s: its audio headers counted with
    the rate (a log's lines here), nothing with `--quiet`."""
    from ser.runtime import progress

    monkeypatch.setattr(progress, "SHORT", 0.0)  # a read however short is said
    logged, quiet = io.StringIO(), io.StringIO()
    config = ExtractConfig(features=("logmel",), device="cpu")
    report = extract_features(
        crema_d_corpus.root, tmp_path / "f.zarr", config, Console(file=logged)
    )
    n = report.n_utterances
    assert f"audio headers: {n}/{n} utterances  " in logged.getvalue(), logged.getvalue()
    unsaid = ExtractConfig(features=("logmel",), device="cpu", progress=False)
    extract_features(crema_d_corpus.root, tmp_path / "f.zarr", unsaid, Console(file=quiet))
    assert "audio headers" not in quiet.getvalue()
