"""Keep freed memory in the process, so that a training step does not fault in fresh pages.

A training step allocates its activations and gradients and frees them again. glibc's `malloc` hands
large blocks back to the operating system when they are freed (`munmap`, or trimming the top of its
heap), so the next step gets fresh pages, and the kernel zeroes each page on its first write: tens of
thousands of page faults per step for GPT-2 124M. PyTorch's CPU tuning guide suggests another
allocator (jemalloc, tcmalloc) for the same reason; `keep_freed_memory` gets the effect from glibc
itself, with no extra library:

- no block is served by `mmap` (`M_MMAP_MAX` 0), however large: the output head's weight gradient
  (154 MB for GPT-2 124M) comes from the heap like everything else, and is found there again the
  next step;
- up to `trim_bytes` of freed memory at the top of the heap stays with the process (`M_TRIM_THRESHOLD`).

It changes the whole process, so only the command-line trainer and the benchmark call it, never an
import. The price: freed memory stays with the process instead of going back to the system.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4     # mallopt's parameter numbers (glibc's malloc.h)


def keep_freed_memory(trim_bytes: int = 1 << 30) -> bool:
    """Ask glibc to serve every block from its heap and keep up to `trim_bytes` of freed heap.

    Returns whether it took effect: False off Linux or without glibc (e.g. musl), where nothing changes."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, trim_bytes))
