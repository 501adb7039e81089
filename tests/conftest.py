"""Every test starts from the same state, whatever ran before it and whatever the shell holds.

- HOME is the test's own `tmp_path / "home"` (created only by what writes there, so a test can
  still check that nothing else appeared in tmp_path), with the XDG folders (the per-user
  registry and latent cache live there: $XDG_DATA_HOME = home/data, $XDG_CACHE_HOME = home/cache)
  and the platform's app-data folders inside it; TMPDIR (for subprocesses) and the working
  directory are empty folders of their own. Nothing is read from or written to the developer's
  own folders or the checkout.
- A test that writes into the repository's registry/ fails.
- $AYS_* and the torch.distributed / torchrun variables of the caller's shell are removed.
- The random generators of random, numpy and torch are seeded before each test (a test's
  outcome does not depend on which tests ran before it, or on -k / -x selections).
- Hypothesis runs a fixed sequence of examples per test (derandomize), keeps no example
  database between runs and has no deadline or too-slow health check (timing under load).
  HYPOTHESIS_PROFILE=hunt gives fresh random examples for a longer search (see README).
"""
import os
import random
import shutil
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from remote_registry import Remote

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "registry"

settings.register_profile("ays", deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("hunt", deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ays"))

LEAKING_PREFIXES = ("AYS_", "TORCHELASTIC_")
LEAKING_NAMES = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
                 "ROLE_RANK", "ROLE_WORLD_SIZE", "ROLE_NAME", "MASTER_ADDR", "MASTER_PORT",
                 "TORCH_DISABLE_SHARE_RDZV_TCP_STORE"}


def _clear_leaking_variables(monkeypatch):
    for name in list(os.environ):
        if name.startswith(LEAKING_PREFIXES) or name in LEAKING_NAMES:
            monkeypatch.delenv(name)


def _fresh_home(monkeypatch, home):
    """Point every per-user folder convention (Linux XDG, macOS via HOME, Windows) into `home`."""
    for name, folder in {"HOME": home, "USERPROFILE": home, "XDG_DATA_HOME": home / "data",
                         "XDG_CACHE_HOME": home / "cache", "XDG_CONFIG_HOME": home / "config",
                         "XDG_STATE_HOME": home / "state", "APPDATA": home / "AppData" / "Roaming",
                         "LOCALAPPDATA": home / "AppData" / "Local"}.items():
        monkeypatch.setenv(name, str(folder))


@pytest.fixture(scope="session")
def _matplotlib_config(tmp_path_factory):
    """One matplotlib config/font cache for the session (rebuilding it per test costs seconds)."""
    return tmp_path_factory.mktemp("matplotlib")


@pytest.fixture(autouse=True)
def isolated_test(tmp_path, tmp_path_factory, monkeypatch, _matplotlib_config):
    _clear_leaking_variables(monkeypatch)
    _fresh_home(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("TMPDIR", str(tmp_path_factory.mktemp("tmpdir")))  # must exist, or it is ignored
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    monkeypatch.setenv("MPLCONFIGDIR", str(_matplotlib_config))
    random.seed(0)
    np.random.seed(0)
    if "torch" in sys.modules:  # not imported here: tests may check that light commands never import it
        sys.modules["torch"].manual_seed(0)  # (a fresh import starts from torch's fixed default seed)
    shipped_before = _files_under(SHIPPED)
    yield
    assert _files_under(SHIPPED) == shipped_before, "the test wrote into the repository's registry/"


def _files_under(folder):
    """Each file under `folder` with its size and modification time (the lock file aside)."""
    return {(path, path.stat().st_size, path.stat().st_mtime_ns)
            for path in folder.rglob("*") if path.is_file() and path.name != ".lock"}


@pytest.fixture
def closed_port_url():
    """A URL on which nothing listens for as long as the test runs: the port stays bound (no other
    process can take it) but never listens, so every connection is refused at once."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{holder.getsockname()[1]}/"
    holder.close()


@pytest.fixture
def shipped_copy(tmp_path):
    """A writable copy of the shipped registry (tests never write into the repository's own)."""
    dest = tmp_path / "registry"
    shutil.copytree(SHIPPED, dest, ignore=shutil.ignore_patterns(".lock"))
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


@pytest.fixture(autouse=True)
def private_user_folders(tmp_path, monkeypatch):
    """Every test gets its own per-user data and cache folders (your registry, latents) and
    WebUI models folder, so nothing reads or writes the real user's."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home" / "cache"))
    monkeypatch.setenv("WEBUI_STUB_MODELS", str(tmp_path / "webui-models"))
    monkeypatch.delenv("AYS_REGISTRY", raising=False)
    monkeypatch.delenv("AYS_CACHE", raising=False)
