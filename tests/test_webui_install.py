"""The repository as a WebUI extension: install.py and importing ays_core from scripts/."""
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STUB_DIR = REPO / "tests" / "webui_stub"


@pytest.fixture
def launch(monkeypatch):
    monkeypatch.syspath_prepend(str(STUB_DIR))
    sys.modules.pop("launch", None)
    import launch

    yield launch
    sys.modules.pop("launch", None)


def test_install_adds_only_what_the_webui_lacks(launch, monkeypatch):
    present = {"numpy", "requests"}
    monkeypatch.setattr(launch, "is_installed", lambda name: name in present)
    runpy.run_path(str(REPO / "install.py"), run_name="__main__")
    installed = [command for command, _ in launch.pip_commands]
    assert installed == ["install jsonschema"]
    assert not any("torch" in c or "numpy" in c or "==" in c or "-U" in c or "upgrade" in c for c in installed)


def test_install_does_nothing_in_a_complete_webui(launch, monkeypatch):
    monkeypatch.setattr(launch, "is_installed", lambda name: True)
    runpy.run_path(str(REPO / "install.py"), run_name="__main__")
    assert launch.pip_commands == []


def test_extension_imports_its_own_ays_core_without_sys_path_changes(tmp_path):
    """A copy cloned into extensions/ loads through the WebUI's script loader alone (fresh
    interpreter, the WebUI's folder as working directory, nothing added to sys.path by hand)."""
    extension = tmp_path / "extensions" / "sd-webui-ays"
    for part in ("scripts", "ays_webui", "ays_core", "registry"):
        shutil.copytree(REPO / part, extension / part, ignore=shutil.ignore_patterns("__pycache__", ".lock"))
    program = (
        "import sys\n"
        f"sys.path.insert(0, {str(STUB_DIR)!r})\n"
        "import webui_harness\n"
        f"w = webui_harness.start_webui(extension={str(extension)!r})\n"
        "import ays_core\n"
        f"assert ays_core.__file__.startswith({str(extension)!r}), ays_core.__file__\n"
        f"assert w.ays.__file__.startswith({str(extension)!r}), w.ays.__file__\n"
        "assert w.sd_schedulers.schedulers_map['AYS'].function(n=4, sigma_min=0.03, sigma_max=14.6).shape[0] == 5\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AYS_REGISTRY")}
    result = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
