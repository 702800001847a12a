"""Faults a careful new user meets on the command line, each one clear line: a path that
cannot be written (a file where a folder goes, a read-only folder or store), a number
that is not one, a damaged run among readable ones, a second training of one run, and
Ctrl-C in `ser train` and in `ser extract --features is13`. Each test makes the fault,
asserts the exit code, the one line naming the path (or option) and its problem and no
traceback, then puts the situation right and runs the command again: it does what a
clean run does (for an interrupt: it resumes).

Read-only folders are made so for this process as for any user: their write bits off,
and, when the tests run as root (whom permission bits do not stop), this thread without
CAP_DAC_OVERRIDE for the block (`read_only`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from click.testing import Result

from ser.cache import FeatureStore
from ser.report.runs import load_run
from tests.processes import ROOT, START, ser_command
from tests.refused import one_line, ser

IS13 = ("is13", "audio", "utterance", 7, "float32")
TRAIN = ("--features", "is13", "--fusion", "none", "--classes", "4", "--batch-size", "8",
         "--lr", "0.01", "--device", "cpu", "--protocol", "session5")  # fmt: skip
CELL = """name = "one"
[fixed]
features = "is13"
fusion = "none"
classes = "4"
protocol = "session5"
epochs = 2
batch-size = 8
seeds = 1
[[cells]]
label = "is13"
"""


@pytest.fixture(scope="module")
def store(labelled_stores: Callable[..., Path]) -> Path:
    return labelled_stores({"is13": IS13})


def train(store: Path, out: Path, *more: str) -> Result:
    return ser("train", "--store", store, *TRAIN, "--epochs", "2", "--out", out, *more)


def trained(result: Result, run_dir: Path) -> None:
    """What a clean `ser train` of one seed on session 5 leaves."""
    assert result.exit_code == 0, result.output
    record = load_run(run_dir)
    assert record.complete and [e.key for e in record.folds] == [(0, "session5")]


# -- Read-only folders ----------------------------------------------------------------

_CAP_VERSION_3, _CAP_DAC_OVERRIDE = 0x20080522, 1


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint32) for name in ("effective", "permitted", "inheritable")]


@contextlib.contextmanager
def _no_override() -> Iterator[None]:
    """This thread without CAP_DAC_OVERRIDE for the block when it has it (root): it then
    meets permission bits as any user does (pid 0 in capset: the calling thread)."""
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = _CapHeader(_CAP_VERSION_3, 0), (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    held = data[0].effective
    data[0].effective = held & ~(1 << _CAP_DAC_OVERRIDE)
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    try:
        yield
    finally:
        data[0].effective = held
        libc.capset(ctypes.byref(header), data)


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` read-only to this process for the block (module docstring)."""
    mode = folder.stat().st_mode
    folder.chmod(0o555)
    try:
        with _no_override():
            yield
    finally:
        folder.chmod(mode)


