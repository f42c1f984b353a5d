"""`keep_freed_memory`: steps that allocate and free tensors, small and large, fault in no fresh pages."""

import subprocess
import sys

import pytest

STEPS = """
import ctypes, resource, sys, torch
from scratchgpt.engine.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    kept = keep_freed_memory()
else:   # glibc's starting mmap threshold, held fixed: blocks this large always go back to the system
    kept = bool(ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024))
def step():   # like a training step: MB-sized activations, and one block the size of GPT-2's head gradient
    return [torch.ones(2 * 1024 * 1024) for _ in range(8)] + [torch.ones(40 * 1024 * 1024)]
for _ in range(3):   # warm-up: the heap grows to its size once
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, resource.getpagesize())
"""


def page_faults(mode: str) -> tuple[str, int, int]:
    run = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, check=True)
    out = run.stdout.split()
    return out[0], int(out[1]), int(out[2])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_kept_freed_memory_removes_the_page_faults_of_repeated_steps():
    # The control makes sure the count sees page faults at all: glibc's own default adapts its
    # threshold to the sizes it has seen, so with it the faults come and go with the process's history.
    control_result, plain, page = page_faults("control")
    kept_result, kept, _ = page_faults("keep")
    assert control_result == kept_result == "True"
    # each step writes 64 MB + 160 MB of fresh memory when freed memory goes back to the system: at least
    # half of its pages fault in again (whatever the page size: 4 KB on x86, often 64 KB on ARM)
    step_pages = (64 + 160) * 2**20 // page
    assert plain > 10 * step_pages / 2, (plain, page)
    assert kept < plain / 100, (kept, plain)
