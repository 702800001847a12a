"""The C kernels of the training code, compiled on first use for the CPU they run on.

`gru_kernel.c` (the dialog models' Bi-GRU layer, see gru_native.py),
`attention_kernel.c` (their self-attention, see attention_native.py) and
`dropout_kernel.c` (dropout masks, see dropout.py) are compiled with the system's C
compiler (`$CC`, else `cc`) and `-march=native` into one shared library, cached under
`$SER_CACHE_DIR` (default `~/.cache/ser`) by a hash of the source, the flags, the
compiler and the CPU, so that a cache on a shared home directory never hands a library
built for one CPU to another. A new library is written under a temporary name and
renamed into place, so processes building at once never load a half-written file.

The kernels use AVX-512, or AVX2 with FMA (as `-march=native` finds them: kernels.h).
Where they cannot be had (no compiler, a build error, neither instruction set, Windows
or macOS), `kernels()` returns None once and for all in that process, logs why, and the
models run PyTorch's ops instead: same results, slower. `disabled()` forces that path
for a block (tests and benchmarks compare the two). The kernels take float32 CPU
tensors (`kernel_for`) as raw pointers (`pointers`, `pointer_array`).

>>> lib = kernels()
>>> lib is None or lib.ser_gru_simd() in (512, 256)
True
>>> with disabled():
...     kernels() is None
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SOURCES = tuple(
    Path(__file__).with_name(f) for f in ("gru_kernel.c", "attention_kernel.c", "dropout_kernel.c")
)
HEADERS = (Path(__file__).with_name("kernels.h"),)
# -fopenmp: see gru_kernel.c (PyTorch's own OpenMP threads); no -ffast-math, whose
# start-up code would switch denormals off for the whole process.
FLAGS: tuple[str, ...] = ("-O3", "-march=native", "-fopenmp", "-fno-math-errno")
FLAGS += ("-ffp-contract=fast", "-shared", "-fPIC")
LIBS = ("-lmvec", "-lm")  # glibc's vector maths (expf on 16 lanes), then libm
_enabled = [True]


class BuildError(RuntimeError):
    """The C compiler failed or is missing."""


def kernels() -> ctypes.CDLL | None:
    """The compiled kernels for this CPU, or None where they cannot be had."""
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
        log.info("ser: the C kernels are built on Linux only; using PyTorch's ops")
        return None
    try:
        lib = load(_build_here())
    except (BuildError, OSError) as error:
        log.warning("ser: could not build the C kernels (%s); using PyTorch's ops", error)
        return None
    if lib.ser_gru_simd() not in (512, 256):
        log.info("ser: neither AVX-512 nor AVX2 on this CPU; using PyTorch's ops")
        return None
    return lib


def _build_here() -> Path:
    """`build` into the cache directory, or into a private temporary one where the cache
    cannot be written (a read-only home directory, say)."""
    try:
        return build(SOURCES, cache_dir(), headers=HEADERS)
    except OSError as error:
        fallback = Path(tempfile.gettempdir()) / f"ser-kernels-{os.getuid()}"
        log.info(
            "ser: kernel cache %s not writable (%s); building in %s", cache_dir(), error, fallback
        )
        fallback.mkdir(mode=0o700, exist_ok=True)
        # A shared temporary directory: load only from a directory that is ours alone.
        mode = fallback.lstat()
        if fallback.is_symlink() or mode.st_uid != os.getuid() or mode.st_mode & 0o077:
            raise BuildError(f"{fallback} is not a private directory of this user") from error
        return build(SOURCES, fallback, headers=HEADERS)


def load(path: Path) -> ctypes.CDLL:
    """A built library with its functions' C signatures declared."""
    lib = ctypes.CDLL(str(path))
    i, p = ctypes.c_int, ctypes.c_void_p
    lib.ser_gru_simd.argtypes, lib.ser_gru_simd.restype = [], i
    lib.ser_bigru_forward.argtypes = [i, i, i, i] + [p] * 9
    lib.ser_bigru_forward.restype = i
    lib.ser_bigru_backward.argtypes = [i, i, i, i] + [p] * 12
    lib.ser_bigru_backward.restype = i
    lib.ser_attention_forward.argtypes = [i, i, i, i, i] + [p] * 5
    lib.ser_attention_forward.restype = None
    lib.ser_attention_backward.argtypes = [i, i, i, i, i] + [p] * 6
    lib.ser_attention_backward.restype = i
    lib.ser_dropout_keep.argtypes = [ctypes.c_int64, ctypes.c_uint64, i, ctypes.c_float, p]
    lib.ser_dropout_keep.restype = None
    return lib


def kernel_for(*tensors: torch.Tensor) -> bool:
    """Whether the C kernels can run on these tensors: float32 on the CPU."""
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)


def pointers(*tensors: torch.Tensor | None) -> list[int]:
    """The data pointers of contiguous tensors, for the kernels; None is a null pointer."""
    if not all(t is None or t.is_contiguous() for t in tensors):
        raise ValueError("the C kernels take contiguous tensors")
    return [0 if t is None else t.data_ptr() for t in tensors]


def pointer_array(tensors: Sequence[torch.Tensor]) -> ctypes.Array[ctypes.c_void_p]:
    """A C array of the tensors' data pointers (one per modality: no stacked copy); keep
    it referenced while the kernel runs."""
    return (ctypes.c_void_p * len(tensors))(*pointers(*tensors))


def check(code: int) -> None:
    """Raise where a kernel returned -1: it could not allocate its work space."""
    if code != 0:
        raise MemoryError("a C kernel could not allocate its work space")


def cache_dir() -> Path:
    """Where compiled kernels are kept: $SER_CACHE_DIR, else ~/.cache/ser."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ser"
    return Path(os.environ.get("SER_CACHE_DIR", default))


def build(
    sources: Sequence[Path],
    directory: Path,
    compiler: str | None = None,
    headers: Sequence[Path] = (),
    flags: Sequence[str] = FLAGS,
) -> Path:
    """Compile `sources` (which may include `headers`) with `flags` into one shared
    library in `directory` unless an up-to-date one is there; returns its path. Raises
    BuildError if the compiler is missing or fails."""
    cc = compiler or os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise BuildError(f"no C compiler {cc!r} on PATH")
    key = hashlib.sha256()
    for source in (*sources, *headers):
        key.update(source.name.encode() + b"\0" + source.read_bytes())
    for part in (" ".join((*flags, *LIBS)).encode(), _describe(cc), _cpu()):
        key.update(part)
    target = directory / f"ser-kernels-{key.hexdigest()[:16]}.so"
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=directory)
    os.close(fd)
    try:
        command = [cc, *flags, *map(str, sources), "-o", tmp, *LIBS]
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
