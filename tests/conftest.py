import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def shipped_copy(tmp_path):
    """A writable copy of the shipped registry (tests never write into the repository's own)."""
    dest = tmp_path / "registry"
    shutil.copytree(REPO / "registry", dest, ignore=shutil.ignore_patterns(".lock"))
    return dest
