"""tools/stress_tests.py on a two-run suite whose one test passes, then fails."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

FLIPPING_TEST = """
from pathlib import Path

def test_passes_then_fails():
    runs = Path({counter!r})
    done = int(runs.read_text()) if runs.exists() else 0
    runs.write_text(str(done + 1))
    assert done == 0, "the second run fails"
"""


def test_counts_runs_and_keeps_only_the_failing_runs_log(tmp_path):
    suite = tmp_path / "suite" / "test_flip.py"
    suite.parent.mkdir()
    suite.write_text(FLIPPING_TEST.format(counter=str(tmp_path / "runs")))
    logs = tmp_path / "logs"
    done = subprocess.run([sys.executable, str(REPO / "tools" / "stress_tests.py"), "-k", "2", "--hogs", "1",
                           "--hog-limit", "900", "--nice", "0", "--logs", str(logs), "--", str(suite)],
                          capture_output=True, text=True, timeout=900)
    lines = done.stdout.splitlines()
    assert done.returncode == 1, done.stdout + done.stderr
    assert lines[1].startswith("run 1/2: passed (1 passed")
    assert lines[2].startswith("run 2/2: FAILED (1 failed") and str(logs / "run-02" / "pytest.log") in lines[2]
    assert lines[-1] == "1 of 2 runs passed"
    assert sorted(p.name for p in logs.iterdir()) == ["checkout", "run-02"]  # the passing run left nothing
    assert "the second run fails" in (logs / "run-02" / "pytest.log").read_text()
    assert (logs / "checkout" / "tools" / "stress_tests.py").is_file()  # the copy the runs tested, kept with them


def test_outside_a_git_checkout_the_tree_is_copied_without_caches(tmp_path, monkeypatch):
    """A stress run tests a plain copy of the tree, and this suite includes the tool's own test."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("stress_tests", REPO / "tools" / "stress_tests.py")
    stress = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stress)
    plain = tmp_path / "plain"
    (plain / "tests" / "__pycache__").mkdir(parents=True)
    (plain / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    (plain / "tests" / "__pycache__" / "test_a.pyc").write_bytes(b"x")
    (plain / ".venv").mkdir()
    monkeypatch.setattr(stress, "REPO", plain)
    copied = stress.copy_working_tree(tmp_path / "copy")
    assert sorted(str(p.relative_to(copied)) for p in copied.rglob("*")) == ["tests", "tests/test_a.py"]
