"""Training steps replayed from CUDA graphs (ser.train.capture), checked on the CPU.

A CUDA graph replays the kernels it captured on the addresses it captured. On the CPU
`StepGraphs` runs a signature's later steps eagerly from the same fixed buffers, which
lets these tests check what a replay needs on any machine: every step of one signature
runs the same operators on the same shapes with the same constants, reads no tensor
made outside the step but the fixed buffers and the model's and optimizer's own, and a
run trained so equals one trained without it.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import ser.train.group as group_module
from ser.cache.testing import labelled_store
from ser.train import capture
from ser.train.models import ModelConfig
from ser.train.nn import gru
from ser.train.run import TrainConfig, train
from ser.train.stack import static_length

SETS = {
    "hubert-tiny.L2": ("hubert", "audio", "frame", 6, "float16"),
    "is13": ("is13", "audio", "utterance", 7, "float32"),
    "bert-tiny": ("bert", "text", "token", 5, "float16"),
}
SYNCS = {
    f"aten.{name}.default"
    for name in ("_local_scalar_dense", "item", "nonzero", "masked_select", "equal", "unique")
}
SEQUENCES, VECTORS = ("hubert-tiny.L2", "bert-tiny"), ("is13", "bert-tiny")
MODEL = ModelConfig(fusion="mit", d_model=8, heads=2, queries=3, layers=1, decoder_layers=1)
# name -> (features, model, epochs): MSMSER and its ablations, the fusion study's dialog
# models (more epochs: a fold has few dialog batches), Zhou et al.'s staged late fusion,
# the unimodal MLP.
FAMILIES = {
    "mit": (SEQUENCES, MODEL, 3),
    "concat-eval-mask": (
        SEQUENCES, ModelConfig(fusion="concat", d_model=8, heads=2, layers=1, eval_mask="text"), 3
    ),
    "no-encoder-no-selfatt": (SEQUENCES, replace(MODEL, encoder=False, selfatt=False), 3),
    "dialog": (
        VECTORS,
        ModelConfig(fusion="attention", fusion_at="middle", loss="perspective", d_model=8, heads=2),
        8,
    ),
    "late-prob": (SEQUENCES, ModelConfig(fusion="late-prob", d_model=8, cnn_channels=(2, 3)), 3),
    "unimodal": (("is13",), ModelConfig(fusion="none", d_model=8), 3),
}  # fmt: skip


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HDF5, so that the GPU image (h5py, no zarr) runs the CUDA tests below too."""
    path = tmp_path_factory.mktemp("store") / "features.h5"
    labelled_store(path, SETS, per_dialog=8)
    return path


def run(
    store: Path,
    out: Path,
    graphs: bool,
    monkeypatch: pytest.MonkeyPatch,
    family: str = "mit",
    device: str = "cpu",
    **changes: Any,
) -> dict:
    """A LOSO run of `family`, its steps replayed (`graphs`) or eager. On the CPU the
    plan's check is passed by and the Bi-GRU of dialog models takes its GPU way (factors
    at once), as a replay on CUDA; on CUDA the run is `--cuda-graphs` itself."""
    features, model, epochs = FAMILIES[family]
    config = TrainConfig(
        store=str(store), features=features, model=model, classes="4", protocol="loso",
        epochs=epochs, batch_size=4, lr=1e-2, seeds=1, device=device, out=str(out), name="run",
    )  # fmt: skip
    if device == "cuda":
        return train(replace(config, cuda_graphs=graphs, **changes))
    original = group_module.loop_config
    directions = gru.gru_directions
    with monkeypatch.context() as patch:
        patch.setattr(group_module, "loop_config", lambda r: replace(original(r), graphs=graphs))
        patch.setattr(gru, "gru_directions", partial(directions, factors_at_once=True))
        return train(replace(config, **changes))


def counting(monkeypatch: pytest.MonkeyPatch) -> list[capture.StepGraphs]:
    """Every `StepGraphs` made from here on (their counts tell how steps ran)."""
    made: list[capture.StepGraphs] = []
    original = capture.StepGraphs.__init__

    def spy(self: capture.StepGraphs, *args: Any) -> None:
        original(self, *args)
        made.append(self)

    monkeypatch.setattr(capture.StepGraphs, "__init__", spy)
    return made


def test_static_lengths_are_few_and_pad_at_most_a_quarter() -> None:
    lengths = range(1, 2000)
    static = [static_length(n) for n in lengths]
    assert all(s >= n for s, n in zip(static, lengths, strict=True))
    assert all(s <= max(4, 1.25 * n) for s, n in zip(static, lengths, strict=True))
    assert len(set(static)) <= 4 * 11  # four a doubling up to 2048
    assert all(static_length(s) == s for s in static)  # a static length stays


