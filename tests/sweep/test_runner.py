"""Running sweeps: skip finished cells, share cells, locks, kill -9 and a killed dask worker."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from ser.sweep.cells import resolve_cells
from ser.sweep.report import sweep_report
from ser.sweep.results import damaged_cells, load_sweeps
from ser.sweep.runner import Outcome, balance, run_sweep, run_task, write_manifest
from ser.sweep.spec import load_spec

from .conftest import PARAMS, TINY


def cells_of(preset: str, store: Path, out: Path, **fixed: str) -> list[Any]:
    spec = load_spec(preset, params=PARAMS, fixed={**TINY, **fixed})
    return resolve_cells(spec.cells, str(store), out)


def seeded(store: Path, out: Path) -> list[Any]:
    """Table 3's Full row over seeds 0-5: six cells that train as one stacked model (cells
    differing in model options train apart: their modules differ). Without randomness
    (dropout 0, RMM off), so that a member scores the same in any stack."""
    fixed = {**TINY, "dropout": "0", "rmm": "false"}
    spec = load_spec("msmser-table3", params=PARAMS, fixed=fixed, grid={"seed": "0,1,2,3,4,5"})
    return resolve_cells([c for c in spec.cells if c.row.label == "Full"], str(store), out)


@pytest.fixture(scope="module")
def two_workers() -> Iterator[Any]:
    """One local cluster of 2 workers for the tests that run cells on dask workers: its
    start, and each worker's first import of torch and ser, once. A worker a test kills
    (kill -9) is started again by its nanny."""
    from ser.runtime.cluster import dask_client

    with dask_client(workers=2, gpus=0) as client:
        yield client


def metrics(out: Path, cells: list[Any]) -> dict[str, Any]:
    records = {c.key: json.loads((out / "cells" / c.key / "run.json").read_text()) for c in cells}
    return {k: [f["metrics"] for f in r["folds"]] for k, r in records.items()}


@pytest.mark.slow
def test_a_sweep_run_again_skips_finished_cells_and_shares_them(
    store_path: Path, tmp_path: Path
) -> None:
    cells = cells_of("msmser-table3", store_path, tmp_path)
    first = run_sweep(cells, tmp_path)
    assert sorted(o.status for o in first) == ["done"] * 6
    assert all(json.loads((tmp_path / "cells" / c.key / "run.json").read_text())["complete"]
               for c in cells)  # fmt: skip
    again = run_sweep(cells, tmp_path)
    assert [o.status for o in again] == ["skipped"] * 6
    # Table 2 shares its Full with Table 3: only its other five cells train.
    table2 = run_sweep(cells_of("msmser-table2", store_path, tmp_path), tmp_path)
    assert sorted(o.status for o in table2) == ["done"] * 5 + ["skipped"]


def test_a_cell_whose_record_is_damaged_is_said_so_not_reported_as_never_run(
    store_path: Path, tmp_path: Path
) -> None:
    spec = load_spec("msmser-table3", params=PARAMS, fixed=TINY)
    chosen = [c for c in spec.cells if c.row.label == "Full"]
    cells = resolve_cells(chosen[:1], str(store_path), tmp_path)
    write_manifest(spec, cells, tmp_path)
    assert [o.status for o in run_sweep(cells, tmp_path)] == ["done"]
    record = tmp_path / "cells" / cells[0].key / "run.json"
    record.write_text(record.read_text()[:300])  # cut short by a bad copy
    again = run_sweep(cells, tmp_path)
    assert [o.status for o in again] == ["failed"]
    said = again[0].message
    assert said.endswith(f"delete {record.parent} and run the sweep again to train it anew")
    assert "| Full | damaged | damaged |" in sweep_report(tmp_path)
    assert damaged_cells(load_sweeps(tmp_path)) == [f"cell 'Full' [{cells[0].key}]: {said}"]


@pytest.mark.slow
def test_a_cell_another_sweep_holds_is_reported_busy(store_path: Path, tmp_path: Path) -> None:
    cells = cells_of("msmser-table3", store_path, tmp_path)
    lock = tmp_path / "locks" / f"{cells[0].key}.lock"
    lock.parent.mkdir(parents=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        outcomes = {o.key: o for o in run_sweep(cells, tmp_path)}
    finally:
        os.close(fd)
    assert outcomes[cells[0].key].status == "busy"
    assert not (tmp_path / "cells" / cells[0].key).exists()  # never written into
    assert [outcomes[c.key].status for c in cells[1:]] == ["done"] * 5


@pytest.mark.slow
def test_kill_9_mid_sweep_loses_no_finished_cell(store_path: Path, tmp_path: Path) -> None:
    """A `ser sweep` killed once its first cell is finished: the same command (here in
    this process: what needs a process of its own is the kill) completes the rest and
    leaves the finished cell as it was."""
    from click.testing import CliRunner

    from ser.cli import main

    out = tmp_path / "sweep"
    fix = [x for k, v in {**TINY, "epochs": "6"}.items() for x in ("--fix", f"{k}={v}")]
    command = [sys.executable, "-m", "ser.cli", "sweep", "msmser-table2", "--store",
               str(store_path), "--out", str(out), "--set", "audio=hubert", "--set", "text=bert",
               *fix]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    finished: list[Path] = []
    while not finished and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        finished = [
            p for p in out.glob("cells/*/run.json") if json.loads(p.read_text())["complete"]
        ]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert finished, "the sweep finished no cell before the deadline"
    before = {p: p.read_bytes() for p in finished}
    done = CliRunner().invoke(main, command[3:])
    assert done.exit_code == 0, done.output
    assert all(p.read_bytes() == b for p, b in before.items())
    assert len([p for p in out.glob("cells/*/run.json")]) == 6
    assert "finished before" in done.stdout


class InProcess(NamedTuple):
    """The seeded cells swept in this process: where, what each task began with, the
    heartbeat lines and the outcomes."""

    out: Path
    cells: list[Any]
    told: list[list[str]]
    lines: list[str]
    outcomes: list[Outcome]


@pytest.fixture(scope="module")
def in_process(store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> InProcess:
    """`seeded`'s cells swept in this process, a heartbeat line at every step; read only
    (the killed dask worker's cells are compared with them)."""
    from ser.track.progress import Heartbeat, Progress

    class Lines(Progress):
        def __init__(self) -> None:
            self.lines: list[str] = []

        def heartbeat(self, text: str) -> None:
            self.lines.append(text)

    out = tmp_path_factory.mktemp("in_process")
    cells = seeded(store_path, out)
    told: list[list[str]] = []
    shown = Lines()
    outcomes = run_sweep(
        cells, out, on_start=lambda task: told.append([c.key for c in task]),
        progress=Heartbeat(shown, interval=0, first=0),  # a line at every step
    )  # fmt: skip
    return InProcess(out, cells, told, shown.lines, outcomes)


def crash_once(configs: list[Any], out: str, marker: str) -> list[Outcome]:
    """The first call finishes one cell, then kills its own worker process (kill -9).
    Every call notes its cells in `marker`.calls."""
    with open(marker + ".calls", "a") as calls:
        calls.write(",".join(sorted(c.name for c in configs)) + "\n")
    if not os.path.exists(marker):
        open(marker, "w").close()
        run_task(configs[:1], out)
        os.kill(os.getpid(), signal.SIGKILL)
    return run_task(configs, out)


@pytest.mark.slow
def test_a_killed_dask_worker_loses_no_finished_cell(
    in_process: InProcess, two_workers: Any, store_path: Path, tmp_path: Path
) -> None:
    """The seeded cells on the cluster, a worker killed after its first cell: each cell
    done, with the numbers the same cells have trained in this process (`in_process`)."""
    import functools

    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    cells = seeded(store_path, tmp_path / "dask")
    task = functools.partial(crash_once, marker=str(tmp_path / "crashed"))
    outcomes = run_sweep(cells, tmp_path / "dask", two_workers, task=task)
    assert (tmp_path / "crashed").exists()
    assert sorted(o.status for o in outcomes) == ["done"] * 6
    # The six cells stack into one model; with two workers they train as two tasks.
    calls = (tmp_path / "crashed.calls").read_text().split()
    assert {len(call.split(",")) for call in calls} == {3}
    assert len(set(calls)) == 2 and set(",".join(calls).split(",")) == {c.key for c in cells}
    assert metrics(tmp_path / "dask", cells) == metrics(in_process.out, in_process.cells)


@pytest.mark.slow
def test_a_failing_task_fails_its_cells_and_the_others_still_train(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ser.train.recipe as run_module

    original = run_module.train_many

    def out_of_memory(configs: Any, progress: Any = None, threads: Any = None) -> Any:
        if any(c.model.fusion == "concat" for c in configs):
            raise RuntimeError("CUDA out of memory")
        return original(configs, progress, threads)

    monkeypatch.setattr(run_module, "train_many", out_of_memory)
    outcomes = {
        o.key: o for o in run_sweep(cells_of("msmser-table2", store_path, tmp_path), tmp_path)
    }
    failed = [o for o in outcomes.values() if o.status == "failed"]
    assert len(failed) == 1 and "CUDA out of memory" in failed[0].message
    assert sum(o.status == "done" for o in outcomes.values()) == 5


def test_tasks_are_split_by_cells_until_every_worker_has_one() -> None:
    assert balance([list("abcdef")], workers=2) == [list("abc"), list("def")]
    assert balance([list("abc"), list("d")], workers=4) == [["a"], ["b"], ["c"], ["d"]]
    assert balance([["a"], ["b"]], workers=8) == [["a"], ["b"]]  # a cell is never split
    assert balance([list("abcd")], workers=1) == [list("abcd")]  # one worker: all stacked
    assert balance([], workers=3) == []


@pytest.mark.slow
def test_in_process_tasks_show_their_training_and_say_what_a_cell_s_seconds_are(
    in_process: InProcess,
) -> None:
    assert in_process.told == [[c.key for c in in_process.cells]]  # one stacked model
    assert in_process.lines and "training step 1/" in in_process.lines[0]
    for outcome in in_process.outcomes:
        assert outcome.shared == 6 and outcome.ua is not None and outcome.wa is not None


def test_on_a_cluster_a_wait_without_a_finished_task_is_said_and_workers_lines_shown(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import distributed

    import ser.sweep.runner as runner
    from ser.sweep.progress import TOPIC

    class Done:
        def __init__(self, value: list[Outcome]) -> None:
            self.value = value

        def result(self) -> list[Outcome]:
            return self.value

    class Client:
        def __init__(self) -> None:
            self.topics: dict[str, Any] = {}

        def scheduler_info(self) -> dict[str, Any]:
            return {"workers": {"w": {}}}

        def subscribe_topic(self, topic: str, handler: Any) -> None:
            self.topics[topic] = handler

        def unsubscribe_topic(self, topic: str) -> None:
            del self.topics[topic]

        def submit(self, task: Any, configs: Any, out: str, pure: bool) -> Done:
            # What a worker's task publishes: its cells' keys (msgpack: a tuple) and a
            # line; an event of another sweep's cell and one of another shape are not ours.
            handler = self.topics[TOPIC]
            handler((0.0, {"keys": (configs[0].name,), "text": "seed 0 session5: epoch 1/2"}))
            handler((0.0, {"keys": ("elsewhere",), "text": "not ours"}))
            handler((0.0, "a string someone logged"))
            return Done(task(configs, out))

    waits = iter([TimeoutError(), TimeoutError()])

    def wait(futures: list[Done], timeout: float, return_when: str) -> tuple[list, list]:  # type: ignore[type-arg]
        error = next(waits, None)
        if error is not None:
            raise error
        return futures, []

    monkeypatch.setattr(distributed, "wait", wait)
    monkeypatch.setattr(runner, "WAIT", 0.0)  # every timeout counts as a long wait
    cells = cells_of("msmser-table3", store_path, tmp_path)[:1]
    waited: list[int] = []
    told: list[tuple[list[str], str]] = []
    client = Client()
    given: list[Any] = []

    def task(configs: Any, out: str, **threads: Any) -> list[Outcome]:
        given.extend(configs)
        return [Outcome(cells[0].key, "done")]

    outcomes = run_sweep(
        cells, tmp_path, client, task=task, on_wait=lambda: waited.append(1),
        on_progress=lambda cs, text: told.append(([c.key for c in cs], text)),
    )  # fmt: skip
    assert [o.status for o in outcomes] == ["done"]
    # On a cluster the worker is the task's process: its runs never start a pool of their
    # own; in this process `ser train`'s rule may (`ser.runtime.execution`).
    assert [c.processes for c in given] == [1]
    run_sweep(cells, tmp_path / "here", task=task)
    assert [c.processes for c in given] == [1, None]
    assert told == [([cells[0].key], "seed 0 session5: epoch 1/2")]
    assert len(waited) == 1  # the line said counts as news: one of the two waits was silent
    assert client.topics == {}  # unsubscribed


def weights(run_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return {p.name: load_file(p) for p in sorted((run_dir / "checkpoints").glob("*.safetensors"))}


@pytest.mark.slow
def test_a_cell_on_a_dask_worker_equals_ser_train_with_its_threads_and_tells_its_epochs(
    two_workers: Any, store_path: Path, tmp_path: Path
) -> None:
    """Bit for bit: the worker process (the cluster's settings, another process's torch)
    trains what `ser train --threads 1` trains; its epoch lines reach the sweep."""
    import torch

    from ser.runtime.threads import ThreadChoice
    from ser.train.recipe import train

    cells = cells_of("msmser-table3", store_path, tmp_path / "dask")[:1]
    told: list[str] = []
    choice = ThreadChoice(1, "sweep: test")
    [outcome] = run_sweep(
        cells, tmp_path / "dask", two_workers, threads=choice,
        on_progress=lambda cs, text: told.append(f"{cs[0].key}: {text}"),
    )  # fmt: skip
    assert outcome.status == "done", outcome.message
    assert any(f"{cells[0].key}: seed 0 session5: epoch 1/2" in line for line in told), told
    assert any("epoch 2/2" in line for line in told)  # the last epoch always
    cell_dir = tmp_path / "dask" / "cells" / cells[0].key
    on_worker = json.loads((cell_dir / "run.json").read_text())
    assert on_worker["threads"] == {"count": 1, "source": "sweep: test"}
    from dataclasses import replace

    config = replace(cells[0].config, out=str(tmp_path / "train"), name="plain", threads=1)
    plain = train(config)
    assert plain.threads is not None and plain.threads.count == 1
    assert [f.to_json()["metrics"] for f in plain.folds] == [
        f["metrics"] for f in on_worker["folds"]
    ]
    ours, theirs = weights(tmp_path / "train" / "plain"), weights(cell_dir)
    assert ours.keys() == theirs.keys() and ours
    for name in ours:
        assert ours[name].keys() == theirs[name].keys()
        assert all(torch.equal(ours[name][k], theirs[name][k]) for k in ours[name])


def interrupt_third(configs: list[Any], out: str, marker: str, **kw: Any) -> list[Outcome]:
    """A task that notes the cells it trains in `marker`; its third call is a Ctrl-C."""
    with open(marker, "a") as calls:
        calls.write(",".join(sorted(c.name for c in configs)) + "\n")
    if len(Path(marker).read_text().split()) == 3 and not os.path.exists(marker + ".resumed"):
        raise KeyboardInterrupt
    return run_task(configs, out, **kw)


@pytest.mark.slow
def test_a_sweep_interrupted_and_resumed_under_another_worker_count_trains_each_cell_once(
    two_workers: Any, store_path: Path, tmp_path: Path
) -> None:
    import functools

    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    out, marker = tmp_path / "sweep", str(tmp_path / "calls")
    cells = cells_of("msmser-table2", store_path, out)  # six cells, six tasks
    task = functools.partial(interrupt_third, marker=marker)
    first: list[Outcome] = []
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cells, out, task=task, on_outcome=lambda o, c: first.append(o))
    assert [o.status for o in first] == ["done", "done"]
    Path(marker + ".resumed").touch()
    second = run_sweep(cells, out, two_workers, task=task)
    statuses = {o.key: o.status for o in second}
    assert sorted(statuses.values()) == ["done"] * 4 + ["skipped"] * 2
    assert {o.key for o in first} == {k for k, s in statuses.items() if s == "skipped"}
    trained = [k for line in Path(marker).read_text().split() for k in line.split(",")]
    # Each cell's training began once, but the interrupted one's, which began again.
    assert sorted(set(trained)) == sorted(c.key for c in cells)
    assert len(trained) == len(cells) + 1
    for cell in cells:
        record = json.loads((out / "cells" / cell.key / "run.json").read_text())
        runs = [(f["seed"], f["fold"]) for f in record["folds"]]
        assert record["complete"] and len(runs) == len(set(runs)) == 1
