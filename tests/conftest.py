import pytest
from scratchgpt import seed_everything


@pytest.fixture(autouse=True)
def _seed():
    seed_everything(123)


def pytest_addoption(parser):
    parser.addoption("--run-profiles", action="store_true",
                     help="also run every notebook under the gpt2 and gpt2-medium profiles (minutes; tests/test_profiles_run.py)")


def pytest_configure(config):
    config.addinivalue_line("markers", "profiles: runs notebooks under the big profiles (needs --run-profiles)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-profiles"):
        return
    skip = pytest.mark.skip(reason="runs every notebook under the big profiles: add --run-profiles")
    for item in items:
        if "profiles" in item.keywords:
            item.add_marker(skip)
