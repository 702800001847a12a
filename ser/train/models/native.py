"""The C kernels of the training code, compiled on first use for the CPU they run on.

`gru_kernel.c` (the CPU GRU recurrence, see gru.py) is compiled with the system's C
compiler (`$CC`, else `cc`) and `-march=native` into a shared library, cached under
`$SER_CACHE_DIR` (default `~/.cache/ser`) by a hash of the source, the flags, the
compiler and the CPU, so that a cache on a shared home directory never hands a library
built for one CPU to another. A new library is written under a temporary name and
renamed into place, so processes building at once never load a half-written file.

Where the kernel cannot be had (no compiler, a build error, no AVX-512, Windows or
macOS), `gru_kernel()` returns None once and for all in that process, logs why, and
gru.py runs PyTorch's ops instead: same results, slower. `disabled()` forces that path
for a block (tests and benchmarks compare the two).

>>> kernel = gru_kernel()
>>> kernel is None or kernel.ser_gru_simd() == 512
True
>>> with disabled():
...     gru_kernel() is None
True
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("gru_kernel.c")
# -fopenmp: see gru_kernel.c (PyTorch's own OpenMP threads); no -ffast-math, whose
# start-up code would switch denormals off for the whole process.
FLAGS: tuple[str, ...] = ("-O3", "-march=native", "-fopenmp", "-fno-math-errno")
FLAGS += ("-ffp-contract=fast", "-shared", "-fPIC")
LIBS = ("-lmvec", "-lm")  # glibc's vector maths (expf on 16 lanes), then libm
_enabled = [True]


class BuildError(RuntimeError):
    """The C compiler failed or is missing."""


def gru_kernel() -> ctypes.CDLL | None:
    """The compiled `gru_kernel.c` for this CPU, or None where it cannot be had."""
    return _load() if _enabled[-1] else None


@contextmanager
def disabled() -> Iterator[None]:
    """Run PyTorch's ops instead of the C kernels inside the block."""
    _enabled.append(False)
    try:
        yield
    finally:
        _enabled.pop()


@functools.cache
def _load() -> ctypes.CDLL | None:
    if platform.system() != "Linux":
        log.info("ser: the C GRU kernel is built on Linux only; using PyTorch's ops")
        return None
    try:
        lib = ctypes.CDLL(str(build(SOURCE, cache_dir())))
    except (BuildError, OSError) as error:
        log.warning("ser: could not build the C GRU kernel (%s); using PyTorch's ops", error)
        return None
    if lib.ser_gru_simd() != 512:
        log.info("ser: no AVX-512 on this CPU; the GRU runs on PyTorch's ops")
        return None
    _declare(lib)
    return lib


def cache_dir() -> Path:
    """Where compiled kernels are kept: $SER_CACHE_DIR, else ~/.cache/ser."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ser"
    return Path(os.environ.get("SER_CACHE_DIR", default))


def build(source: Path, directory: Path, compiler: str | None = None) -> Path:
    """Compile `source` into a shared library in `directory` unless an up-to-date one is
    there; returns its path. Raises BuildError if the compiler is missing or fails."""
    cc = compiler or os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise BuildError(f"no C compiler {cc!r} on PATH")
    key = hashlib.sha256()
    for part in (source.read_bytes(), " ".join(FLAGS + LIBS).encode(), _describe(cc), _cpu()):
        key.update(part)
    target = directory / f"{source.stem}-{key.hexdigest()[:16]}.so"
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=directory)
    os.close(fd)
    try:
        command = [cc, *FLAGS, str(source), "-o", tmp, *LIBS]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BuildError(f"{' '.join(command)} failed: {done.stderr.strip()[:500]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _describe(cc: str) -> bytes:
    done = subprocess.run([cc, "--version"], capture_output=True, check=False)
    return done.stdout


def _cpu() -> bytes:
    """The CPU's model and feature flags (what -march=native compiles for)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor().encode()
    wanted = ("model name", "flags")
    return "".join(sorted({line for line in text.splitlines() if line.startswith(wanted)})).encode()


def _declare(lib: ctypes.CDLL) -> None:
    i, p = ctypes.c_int, ctypes.c_void_p
    lib.ser_bigru_forward.argtypes = [i, i, i, i] + [p] * 9
    lib.ser_bigru_forward.restype = i
    lib.ser_bigru_backward.argtypes = [i, i, i, i] + [p] * 10
    lib.ser_bigru_backward.restype = i
