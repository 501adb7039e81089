import shutil
from pathlib import Path

import pytest

from remote_registry import Remote

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def shipped_copy(tmp_path):
    """A writable copy of the shipped registry (tests never write into the repository's own)."""
    dest = tmp_path / "registry"
    shutil.copytree(REPO / "registry", dest, ignore=shutil.ignore_patterns(".lock"))
    return dest


@pytest.fixture
def no_env_registry(monkeypatch):
    """No $AYS_REGISTRY from the environment: lookups see only the folders a test names."""
    monkeypatch.delenv("AYS_REGISTRY", raising=False)


@pytest.fixture
def remote():
    """A local remote registry (remote_registry.Remote), shut down after the test."""
    server = Remote()
    yield server
    server.close()


@pytest.fixture
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared machine intra-op threads waiting for
    each other make them many times slower: tests of tiny models run single-threaded."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
