"""A newcomer's first hour (issue 13): light commands start without torch, an installed package
carries the shipped registry, user data stays out of the repository, progress and messages."""
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
import numpy as np
import torch

from ays_core import Registry
from ays_core.cli import main
from ays_core.registry import SHIPPED_REGISTRY, dump_schedule, new_schedule_doc

REPO = Path(__file__).resolve().parent.parent


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def shipped_state():
    return {p.relative_to(SHIPPED_REGISTRY): p.read_bytes() for p in sorted(SHIPPED_REGISTRY.rglob("*")) if p.is_file()}


def a_schedule_file(path, sigmas=(10.0, 1.0, 0.1), schedule_id="mine"):
    path.write_bytes(dump_schedule(new_schedule_doc(schedule_id, sigmas, family="edm", prediction="edm",
                                                    source="optimized", solver="euler", samples=1, data="x")))
    return path


# ---------------------------------------------------------------- start-up

LIGHT = [["--version"], ["--help"], ["schedule", "sdxl", "--steps", "20"], ["schedule", "karras", "--steps", "8"],
         ["schedule", "sd15", "--steps", "4", "--sigma-min", "0.002", "--sigma-max", "80", "--format", "json"],
         ["registry", "list"], ["registry", "show", "sd15"], ["registry", "verify"], ["plot", "--help"],
         ["plot", "sd15", "karras", "--out", "{tmp}/p.png"], ["optimize", "--help"], ["bench", "--help"]]
LIGHT_ONLY = LIGHT[:-2]  # the heavy commands' own --help may load torch (their choices live beside it)


