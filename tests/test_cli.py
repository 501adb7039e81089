import json
import subprocess
import sys

import pytest

from ays_core.cli import main
from ays_core.registry import dump_schedule, new_schedule_doc


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_schedule_json(capsys):
    code, out, _ = run(capsys, "schedule", "sd15", "--steps", "10", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["id"] == "sd15" and data["version"] == 2 and data["steps"] == 10
    assert len(data["sigmas"]) == 11 and data["sigmas"][-1] == 0 and data["sigmas"][1] == 6.475


def test_schedule_text_denoise_version_convention(capsys):
    code, out, _ = run(capsys, "schedule", "sdxl@v1", "--steps", "20", "--denoise", "0.5")
    assert code == 0 and len(out.split()) == 11 and out.split()[-1] == "0"
    code, out, _ = run(capsys, "schedule", "sdxl", "--version", "1", "--steps", "10", "--convention", "a1111",
                       "--format", "json")
    assert code == 0 and json.loads(out)["sigmas"][-2] == pytest.approx(0.0291671582)


def test_schedule_baseline_and_file(capsys, tmp_path):
    code, out, _ = run(capsys, "schedule", "karras", "--steps", "4", "--sigma-min", "0.002", "--sigma-max", "80",
                       "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["id"] == "karras" and data["version"] is None
    assert data["sigmas"][0] == pytest.approx(80) and len(data["sigmas"]) == 5
    path = tmp_path / "mine.json"
    path.write_bytes(dump_schedule(new_schedule_doc("mine", [10.0, 1.0, 0.1], family="edm", prediction="edm",
                                                    source="optimized", solver="euler", samples=1, data="x")))
    code, out, _ = run(capsys, "schedule", str(path), "--steps", "2", "--format", "json")
    assert code == 0 and json.loads(out)["sigmas"] == pytest.approx([10.0, 1.0, 0.0])


@pytest.mark.parametrize("argv, message", [
    (["schedule", "nope", "--steps", "3"], "no schedule 'nope'"),
    (["schedule", "sd15", "--steps", "0"], "--steps"),
    (["schedule", "sd15", "--steps", "5", "--denoise", "0"], "--denoise"),
    (["schedule", "sd15", "--steps", "5", "--denoise", "1.2"], "--denoise"),
    (["schedule", "sd15", "--steps", "5", "--version", "9"], "sd15@v9"),
    (["schedule", "../../etc/passwd.json", "--steps", "5"], "no such file"),
    (["schedule", "sd15", "--steps", "5", "--sigma-min", "3", "--sigma-max", "1"], "--sigma-min"),
    (["registry", "show", "UP"], "invalid schedule id"),
    (["registry", "publish", "/nonexistent/file.json"], "no such file"),
])
def test_user_errors_are_one_line_and_status_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1 and err.startswith("ays: error: ")


def test_malformed_and_non_monotonic_files(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run(capsys, "schedule", str(bad), "--steps", "3")
    assert code == 2 and "not valid JSON" in err
    doc = new_schedule_doc("mine", [10.0, 1.0, 0.1], family="edm", prediction="edm", source="optimized",
                           solver="euler", samples=1, data="x")
    doc["sigmas"] = [10.0, 0.05, 0.1]
    bad.write_text(json.dumps(doc))
    code, _, err = run(capsys, "registry", "publish", str(bad), "--registry", str(tmp_path / "reg"))
    assert code == 2 and "descending" in err
    assert not (tmp_path / "reg" / "mine").exists()


def test_registry_publish_list_show_verify_index(capsys, tmp_path):
    reg = tmp_path / "reg"
    src = tmp_path / "mine.json"
    src.write_bytes(dump_schedule(new_schedule_doc("mine", [10.0, 1.0, 0.1], family="edm", prediction="edm",
                                                   source="optimized", solver="euler", samples=1, data="x")))
    assert run(capsys, "registry", "publish", str(src), "--registry", str(reg))[1].startswith("published mine@v1")
    assert "already holds" in run(capsys, "registry", "publish", str(src), "--registry", str(reg))[1]
    src.write_bytes(dump_schedule(new_schedule_doc("mine", [10.0, 2.0, 0.1], family="edm", prediction="edm",
                                                   source="optimized", solver="euler", samples=1, data="x")))
    assert "mine@v2" in run(capsys, "registry", "publish", str(src), "--registry", str(reg))[1]
    code, out, _ = run(capsys, "registry", "list", "--registry", str(reg))
    assert code == 0 and "mine" in out and "sd15" in out  # the shipped registry is listed too
    code, out, _ = run(capsys, "registry", "show", "mine@1", "--registry", str(reg))
    assert code == 0 and json.loads(out)["version"] == 1
    assert run(capsys, "registry", "verify", "--registry", str(reg))[0] == 0
    (reg / "index.json").unlink()
    assert run(capsys, "registry", "verify", "--registry", str(reg))[0] == 1
    code, out, _ = run(capsys, "registry", "index", "--registry", str(reg))
    assert code == 0 and "2 schedules" in out
    assert run(capsys, "registry", "verify", "--registry", str(reg))[0] == 0


def test_env_var_selects_registry(capsys, tmp_path, monkeypatch, shipped_copy):
    monkeypatch.setenv("AYS_REGISTRY", str(shipped_copy))
    code, out, _ = run(capsys, "registry", "verify")
    assert code == 0 and str(shipped_copy) in out


def test_console_script_and_module_entry_point():
    for cmd in (["ays"], [sys.executable, "-m", "ays_core"]):
        exe = cmd if cmd[0] != "ays" else [str(__import__("pathlib").Path(sys.executable).parent / "ays")]
        done = subprocess.run(exe + ["schedule", "sdxl", "--steps", "0"], capture_output=True, text=True)
        assert done.returncode == 2 and "Traceback" not in done.stderr and "steps" in done.stderr
        done = subprocess.run(exe + ["--help"], capture_output=True, text=True)
        assert done.returncode == 0 and "schedule" in done.stdout


def test_plot_writes_png(capsys, tmp_path):
    out = tmp_path / "s.png"
    code, text, _ = run(capsys, "plot", "sd15", "karras", "--steps", "6", "--out", str(out))
    assert code == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
