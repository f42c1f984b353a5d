import pytest
import torch

from scratchgpt import seed_everything


@pytest.fixture(autouse=True)
def _seed():
    seed_everything(123)


@pytest.fixture
def token_batches():
    """`token_batches(n, seed)`: n random (2, 8) batches of ids below 200, each with its targets (the
    ids shifted by one)."""
    def make(n: int = 4, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
        g = torch.Generator().manual_seed(seed)
        x = torch.randint(0, 200, (n, 2, 8), generator=g)
        return [(xi, torch.roll(xi, -1, dims=1)) for xi in x]
    return make
