"""`keep_freed_memory`: a step that allocates and frees activations faults in no fresh pages."""

import subprocess
import sys

import pytest

STEPS = """
import resource, sys, torch
from scratchgpt.allocator import M_MMAP_THRESHOLD, keep_freed_memory
if sys.argv[1] == "keep":
    kept = keep_freed_memory()
else:   # glibc's starting threshold, held fixed: blocks this large always go back to the system
    import ctypes
    kept = bool(ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 128 * 1024))
def step():   # like a training step: several MB-sized tensors written, then all freed
    return [torch.ones(2 * 1024 * 1024) for _ in range(8)]   # 8 x 8 MB
for _ in range(3):   # warm-up: the heap grows to its size once
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_kept_freed_memory_removes_the_page_faults_of_repeated_steps():
    # The control makes sure the count sees page faults at all: glibc's own default adapts its
    # threshold to the sizes it has seen, so with it the faults come and go with the process's history.
    control_result, plain = page_faults("control")
    kept_result, kept = page_faults("keep")
    assert control_result == kept_result == "True"
    # 10 steps of 64 MB each fault in 10 x 16384 pages of 4 KB when freed memory goes back to the system
    assert plain > 10 * 16384 / 2, plain
    assert kept < plain / 100, (kept, plain)
