"""Which precision to train in: bf16 autocast where the hardware has bf16 units, fp32 elsewhere.

bf16 keeps fp32's range with 8 bits of mantissa. On GPUs with bf16 tensor cores, and on CPUs with
AVX512-BF16 or AMX units, its matrix products run two to ten times faster than fp32's; on a CPU
without them PyTorch emulates bf16 and it is slower. So the command-line trainer measures instead of
guessing: `autocast_dtype(device)` times one bf16 and one fp32 product of a GPT-2-like shape and
picks bf16 only where it wins clearly. The notebooks stay in fp32: their printed figures must
reproduce, and bf16 changes them by more than rounding.
"""

from __future__ import annotations

import time
from functools import lru_cache

import torch

CLEAR_WIN = 1.3   # bf16 must be this much faster than fp32 to be chosen (timings are noisy)


def matmul_rate(n: int = 256, k: int = 768, m: int = 3072, repeats: int = 5,
                dtype: torch.dtype = torch.float32, max_seconds: float = 5.0) -> float:
    """Best rate in FLOP/s of (n x k) @ (k x m) products of `dtype`, GPT-2-like shapes by default.

    Within about `max_seconds`: a probe of 8 rows estimates the rate first, and where the whole
    measurement would take longer (bf16 emulated on a CPU without bf16 units can be hundreds of times
    slower than fp32), fewer rows and repeats are timed."""
    g = torch.Generator().manual_seed(0)   # its own generator: timing must not move training's random numbers
    b = torch.randn(k, m, generator=g).to(dtype)
    probe = torch.randn(min(8, n), k, generator=g).to(dtype)
    probe @ b
    t = time.perf_counter()
    probe @ b
    per_row = (time.perf_counter() - t) / probe.size(0)
    rows = max(probe.size(0), min(n, int(max_seconds / ((repeats + 1) * per_row))))
    repeats = max(1, min(repeats, int(max_seconds / (rows * per_row)) - 1))
    a = torch.randn(rows, k, generator=g).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * rows * k * m / best


@lru_cache(maxsize=None)
def bf16_speedup_cpu() -> float:
    """How many times faster this CPU multiplies bf16 matrices than fp32 ones (measured once)."""
    return matmul_rate(dtype=torch.bfloat16) / matmul_rate()


def autocast_dtype(device: torch.device | str) -> str | None:
    """"bfloat16" where the device's bf16 matrix products are clearly faster than fp32, else None (fp32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        return "bfloat16" if bf16_speedup_cpu() >= CLEAR_WIN else None
    return None
