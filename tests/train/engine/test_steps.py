"""Graphed and compiled training steps (`--step graphed`, `--step compiled`): on few
padded shapes, the eager run's losses and predictions to float rounding without
randomness; graphed steps keep one set of inputs a shape and variant, which each batch
is copied into; no compilation after the first epoch however the batches' lengths and
RMM's probability move. The CPU traces them with torch.compile's "eager" backend and
`fullgraph`: dynamo's tracing, guards and recompilations as on a GPU, any break in a
step's graph an error, without code generation."""

from __future__ import annotations

import doctest
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import ser.models.msmser as msmser_module
import ser.train.batches as batches_module
import ser.train.engine.graphs as graphs_module
import ser.train.engine.steps as steps_module
from ser.models import ModelConfig
from ser.track.progress import Progress
from ser.train.batches import bucket, padded_length
from ser.train.recipe import TrainConfig, train
from tests.stores import labelled_store
from tests.train.conftest import small_config

SETS = {
    "hubert-tiny.L2": ("hubert", "audio", "frame", 6, "float16"),
    "bert-tiny": ("bert", "text", "token", 5, "float16"),
}
RUNS = ("eager", "compiled")
TINY = ModelConfig(
    fusion="mit", d_model=8, heads=2, queries=3, layers=1, decoder_layers=1, dropout=0.0, rmm=False
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("steps") / "features.zarr"
    labelled_store(path, SETS)
    return path


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compiled steps on the tracing backend, whole graphs only, every sequence view
    bucketed (the tests' utterances are short: without this their views would pad to one
    length each)."""
    monkeypatch.setattr(steps_module, "BACKEND", "eager")
    monkeypatch.setattr(steps_module, "FULLGRAPH", True)
    monkeypatch.setattr(batches_module, "SHORT_ROWS", 0)
    torch.compiler.reset()


def config(store: Path, out: Path, step: str, **changes: object) -> TrainConfig:
    base = small_config(store, out, features=tuple(SETS), model=TINY, protocol="session5")
    return replace(base, **{"epochs": 2, "step": step, **changes})  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_compiled_run_is_the_eager_run_without_randomness(
    store: Path, tmp_path: Path, traced: None
) -> None:
    eager = train(config(store, tmp_path / "eager", "eager"))
    compiled = train(config(store, tmp_path / "compiled", "compiled"))
    assert compiled.execution.step == "compiled" and compiled.execution.compiled
    # train, validation and test batches: each padded batch size x a few length buckets
    assert 2 <= compiled.execution.shapes <= 12
    assert eager.execution.step == "eager" and eager.execution.shapes is None
    for a, b in zip(eager.folds, compiled.folds, strict=True):
        np.testing.assert_allclose(a.curves["train_loss"], b.curves["train_loss"], rtol=1e-5)
        np.testing.assert_allclose(a.curves["val_loss"], b.curves["val_loss"], rtol=1e-5)
        assert a.best_epoch == b.best_epoch
    (labels_a, probs_a), (labels_b, probs_b) = (_predictions(tmp_path / s) for s in RUNS)
    assert labels_a == labels_b  # utterances, gold and predicted classes
    np.testing.assert_allclose(probs_a, probs_b, atol=1e-5)


@pytest.mark.slow
def test_a_compiled_step_takes_no_host_scalar(
    store: Path, tmp_path: Path, traced: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A float the step reads that changes between steps (RMM's probability, every
    epoch), or any float under `dynamic=True`, enters the graph as a 0-d float64 tensor
    on the host; on a GPU a graph with a host input is never a CUDA graph, and the step
    launches every kernel itself."""
    inputs: list[object] = []

    def recording(graph: torch.fx.GraphModule, example: list[object]) -> object:
        inputs.extend(example)
        return graph.forward

    monkeypatch.setattr(steps_module, "BACKEND", recording)
    model = replace(TINY, dropout=0.1, rmm=True)
    record = train(config(store, tmp_path, "compiled", model=model, epochs=3))
    assert record.execution.compiled and inputs
    scalars = [t for t in inputs if isinstance(t, torch.Tensor) and t.dim() == 0]
    assert all(t.dtype != torch.float64 for t in scalars), "a Python float became an input"


class _StopCompiling(Progress):
    """Lets nothing compile once the first epoch has ended."""

    def epoch(self, epoch: int, epochs: int, train_loss: float, val_ua: float) -> None:
        if epoch == 1:
            torch.compiler.set_stance("fail_on_recompile")


@pytest.mark.slow
def test_nothing_compiles_after_the_first_epoch(store: Path, tmp_path: Path, traced: None) -> None:
    """RMM's probability falls every epoch (never to 0 here: its end is the last epoch)
    and dropout draws anew; batches meet new lengths; every LOSO member after the first
    is new weights in a new ensemble: the steps compiled in the first epoch serve them
    all."""
    model = replace(TINY, dropout=0.1, rmm=True, rmm_end=1.0)
    settings = config(store, tmp_path, "compiled", model=model, epochs=2, protocol="loso")
    try:
        record = train(settings, _StopCompiling())
    finally:
        torch.compiler.set_stance("default")
    assert len(record.folds) == 5
    for fold in record.folds:
        assert len(fold.curves["train_loss"]) == 2
        assert np.isfinite(fold.curves["train_loss"]).all()


def test_a_graphed_run_is_the_eager_run_without_randomness(store: Path, tmp_path: Path) -> None:
    """On the CPU the graphed path runs each step on its copies of the batch (the GPU
    replays a graph there): padded shapes, bigger scoring batches, the same numbers."""
    eager = train(config(store, tmp_path / "eager", "eager"))
    graphed = train(config(store, tmp_path / "graphed", "graphed"))
    assert graphed.execution.step == "graphed" and not graphed.execution.compiled
    assert graphed.execution.shapes is not None and 1 <= graphed.execution.shapes <= 6
    for a, b in zip(eager.folds, graphed.folds, strict=True):
        np.testing.assert_allclose(a.curves["train_loss"], b.curves["train_loss"], rtol=1e-5)
        np.testing.assert_allclose(a.curves["val_loss"], b.curves["val_loss"], rtol=1e-5)
        assert a.best_epoch == b.best_epoch
    (labels_a, probs_a), (labels_b, probs_b) = (
        _predictions(tmp_path / s) for s in ("eager", "graphed")
    )
    assert labels_a == labels_b
    np.testing.assert_allclose(probs_a, probs_b, atol=1e-5)


def test_a_graphed_step_reuses_its_inputs_per_shape_and_variant() -> None:
    """What a graph replays reads the tensors it was captured on: each later batch of
    that shape and variant must land in them, and a new shape or variant gets its own."""
    seen: list[tuple[int, torch.Tensor]] = []

    def run(tensors: tuple[object, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        x = tensors[0]["a"]  # type: ignore[index]
        seen.append((id(x), x.clone()))
        return x.sum(dim=-1), torch.ones(1)

    graphed = graphs_module.GraphedTraining(run, torch.device("cpu"))
    first, second = torch.ones(1, 3), torch.full((1, 3), 2.0)
    graphed(({"a": first}, None), variant=True)
    graphed(({"a": second}, None), variant=True)
    graphed(({"a": second}, None), variant=False)
    graphed(({"a": torch.ones(1, 4)}, None), variant=True)
    ids = [i for i, _ in seen]
    assert ids[0] == ids[1] and len(set(ids)) == 3 and ids[0] not in (id(first), id(second))
    assert torch.equal(seen[1][1], second)  # the second batch's values, in the first's place
    assert len(graphed.shapes_seen) == 3


def test_graphed_stacked_steps_read_rmm_from_the_batch_device(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a graph is captured RMM reads its probability from a tensor (a float would be
    kept as it was at capture). A stack's module has its parameters on "meta", so the tensor
    must live on the batch's device. The CPU runs that path as though it were capturing,
    and draws what the float draws."""
    model = replace(TINY, rmm=True, rmm_end=1.0)
    settings = config(store, tmp_path / "float", "graphed", model=model, protocol="loso")
    settings = replace(settings, members_at_once=5)
    floats = train(settings)
    monkeypatch.setattr(msmser_module, "capturing", lambda: True)
    tensors = train(replace(settings, out=str(tmp_path / "tensor")))
    assert {f.stacked for f in tensors.folds} == {5}
    for a, b in zip(floats.folds, tensors.folds, strict=True):
        assert a.curves["train_loss"] == b.curves["train_loss"]


# What makes the host wait for the device: a CUDA graph cannot hold them.
SYNCS = {"aten::_local_scalar_dense", "aten::item", "aten::nonzero", "aten::masked_select"}


def test_a_whole_training_step_never_waits_on_the_device(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The graphed step (forward with dropout and RMM, backward, Adam's update) under the
    profiler: no operation that reads a device value on the host. Fused Adam on the CPU
    reads each step count inside its kernel (`item`); on a GPU its kernel reads them on
    the device, so those are not counted."""
    found: list[str] = []
    made = graphs_module.GraphedTraining.__init__

    def recording(self: graphs_module.GraphedTraining, run: Any, *rest: Any) -> None:
        def profiled(tensors: tuple[Any, ...]) -> Any:
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                out = run(tensors)
            found.extend(_syncs(prof.events()))
            return out

        made(self, profiled, *rest)

    monkeypatch.setattr(graphs_module.GraphedTraining, "__init__", recording)
    model = replace(TINY, dropout=0.1, rmm=True)
    train(config(store, tmp_path, "graphed", model=model, epochs=1))
    assert not found, f"host syncs in a step: {found}"


def _syncs(events: Any) -> list[str]:
    """The sync events not inside fused Adam's CPU kernel."""
    out = []
    for event in events:
        if event.name not in SYNCS:
            continue
        parent = event.cpu_parent
        while parent is not None and parent.name != "aten::_fused_adam_":
            parent = parent.cpu_parent
        if parent is None:
            out.append(event.name)
    return out


def test_short_views_pad_to_their_longest_and_long_ones_to_buckets() -> None:
    assert {padded_length(90, n) for n in (3, 40, 90)} == {bucket(90)} == {96}
    assert [padded_length(1700, n) for n in (90, 300, 1700)] == [96, 320, 1792]
    lengths = np.arange(1, 5000)
    padded = np.array([bucket(int(n)) for n in lengths])
    assert (padded >= lengths).all() and (padded <= lengths * 1.25 + 1).all()
    assert len(set(padded[lengths >= 32])) < 4 * 8  # 4 an octave from 32 to 5000


def test_doctests() -> None:
    assert doctest.testmod(steps_module).failed == 0
    assert doctest.testmod(batches_module).failed == 0  # `bucket`: the padded lengths


def _predictions(out: Path) -> tuple[list[list[str]], np.ndarray]:
    """predictions.csv's rows: their text columns, and their probabilities."""
    [table] = out.glob("*/predictions.csv")
    header, *lines = table.read_text().splitlines()
    names, rows = header.split(","), [line.split(",") for line in sorted(lines)]
    probs = [i for i, name in enumerate(names) if name.startswith("p_")]
    text = [[v for i, v in enumerate(row) if i not in probs] for row in rows]
    return text, np.array([[float(row[i]) for i in probs] for row in rows])
