"""One call that seeds every random number generator a notebook touches."""

import os
import random

import numpy as np
import torch


def seed_everything(seed: int = 123) -> None:
    """Seed Python, NumPy and torch so that a notebook run twice prints the same numbers.

    Set-iteration order also depends on PYTHONHASHSEED, which only takes effect at interpreter
    start; CI exports PYTHONHASHSEED=0 and the curriculum never prints a set's order.
    """
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
