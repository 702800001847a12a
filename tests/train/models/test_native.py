"""Building and caching the C kernels (ser.train.models.native)."""

from __future__ import annotations

import ctypes
import doctest
import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from ser.train.models import native

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
CPUINFO = Path("/proc/cpuinfo")
AVX512 = platform.system() == "Linux" and CPUINFO.exists() and "avx512f" in CPUINFO.read_text()
needs_kernels = pytest.mark.skipif(
    not (AVX512 and shutil.which(os.environ.get("CC", "cc"))),
    reason="the C kernels need Linux, a C compiler and AVX-512",
)

SOURCE = "int ser_answer(void) { return 42; }\n"


@needs_cc
def test_build_compiles_once_and_reuses_the_library(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "answer.c"
    source.write_text(SOURCE)
    first = native.build([source], tmp_path / "cache", compiler="cc")
    assert first.exists() and first.parent == tmp_path / "cache"
    calls = []
    real_run = subprocess.run

    def counting_run(command, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(command)
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(native.subprocess, "run", counting_run)
    assert native.build([source], tmp_path / "cache", compiler="cc") == first
    assert [c for c in calls if "-shared" in c] == []  # no second compilation
    source.write_text(SOURCE.replace("42", "43"))  # a new source is a new library
    assert native.build([source], tmp_path / "cache", compiler="cc") != first
    assert sorted(p.suffix for p in (tmp_path / "cache").iterdir()) == [".so", ".so"]


def test_build_without_a_compiler_says_so(tmp_path: Path) -> None:
    source = tmp_path / "answer.c"
    source.write_text(SOURCE)
    with pytest.raises(native.BuildError, match="no C compiler 'no-such-cc'"):
        native.build([source], tmp_path, compiler="no-such-cc")


@needs_cc
def test_a_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    source = tmp_path / "broken.c"
    source.write_text("int broken(void) { return }\n")
    with pytest.raises(native.BuildError, match=r"broken\.c"):
        native.build([source], tmp_path / "cache", compiler="cc")
    assert list((tmp_path / "cache").iterdir()) == []


def test_disabled_hides_the_kernel_and_nests() -> None:
    with native.disabled():
        assert native.kernels() is None
        with native.disabled():
            assert native.kernels() is None
        assert native.kernels() is None
    assert native.kernels() is native._load()  # back to the built kernel (or None)


def test_doctests() -> None:
    assert doctest.testmod(native).failed == 0


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "kernels"))
    assert native.cache_dir() == tmp_path / "kernels"
    monkeypatch.delenv("SER_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert native.cache_dir() == tmp_path / "ser"


def test_kernels_take_contiguous_float32_cpu_tensors() -> None:
    x = torch.zeros(3, 4)
    assert native.kernel_for(x, x[0]) and not native.kernel_for(x, x.double())
    assert native.pointers(x, None) == [x.data_ptr(), 0]
    array = native.pointer_array([x, x[1:]])
    assert list(array) == [x.data_ptr(), x[1:].data_ptr()]
    with pytest.raises(ValueError, match="contiguous"):
        native.pointers(x.t())
    native.check(0)
    with pytest.raises(MemoryError, match="work space"):
        native.check(-1)


@needs_kernels
def test_kernels_are_built_where_they_can_be() -> None:
    kernel = native.kernels()
    assert kernel is not None and kernel.ser_gru_simd() == 512
    with native.disabled():
        assert native.kernels() is None


def test_both_builds_draw_the_same_dropout_masks(avx2_kernels: ctypes.CDLL | None) -> None:
    """The mask depends on the seed alone, not on the instruction set it was built for."""
    reference = native.kernels()
    if reference is None or avx2_kernels is None:
        pytest.skip("no AVX2 build of the C kernels beside this machine's")
    masks = []
    for lib in (reference, avx2_kernels):
        keep = torch.empty(10_007)
        lib.ser_dropout_keep(keep.numel(), 1234, 6554, 1.25, keep.data_ptr())
        masks.append(keep)
    assert torch.equal(*masks) and 0.15 < (masks[0] == 0).double().mean().item() < 0.25


@needs_cc
def test_an_unwritable_cache_falls_back_to_a_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("SER_CACHE_DIR", str(blocker / "cache"))  # mkdir fails under a file
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(native.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    path = native._build_here()
    assert path.parent == tmp_path / "tmp" / f"ser-kernels-{os.getuid()}" and path.exists()
    shared = tmp_path / "tmp" / f"ser-kernels-{os.getuid()}"
    shared.chmod(0o777)  # as if others could write there: not loaded from
    with pytest.raises(native.BuildError, match="not a private directory"):
        native._build_here()
