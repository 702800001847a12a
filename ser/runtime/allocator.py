"""glibc heap settings for the command line's processes.

A training step of the fusion study's models allocates and frees a few hundred tensors
of 0.1-10 MB. glibc's malloc takes them from its heap, but gives the top of the heap
back to the kernel whenever more than twice its (adaptive) mmap threshold lies free
there, and the next step grows the heap again, faulting every page in anew: the fusion
study's 150-epoch run took ~530,000 page faults and 1.4 s of system time. With blocks up
to 32 MB always from the heap (`M_MMAP_THRESHOLD`) and up to 256 MB of freed heap kept
(`M_TRIM_THRESHOLD`) it takes ~70,000, and runs ~10 % faster with the same peak memory
(benchmarks/README.md). The same as setting MALLOC_MMAP_THRESHOLD_=33554432 and
MALLOC_TRIM_THRESHOLD_=268435456 in the environment.

Both are needed: glibc stops adapting either threshold once one is set, so a fixed mmap
threshold alone leaves the trim threshold at 128 KB (trimming after nearly every step),
and heap padding (`M_TOP_PAD`) alone fixes the mmap threshold at 128 KB.

Process-wide, so only entry points (`ser`, the benchmarks) call `tune_heap`; library
code never does. Any MALLOC_* setting of the user's wins, and SER_TUNE_HEAP=0 keeps
glibc's defaults.

>>> import os
>>> os.environ["SER_TUNE_HEAP"] = "0"  # keep glibc's defaults
>>> tune_heap()
False
>>> del os.environ["SER_TUNE_HEAP"]
"""

from __future__ import annotations

import ctypes
import os
import platform

# mallopt parameter numbers (glibc's malloc.h) and their values here.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit systems
TRIM_THRESHOLD = 256 << 20
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def tune_heap() -> bool:
    """Set glibc's mmap and trim thresholds as the module doc says.

    Returns whether they took: False on another C library, when the environment sets
    one of glibc's MALLOC_* heap settings (which glibc applied at start-up), or when it
    sets SER_TUNE_HEAP=0.
    """
    if os.environ.get("SER_TUNE_HEAP") == "0" or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in USER_SETTINGS):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    mmap = libc.mallopt(ctypes.c_int(M_MMAP_THRESHOLD), ctypes.c_int(MMAP_THRESHOLD))
    trim = libc.mallopt(ctypes.c_int(M_TRIM_THRESHOLD), ctypes.c_int(TRIM_THRESHOLD))
    return bool(mmap and trim)