def test_train_into_a_read_only_folder_is_refused_before_training(
    store: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    with read_only(shared):
        line = one_line(train(store, shared / "runs"))
    assert line == f"error: --out {shared / 'runs'}: cannot write in {shared} (Permission denied)"
    assert list(shared.iterdir()) == []
    trained(train(store, shared / "runs"), shared / "runs" / "is13_none_session5_c4")


@pytest.mark.parametrize("under", [False, True])
def test_train_out_that_is_a_file_is_refused_before_training(
    store: Path, tmp_path: Path, under: bool
) -> None:
    """Found only once a fold had trained, as a traceback from mkdir."""
    taken = tmp_path / "runs"
    taken.write_text("my notes")
    out = taken / "mine" if under else taken
    line = one_line(train(store, out))
    problem = f"{taken} is a file, not a folder" if under else "exists and is a file, not a folder"
    assert line == f"error: --out {out}: {problem}"
    taken.unlink()
    trained(train(store, out), out / "is13_none_session5_c4")


def test_a_run_folder_that_is_a_file_is_refused(store: Path, tmp_path: Path) -> None:
    (tmp_path / "mine").write_text("not a run")
    line = one_line(train(store, tmp_path, "--name", "mine"))
    assert line == f"error: {tmp_path / 'mine'}: a file where the run's folder goes; choose " + (
        "another --name or --out"
    )
    (tmp_path / "mine").unlink()
    trained(train(store, tmp_path, "--name", "mine"), tmp_path / "mine")


@pytest.fixture(scope="module")
def run_dir(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    trained(train(store, out, "--name", "run"), out / "run")
    return out / "run"


def test_report_plots_into_a_read_only_folder_or_a_file(run_dir: Path, tmp_path: Path) -> None:
    with read_only(tmp_path):
        line = one_line(ser("report", run_dir, "--plots", tmp_path / "plots"))
    assert line == f"error: --plots {tmp_path / 'plots'}: cannot write in {tmp_path} " + (
        "(Permission denied)"
    )
    (tmp_path / "plots").write_text("")
    line = one_line(ser("report", run_dir, "--plots", tmp_path / "plots"))
    assert line == f"error: --plots {tmp_path / 'plots'}: exists and is a file, not a folder"
    (tmp_path / "plots").unlink()
    done = ser("report", run_dir, "--plots", tmp_path / "plots")
    assert done.exit_code == 0, done.output
    assert sorted(p.suffix for p in (tmp_path / "plots").iterdir()) == [".png", ".png"]


def test_predict_outputs_in_a_read_only_folder_or_on_a_folder(
    trained_run: Any, tmp_path: Path
) -> None:
    """Checked before a checkpoint loads: --plot into a read-only folder was a traceback
    once every file had been predicted."""
    base = ("predict", "--run", trained_run.run_dir, trained_run.wavs[0], "--text", "hi")
    plot = tmp_path / "out" / "timeline.png"
    plot.parent.mkdir()
    with read_only(plot.parent):
        line = one_line(ser(*base, "--segment", "fixed:1", "--plot", plot))
    assert line == f"error: --plot {plot}: cannot write in {plot.parent} (Permission denied)"
    line = one_line(ser(*base, "--csv", plot.parent))
    assert line == f"error: --csv {plot.parent}: is a folder; give a file's name"
    done = ser(*base, "--device", "cpu", "--segment", "fixed:1", "--plot", plot)
    assert done.exit_code == 0, done.output
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_sweep_out_in_a_read_only_folder_or_a_file(store: Path, tmp_path: Path) -> None:
    spec = tmp_path / "one.toml"
    spec.write_text(CELL)
    out = tmp_path / "shared" / "sweep"
    out.parent.mkdir()
    args = ("sweep", spec, "--store", store, "--fix", "lr=0.01")
    with read_only(out.parent):
        line = one_line(ser(*args, "--out", out))
    assert line == f"error: --out {out}: cannot write in {out.parent} (Permission denied)"
    line = one_line(ser(*args, "--out", spec))
    assert line == f"error: --out {spec}: exists and is a file, not a folder"
    done = ser(*args, "--out", out)
    assert done.exit_code == 0, done.output
    assert "1 cells, 1 trained, 0 finished before, 0 failed" in done.output


@pytest.mark.slow
def test_extract_into_a_read_only_store_or_folder(
    synthetic_corpus: tuple[Path, Any], tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    store = shared / "f.zarr"
    args = ("extract", synthetic_corpus[0], "--store", store, "--features", "logmel", "-q")
    with read_only(shared):  # where the store (and its lock) would be made
        line = one_line(ser(*args))
    assert line == f"error: --store {store}: cannot write in {shared} (Permission denied)"
    assert list(shared.iterdir()) == []
    first = ser(*args)
    assert first.exit_code == 0, first.output
    again = (*args, "--overwrite")  # asks to write into the store
    with read_only(store):
        line = one_line(ser(*again))
        assert ser(*args).exit_code == 0  # a finished request writes nothing: answered
    assert line == f"error: --store {store}: cannot write in it (Permission denied)"
    done = ser(*again)
    assert done.exit_code == 0, done.output
    assert FeatureStore.open(store).info("logmel80").complete


@pytest.mark.parametrize(("name", "kind"), [("f.zarr", "file"), ("f.h5", "folder")])
def test_a_store_path_of_the_wrong_kind_is_named(
    synthetic_corpus: tuple[Path, Any], tmp_path: Path, name: str, kind: str
) -> None:
    store = tmp_path / name
    store.mkdir() if kind == "folder" else store.write_text("")
    args = ("extract", synthetic_corpus[0], "--store", store, "--features", "logmel", "-q")
    wanted = "a file" if kind == "folder" else "a folder"
    line = one_line(ser(*args))
    assert line == f"error: --store {store}: is a {kind}; a {store.suffix} store is {wanted}"


def test_a_corpus_root_that_is_a_file_and_an_unknown_feature_set(
    store: Path, tmp_path: Path
) -> None:
    root = tmp_path / "IEMOCAP_full_release"
    root.write_text("")
    line = one_line(ser("extract", root, "--store", tmp_path / "f.zarr", "--features", "is13"))
    assert line == f"error: {root} is not an IEMOCAP root: it is a file, not a folder"
    line = one_line(train(store, tmp_path, "--features", "hubert"))
    assert "feature set 'hubert' is not in the store" in line and "(it holds: is13)" in line


# -- Numbers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--lr", "nan", "--lr: 'nan' is not a finite number"),
        ("--lr", "inf", "--lr: 'inf' is not a finite number"),  # trained to NaN losses
        ("--lr", "0", "--lr: must be above 0.0, got 0.0"),
        ("--weight-decay", "-1", "--weight-decay: must be at least 0.0, got -1.0"),
        ("--dropout", "nan", "--dropout: 'nan' is not a finite number"),
    ],
)
def test_train_numbers_that_cannot_work_are_one_line(
    store: Path, tmp_path: Path, option: str, value: str, said: str
) -> None:
    line = one_line(train(store, tmp_path, option, value))
    assert line == f"error: {said}"
    assert list(tmp_path.iterdir()) == []


def test_sweep_and_predict_numbers_that_cannot_work_are_one_line(
    store: Path, run_dir: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "one.toml"
    spec.write_text(CELL)
    out = tmp_path / "sweep"
    line = one_line(ser("sweep", spec, "--store", store, "--out", out, "--fix", "lr=nan"))
    assert line == f"error: {spec}: one 'is13': lr = 'nan': 'nan' is not a finite number"
    wav = tmp_path / "a.wav"
    line = one_line(ser("predict", "--run", run_dir, wav, "--segment", "vad", "--pad", "nan"))
    assert line == "Error: Invalid value for '--pad': 'nan' is not a finite number"
    done = ser("sweep", spec, "--store", store, "--out", out, "--fix", "lr=0.01")
    assert done.exit_code == 0, done.output


# -- A report with a damaged run -------------------------------------------------------


def test_report_reports_the_readable_runs_and_names_the_others(
    run_dir: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    for name in ("good", "cut", "empty"):
        (runs / name).mkdir(parents=True)
    good = (run_dir / "run.json").read_text()
    (runs / "good" / "run.json").write_text(good)
    (runs / "cut" / "run.json").write_text(good[: len(good) // 2])  # a copy cut short
    (runs / "empty" / "run.json").write_text("")
    result = ser("report", runs)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert result.stdout.count("| run | is13 | none | session5 |") == 1  # the good run's row
    skipped = result.stderr.splitlines()
    assert [line.split(": ")[1] for line in skipped] == [
        str(runs / "cut" / "run.json"),
        str(runs / "empty" / "run.json"),
    ]
    assert all(line.startswith("skipped: ") and "not a readable JSON" in line for line in skipped)
    none = ser("report", runs / "cut", runs / "empty")
    assert none.exit_code == 2 and "Traceback" not in none.output
    assert [line.split(": ")[0] for line in none.stderr.splitlines()] == ["error", "error"]
    for name in ("cut", "empty"):  # copied again, whole
        (runs / name / "run.json").write_text(good)
    whole = ser("report", runs)
    assert whole.exit_code == 0 and whole.stderr == ""
    assert whole.stdout.count("| run | is13 | none | session5 |") == 3


# -- Interrupts and a second training --------------------------------------------------


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Started:
    """A `ser` command running in a session of its own (as from a terminal, whose Ctrl-C
    reaches every process of the group), its output in files."""

    def __init__(self, args: tuple[str | Path, ...], folder: Path) -> None:
        self.out, self.err = folder / "stdout", folder / "stderr"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            # SIGINT restored in the child: a suite started in the background (`cmd &`
            # in a script) hands its children an ignored SIGINT, and Ctrl-C would not stop it.
            self.proc = subprocess.Popen(
                ser_command(*args), cwd=ROOT, stdout=out, stderr=err, start_new_session=True,
                preexec_fn=_default_sigint,
            )  # fmt: skip

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def wait_for(self, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + START
        while not ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"ended ({self.proc.returncode}) early:\n{self.stderr()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"not working {START:.0f} s after its start:\n{self.stderr()}")
            time.sleep(0.05)

    def pool(self) -> list[psutil.Process]:
        """Its pool processes (spawned by multiprocessing) running now."""
        with contextlib.suppress(psutil.NoSuchProcess):
            children = psutil.Process(self.proc.pid).children(recursive=True)
            return [p for p in children if "--multiprocessing-fork" in p.cmdline()]
        return []

    def ctrl_c(self) -> tuple[int, str]:
        """SIGINT to the whole group, as Ctrl-C sends it; (exit code, stderr) once it and
        its pool processes (whose last words would come after its own) have ended."""
        pool = self.pool()
        os.killpg(self.proc.pid, signal.SIGINT)
        code = self.proc.wait(timeout=60)
        _, alive = psutil.wait_procs(pool, timeout=30)
        assert alive == [], f"{alive} outlived it"
        return code, self.stderr()

    def end(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@contextlib.contextmanager
def started(*args: str | Path, folder: Path) -> Iterator[Started]:
    command = Started(args, folder)
    try:
        yield command
    finally:
        command.end()


def quiet(stderr: str) -> None:
    """Nothing but ser's own lines: no traceback from the process or its pool."""
    for noise in ("Traceback", "Exception ignored", "KeyboardInterrupt", "Aborted!"):
        assert noise not in stderr, stderr


@pytest.mark.slow
def test_train_is_one_process_per_run_and_ctrl_c_says_how_to_resume(
    store: Path, tmp_path: Path
) -> None:
    """Two seeds, one after another: Ctrl-C once the first is recorded. Before that, a
    second `ser train` of the run is refused, naming the first."""
    out = tmp_path / "runs"
    run = out / "run"
    one_by_one = ("--members-at-once", "1", "--processes", "1")
    # Long enough that the refused second command, however slow a busy machine makes its
    # start, ends while the first still trains its second seed.
    args = ("train", "--store", store, *TRAIN, "--epochs", "800", "--seeds", "2", *one_by_one,
            "--out", out, "--name", "run")  # fmt: skip
    with started(*args, folder=tmp_path) as first:
        first.wait_for(lambda: "training as" in first.stderr())  # its lock is held
        line = one_line(ser(*args))
        holder = f"(pid {first.proc.pid} on {socket.gethostname()})"
        assert line.startswith(f"error: {run} is being trained by another ser process {holder}")
        first.wait_for((run / "run.json").exists)  # the first seed recorded
        code, stderr = first.ctrl_c()
    assert code == 130, stderr
    quiet(stderr)
    last = stderr.strip().splitlines()[-1]
    said = re.fullmatch(
        r"interrupted: 1 of 2 \(seed, fold\) runs kept in (\S+); to resume: (.+)", last
    )
    assert said is not None, stderr
    assert said[1] == str(run)
    resume = shlex.split(said[2])
    assert resume[:2] == ["ser", "train"] and "--epochs" in resume
    done = ser(*resume[1:])
    assert done.exit_code == 0, done.output
    assert "resuming run: 1 (seed, fold) run(s) already done" in done.stderr
    record = load_run(run)
    assert record.complete and [e.key for e in record.folds] == [(0, "session5"), (1, "session5")]


@pytest.mark.slow
@pytest.mark.parametrize("when", ["starting", "working"])
def test_extract_is13_ctrl_c_stops_its_processes_quietly(
    synthetic_corpus: tuple[Path, Any], tmp_path: Path, when: str
) -> None:
    """Each of openSMILE's processes printed a traceback, while starting (importing torch)
    as while working ('Exception ignored ... KeyboardInterrupt' from openSMILE's callback),
    and the broken pool one more. Stopped once working, it resumes."""
    store = tmp_path / "f.zarr"
    args = ("extract", synthetic_corpus[0], "--store", store, "--features", "is13",
            "--classes", "4", "--processes", "2", "--shard-size", "8", "--quiet")  # fmt: skip

    def working() -> bool:  # 8 of its 15 shards committed (staged or placed), the rest to go
        try:
            records = [*tmp_path.rglob("shard-*.json"), *tmp_path.rglob("placed-*.json")]
            return sum(".part" not in r.name for r in records) >= 8
        except FileNotFoundError:  # a folder renamed away while it was walked
            return False

    def starting() -> bool:  # both processes half a second into their imports
        pool = command.pool()
        with contextlib.suppress(psutil.NoSuchProcess):
            return len(pool) == 2 and all(sum(p.cpu_times()[:2]) >= 0.5 for p in pool)
        return False

    with started(*args, folder=tmp_path) as command:
        command.wait_for(working if when == "working" else starting)
        code, stderr = command.ctrl_c()
    assert code == 130, stderr
    quiet(stderr)
    assert stderr.strip().splitlines() == [
        "interrupted: finished shards are kept; run the same command to resume"
    ]
    if when == "starting":
        return
    assert not FeatureStore.open(store).info("is13").complete
    done = ser(*args)
    assert done.exit_code == 0, done.output
    n = len(FeatureStore.open(store).manifest)
    assert f"extracted 1 feature set(s) for {n} utterances" in done.stdout
    assert re.search(rf"is13 +{n} rows x 6373 +float32 .* 0 failed", done.stdout)