@pytest.mark.parametrize(
    ("family", "rmm_end"),
    [("mit", 0.7), ("mit", 0.3), ("concat-eval-mask", 0.7), ("dialog", 0.7), ("late-prob", 0.7)],
)
def test_a_run_from_fixed_buffers_trains_as_eager(
    family: str, rmm_end: float, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five LOSO members, RMM and dropout on, at static shapes with most steps run from
    the fixed buffers: the same curves and test results as eager steps at their own
    shapes (float rounding: padding changes the shapes of reductions). With RMM's
    schedule at 0 from the second epoch, steps of the same shapes then run without its
    draw: other operators, which a step captured in the first epoch must not replay."""
    model = replace(FAMILIES[family][1], rmm_end=rmm_end)
    eager = run(store_path, tmp_path / "eager", False, monkeypatch, family, model=model)
    made = counting(monkeypatch)
    fixed = run(store_path, tmp_path / "fixed", True, monkeypatch, family, model=model)
    counts = made[-1].counts  # the whole model's (Zhou et al.'s branches train first)
    assert counts["replayed"] > counts["eager"] > 0
    for a, b in zip(fixed["folds"], eager["folds"], strict=True):
        for curve in ("train_loss", "val_loss", "val_ua"):
            np.testing.assert_allclose(a["curves"][curve], b["curves"][curve], rtol=1e-4, atol=1e-5)
        assert a["metrics"] == b["metrics"]


class Reads(TorchDispatchMode):
    """The operators of a step and the storages it reads that it did not make."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple[Any, ...]] = []
        self.external: list[int | float | bool] = []
        self.kept: list[Any] = []  # the storages seen, alive: no address is reused
        self.made: set[int] = set()
        self.waits: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        tensors = [a for a in _flat((args, kwargs)) if isinstance(a, torch.Tensor)]
        for t in tensors:
            ptr = t.untyped_storage().data_ptr()
            if ptr in self.made:
                continue
            if t.dim() == 0 and t.untyped_storage().nbytes() == t.element_size():
                # A Python constant made a tensor (`x[..., 0] = True`): on CUDA a CPU
                # scalar, its value a kernel argument. The value must repeat.
                self.external.append(t.item())
                continue
            self.external.append(ptr)
            self.kept.append(t.untyped_storage())
        name = str(func)
        if name in SYNCS or (name.startswith("aten.index") and _bool_index(args)):
            self.waits.append(name)  # reads a value back: a capture cannot
        out = func(*args, **kwargs)
        for t in _flat(out):
            if isinstance(t, torch.Tensor):  # kept too: a later tensor cannot take its address
                self.made.add(t.untyped_storage().data_ptr())
                self.kept.append(t.untyped_storage())
        self.ops.append((str(func), _describe(args), _describe(kwargs)))
        return out


def _bool_index(args: Any) -> bool:
    """Indexing by a mask: its output's size is the mask's count, read from the device."""
    indices = args[1] if len(args) > 1 else ()
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in _flat(indices))


def _flat(x: Any) -> Iterator[Any]:
    if isinstance(x, (list, tuple)):
        for y in x:
            yield from _flat(y)
    elif isinstance(x, dict):
        for y in x.values():
            yield from _flat(y)
    else:
        yield x