def test_light_commands_never_import_torch_or_matplotlib(tmp_path):
    script = (
        "import json, sys\n"
        "from ays_core.cli import main\n"
        "loaded = {}\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    loaded[' '.join(argv)] = sorted({'torch', 'matplotlib'} & set(sys.modules))\n"
        "print(json.dumps(loaded), file=sys.stderr)\n")
    commands = [[arg.replace("{tmp}", str(tmp_path)) for arg in argv] for argv in LIGHT_ONLY]
    done = subprocess.run([sys.executable, "-c", script, json.dumps(commands)], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    assert not any(loaded.values()), loaded
    assert (tmp_path / "p.png").is_file()


# ---------------------------------------------------------------- an installed package

def test_a_built_wheel_carries_the_shipped_registry_and_schemas(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    for folder in ("ays_core", "registry"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", ".lock"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    wheel = zipfile.ZipFile(next((tmp_path / "dist").glob("ays-*.whl")))
    names = set(wheel.namelist())
    expected = {f"ays_core/shipped_registry/{p.relative_to(REPO / 'registry').as_posix()}"
                for p in (REPO / "registry").rglob("*.json")}
    assert expected and expected <= names
    # installed (unpacked) anywhere, the package finds them there: no checkout beside it
    site = tmp_path / "site"
    wheel.extractall(site)
    code = ("import ays_core, ays_core.registry as r; print(r.SHIPPED_REGISTRY); "
            "print(ays_core.schedule('sdxl', steps=10)[1])")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(site)}, timeout=120)
    assert done.returncode == 0, done.stderr
    where, sigma = done.stdout.split()
    assert Path(where) == site / "ays_core" / "shipped_registry" and float(sigma) == pytest.approx(6.315)  # the paper's published SDXL list


# ---------------------------------------------------------------- user data out of the repository

def test_publish_pull_and_import_go_to_your_registry_never_the_shipped_one(tmp_path, capsys):
    before = shipped_state()
    code, out, _ = run(capsys, "registry", "publish", str(a_schedule_file(tmp_path / "mine.json")))
    mine = tmp_path / "home" / "data" / "ays" / "registry"  # $XDG_DATA_HOME/ays/registry (tests/conftest.py)
    assert code == 0 and f"published mine@v1 to {mine / 'mine' / 'v1.json'}" in out
    assert run(capsys, "schedule", "mine", "--steps", "2")[0] == 0  # found there
    code, out, _ = run(capsys, "registry", "list")
    assert "mine" in out and str(mine) in out and str(SHIPPED_REGISTRY) in out
    assert shipped_state() == before


def test_verify_before_your_registry_exists_says_so(capsys):
    code, out, _ = run(capsys, "registry", "verify")
    assert code == 0 and out.startswith("nothing to verify: your registry") and "does not exist yet" in out


def test_publishing_identical_content_names_the_version_holding_it(tmp_path, capsys):
    path = a_schedule_file(tmp_path / "mine.json")
    run(capsys, "registry", "publish", str(path), "--registry", str(tmp_path / "reg"))
    code, out, _ = run(capsys, "registry", "publish", str(path), "--registry", str(tmp_path / "reg"))
    assert code == 0 and out.startswith("nothing published: mine@v1") and "already holds this schedule" in out
    assert Registry(tmp_path / "reg").versions("mine") == [1]


def test_pull_into_an_empty_folder_says_what_it_skipped_and_why(tmp_path, capsys):
    from ays_core.share import make_server, server_url

    server = make_server(Registry(SHIPPED_REGISTRY), port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        code, out, _ = run(capsys, "registry", "pull", server_url(server), "--registry", str(tmp_path / "empty"))
    finally:
        server.shutdown()
        server.server_close()
    count = len(Registry(SHIPPED_REGISTRY).read_index()["schedules"])
    assert code == 0 and f"skipped {count} already present with the same content" in out
    assert "the registry shipped with AYS" in out and "sd15@v1" in out


def test_optimize_writes_nothing_where_not_asked(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny = ["optimize", "--model", "toy:gaussian", "--steps", "4", "--refine", "0", "--samples", "256",
            "--validation-samples", "32", "--no-progress"]
    code, _, err = run(capsys, *tiny)
    assert code == 2 and "--out FILE, --publish" in err
    code, out, err = run(capsys, *tiny, "--publish")
    assert code == 0 and "published toy-gaussian@v1" in out and err == ""  # --no-progress: no bars
    assert list(tmp_path.iterdir()) == [tmp_path / "home"]  # the per-user folders only (tests/conftest.py)
    assert (tmp_path / "home" / "cache" / "ays" / "optimize" / "toy-gaussian.log.json").is_file()


# ---------------------------------------------------------------- progress

def test_the_path_table_shows_a_bar_with_a_total(capsys):
    from ays_core.klub import PathKLUB
    from ays_core.models.toy import GaussianToy

    toy = GaussianToy()
    PathKLUB(toy, toy.sample_data, 96, 0, 32, torch.device("cpu"), 4096, 0.002, 80.0, grid_size=8, progress=True)
    err = capsys.readouterr().err
    assert "path table (96 paths x 8 noise levels)" in err and "3/3" in err


def test_the_solver_stage_shows_a_bar_with_a_total(tmp_path, capsys):
    code, _, err = run(capsys, "optimize", "--model", "toy:gaussian", "--steps", "4", "--refine", "0",
                       "--samples", "256", "--out", str(tmp_path / "x.json"))
    bar = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("solver stage (at most)")]
    assert code == 0 and bar
    done, total = bar[-1].split("|")[2].split()[0].split("/")
    assert 0 < int(done) <= int(total)  # the total is the stage's upper bound


# ---------------------------------------------------------------- careless input

@pytest.mark.parametrize("argv, message", [
    (["registry", "serve", "--port", "99999"], "--port: must be a port number from 0 to 65535"),
    (["registry", "serve", "--port", "-1"], "--port: must be a port number from 0 to 65535"),
    (["schedule", "sdxl", "--steps", "99999999999"], "steps must be a whole number from 1 to 10000"),
    (["plot", "sdxl", "--steps", "10001", "--out", "x.png"], "from 1 to 10000"),
    (["schedule", "sdxl", "--steps", "x"], "--steps: invalid int value"),
    (["optimize", "--model", "toy:gaussian", "--device", "nonsense", "--out", "x.json"], "--device 'nonsense'"),
])
def test_careless_input_is_one_line_and_status_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir()) or list(tmp_path.iterdir()) == [tmp_path / "home"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_a_gpu_this_machine_lacks_is_one_line(tmp_path, capsys):
    code, _, err = run(capsys, "optimize", "--model", "toy:gaussian", "--device", "cuda", "--out", str(tmp_path / "x.json"))
    assert code == 2 and err.startswith("ays: error: --device 'cuda' cannot be used on this machine")
    assert not list(tmp_path.iterdir())


def test_library_messages_name_no_missing_flag():
    from ays_core.budget import rows_that_fit
    from ays_core import AYSError

    cost = type("Cost", (), {"weight_bytes": 10 << 30, "activation_bytes": 1 << 30, "base_bytes": 0})()
    with pytest.raises(AYSError) as caught:
        rows_that_fit(cost, 4 << 30)
    assert "?dtype=fp16" in str(caught.value) and "--dtype" not in str(caught.value)


# ---------------------------------------------------------------- plots

def test_plot_names_the_model_and_its_labels_do_not_overlap(tmp_path, capsys):
    from PIL import Image

    from ays_core import resolve
    from ays_core.cli.plot import default_title
    from ays_core.plots import Box, layout

    code, out, _ = run(capsys, "plot", "sd15", "sdxl", "karras", "--out", str(tmp_path / "p.png"))
    assert code == 0
    title = default_title([resolve("sd15"), resolve("sdxl")], 10)
    assert title == "10 steps for sd15, sdxl; baselines over sigma 0.029 to 14.6 (sd15@v2's range)"  # the published list
    assert default_title([resolve("sd15")], 10, baselines=False) == "10 steps for sd15"
    schedules = {"sd15@v1": [14.6, 1.0, 0.03, 0.0], "a long label for karras " * 3: [14.6, 2.0, 0.03, 0.0]}
    plan = layout(schedules, title)
    boxes = {"legend": plan.legend, "axes": plan.axes, "title": plan.title, "xlabel": plan.xlabel, "ylabel": plan.ylabel}
    picture = Box(0, 0, *plan.size)
    for name, box in boxes.items():
        assert box.inside(picture), name
    names = sorted(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not boxes[a].overlaps(boxes[b]), (a, b)
    assert plan.legend.left > plan.axes.right  # the legend never covers a curve
    assert plan.y_ticks == (0.1, 1, 10)  # 0.03..14.6, padded: three decades inside, so no 2s and 5s
    with Image.open(tmp_path / "p.png") as image:
        assert image.format == "PNG" and image.size[0] > 600


def test_plot_on_a_pillow_without_sized_fonts_is_readable_and_takes_any_label(tmp_path, monkeypatch):
    """AUTOMATIC1111 pins Pillow 9.5: load_default() has no size there and gives a Latin-1 bitmap
    font that ignores text anchors."""
    from PIL import Image, ImageFont

    from ays_core import plots

    bitmap = ImageFont.load_default()
    if not isinstance(bitmap, ImageFont.ImageFont):  # Pillow >= 10.1 without size: FreeType when it can
        bitmap = ImageFont.load_default_imagefont()

    def old_load_default(**options):
        if options:
            raise TypeError("load_default() got an unexpected keyword argument 'size'")
        return bitmap

    monkeypatch.setattr(ImageFont, "load_default", old_load_default)
    plots._font.cache_clear()
    try:
        schedules = {"sd15": [14.6, 1.0, 0.03, 0.0], "\u6a21\u578b (a CJK name)": [14.6, 2.0, 0.03, 0.0]}
        plan = plots.layout(schedules, "schedules for \u6a21\u578b")
        assert plan.title.bottom - plan.title.top >= 7  # the bitmap font's height, not half of it
        plots.plot_schedules(schedules, tmp_path / "old.png", "schedules for \u6a21\u578b")
        with Image.open(tmp_path / "old.png") as image:
            ink = np.asarray(image.convert("L"))
        # the turned y label is whole: ink in the band left of the tick labels over most of the axes' height
        band = ink[round(plan.ylabel.top):round(plan.ylabel.bottom), :round(plan.ylabel.right) + 1] < 128
        rows = np.flatnonzero(band.any(axis=1))
        assert rows.size and rows[-1] - rows[0] > 0.8 * (plan.ylabel.bottom - plan.ylabel.top)
    finally:
        plots._font.cache_clear()


def test_plot_ticks_by_hand():
    from ays_core.plots import log_ticks, step_ticks

    assert log_ticks(0.002, 80.0) == (0.01, 0.1, 1, 10)
    assert log_ticks(0.3, 4.0) == (0.5, 1, 2)
    assert log_ticks(1.01, 1.02) == (1.01,)  # nothing round inside: one label mid-way
    assert step_ticks(10) == tuple(range(10)) and step_ticks(40) == (0, 5, 10, 15, 20, 25, 30, 35)
