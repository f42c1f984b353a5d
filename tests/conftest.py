import pytest

from scratchgpt import seed_everything


@pytest.fixture(autouse=True)
def _seed():
    seed_everything(123)