def _describe(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return (tuple(x.shape), x.dtype, x.stride())
    if isinstance(x, (list, tuple)):
        return tuple(_describe(y) for y in x)
    if isinstance(x, dict):
        return tuple(sorted((k, _describe(v)) for k, v in x.items()))
    return x


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_replayed_step_reads_only_fixed_buffers_and_own_state(
    family: str, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a CUDA graph replay needs: the training and validation steps of one
    signature, run from the fixed buffers, make the same operators (shapes, strides,
    constants) and read the same storages (fixed buffers, weights, optimizer state), over
    epochs whose RMM probability changes and folds that stop at other steps; for MSMSER
    and its ablations."""
    logs: dict[capture.Signature, list[Reads]] = defaultdict(list)
    original = capture.Replays.replay

    def spy(self, key, step, fixed):  # type: ignore[no-untyped-def]
        def logged(batch):  # type: ignore[no-untyped-def]
            with Reads() as reads:
                out = step(batch)
            # Buffers that moved void the graphs; each training stage has its own.
            logs[(*key, self.moves, id(self))].append(reads)
            return out

        return original(self, key, logged, fixed)

    monkeypatch.setattr(capture.Replays, "replay", spy)
    run(store_path, tmp_path / "fixed", True, monkeypatch, family)
    for mode in ("train", "eval"):  # steps of one signature compared, several a mode
        repeats = [len(steps) for key, steps in logs.items() if key[0] == mode and len(steps) > 1]
        assert sum(repeats) >= 3, (mode, repeats)
    for first, *later in (steps for steps in logs.values() if len(steps) > 1):
        # Nothing waits for the device (a capture cannot): no value read back, no
        # output whose size depends on the data.
        assert not first.waits
        for step in later:
            assert step.ops == first.ops
            assert step.external == first.external


def test_fixed_buffers_that_grow_void_the_graphs_that_read_them() -> None:
    inputs = capture.Inputs()
    small = inputs.put("x", torch.ones(2, 3))
    assert not inputs.grew
    again = inputs.put("x", torch.zeros(3, 2))  # fits: the same buffer's front
    assert again.data_ptr() == small.data_ptr() and not inputs.grew
    inputs.put("x", torch.ones(4, 4))
    assert inputs.grew


def test_replays_warm_up_capture_once_and_recapture_after_buffers_move(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CUDA path's bookkeeping, with a stand-in for CUDA graphs that records what a
    capture would: a signature's first step eager (on a side stream), its second
    captured once, then replayed; buffers that move void the graphs."""
    events: list[str] = []

    class Graph:
        def replay(self) -> None:
            events.append("replay")

    class Capturing:
        def __init__(self, graph: Graph, pool: object, capture_error_mode: str) -> None:
            events.append(f"capture ({capture_error_mode})")

        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            return None

    class Stream:
        def __init__(self, *args: object) -> None: ...

        def wait_stream(self, other: object) -> None: ...

    monkeypatch.setattr(torch.cuda, "CUDAGraph", Graph)
    monkeypatch.setattr(torch.cuda, "graph", Capturing)
    monkeypatch.setattr(torch.cuda, "graph_pool_handle", lambda: "pool")
    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device: Stream())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    replays = capture.Replays(torch.device("cpu"))
    replays.cuda = True  # the CUDA path, with the stand-ins above
    monkeypatch.setattr(torch.Tensor, "record_stream", lambda self, s: None)

    def step(batch: Any) -> tuple[torch.Tensor, ...]:
        events.append("run")
        return (batch.labels.sum(),)

    def batch(n: int) -> Any:
        return capture.Batch({}, {}, torch.arange(n), torch.arange(n))

    replays.eager(step, batch(4), warm=True)  # first step: eager, on the side stream
    assert events == ["run"]
    events.clear()
    for _ in range(3):
        replays.replay(("key",), step, replays.batch(batch(4)))
    assert events == ["capture (thread_local)", "run", "replay", "replay", "replay"]
    assert replays.counts == {"eager": 1, "captured": 1, "replayed": 3}
    events.clear()
    replays.replay(("key",), step, replays.batch(batch(8)))  # labels buffer outgrown
    assert events == ["capture (thread_local)", "run", "replay"]


# -- On a GPU (skipped without CUDA; `bash benchmarks/gpu.sh` runs them first) ----------
# The same runs as above with real captures and replays: a graph replays the kernels it
# captured on the addresses it captured, which only CUDA can show.

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
@pytest.mark.parametrize(
    ("family", "precision", "rtol"),
    [
        ("mit", "fp32", 1e-3),
        ("concat-eval-mask", "fp32", 1e-3),
        ("dialog", "fp32", 1e-3),
        ("late-prob", "fp32", 1e-3),
        ("unimodal", "fp32", 1e-3),
        ("mit", "bf16", 5e-2),  # the GPU's default precision: rounding of bf16 products
    ],
)
def test_on_cuda_a_replayed_run_trains_as_eager(
    family: str,
    precision: str,
    rtol: float,
    store_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--cuda-graphs` on a GPU: most steps replayed from captured graphs, with the same
    curves as eager steps, RMM's schedule changing mid-run. Up to float rounding, which
    on a GPU also varies from run to run (kernels chosen per shape, atomic sums in
    attention's backward): a replay that read a stale buffer would be off by far more."""
    model = replace(FAMILIES[family][1], rmm_end=0.3)
    kw: dict[str, Any] = {"device": "cuda", "precision": precision, "model": model}
    eager = run(store_path, tmp_path / "eager", False, monkeypatch, family, **kw)
    made = counting(monkeypatch)
    replayed = run(store_path, tmp_path / "graphs", True, monkeypatch, family, **kw)
    counts = made[-1].counts
    assert counts["replayed"] > counts["captured"] > 0
    for a, b in zip(replayed["folds"], eager["folds"], strict=True):
        for curve in ("train_loss", "val_loss"):
            np.testing.assert_allclose(a["curves"][curve], b["curves"][curve], rtol=rtol, atol=1e-4)
