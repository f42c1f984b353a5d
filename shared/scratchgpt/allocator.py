"""Keep freed memory in the process, so that a training step does not fault in fresh pages.

A training step allocates its activations and gradients (a few MB each) and frees them again. glibc's
`malloc` hands blocks this large back to the operating system when they are freed (by `munmap`, or by
trimming the top of its heap), so the next step gets fresh pages and the kernel zeroes each 4 KB page
on its first write: on the 2-core Zen 4 of PERFORMANCE.md, a bf16 step of GPT-2 124M took about 42,000
such page faults and a median step of 1.35 s, against 0-1,000 faults and 1.25-1.28 s with freed memory kept.
PyTorch's CPU tuning guide suggests a different allocator (jemalloc, tcmalloc) for the same reason;
`keep_freed_memory` gets the effect from glibc itself, with no extra library.

It changes the whole process, so only the command-line trainer and the benchmark call it, never an
import. The price: up to `trim_bytes` of freed memory stays with the process instead of going back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3     # mallopt's parameter numbers (glibc's malloc.h)
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024            # glibc's upper limit on 64-bit systems


def keep_freed_memory(trim_bytes: int = 1 << 30) -> bool:
    """Ask glibc to serve blocks up to 32 MB from its heap and keep up to `trim_bytes` of freed heap.

    Returns whether it took effect: False off Linux or without glibc (e.g. musl), where nothing changes."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # Setting the mmap threshold also switches off glibc's dynamic adjustment of both thresholds.
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, trim_bytes))
