"""`ays optimize` as a user runs it: files, publishing, errors, resume after a kill, torchrun."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ays_core.cli import main
from ays_core.models.toy import GaussianToy
from ays_core.registry import Registry, load_schedule
from ays_core.search import optimize
from ays_core.settings import RunSettings

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--model", "toy:gaussian", "--steps", "4", "--refine", "1", "--samples", "512", "--validation-samples", "64",
        "--step-counts", "3", "--teacher-samples", "8"]


def run_cli(args, cwd):
    """The `ays` command in a fresh interpreter (how users and torchrun start it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "ays_core", "optimize", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_writes_a_valid_schedule_file_and_publishes_versions(tmp_path, capsys):
    out, registry = tmp_path / "g.json", tmp_path / "reg"
    assert main(["optimize", *TINY, "--out", str(out), "--publish", "--registry", str(registry)]) == 0
    schedule = load_schedule(out)
    assert schedule.id == "toy-gaussian" and len(schedule.sigmas) == 9
    assert schedule.sigmas[0] == 80.0 and schedule.sigmas[-1] == 0.002
    assert schedule.doc["provenance"]["source"] == "optimized"
    assert schedule.doc["provenance"]["settings"]["mode"] == "fast"
    log = json.loads((tmp_path / "g.log.json").read_text())
    assert all("klub" in h for h in log["history"])
    stage = log["solver_stage"]  # the race and refinement for --steps and --step-counts
    assert sorted(stage, key=int) == ["3", "4"] and all(len(stage[n]["sigmas"]) == int(n) + 1 for n in stage)
    assert schedule.doc["step_schedules"]["4"] == stage["4"]["sigmas"][:-1]
    assert not (tmp_path / "g.state.json").exists()  # removed once the run is complete
    assert main(["optimize", *TINY, "--out", str(out), "--publish", "--registry", str(registry), "--id", "mine"]) == 0
    assert main(["optimize", *TINY, "--out", str(out), "--publish", "--registry", str(registry), "--id", "mine"]) == 0
    # The same seed gives the same schedule: publishing it again writes nothing and names the holder
    assert Registry(registry).versions("mine") == [1]
    assert "nothing published: mine@v1" in capsys.readouterr().out


def test_api_result_matches_cli_file(tmp_path):
    out = tmp_path / "g.json"
    assert main(["optimize", *TINY, "--mode", "paper", "--no-early-stop", "--out", str(out)]) == 0
    result = optimize(GaussianToy(), RunSettings(steps=4, mode="paper", refine=1, samples=512, early_stop=False), progress=False)
    assert np.array_equal(load_schedule(out).sigmas, result.sigmas)


@pytest.mark.parametrize("args,message", [
    (["--model", "toy:nope"], "unknown toy model"),
    (["--model", "nonsense"], "SCHEME:NAME"),
    (["--model", "toy:gaussian", "--steps", "1"], "--steps must be"),
    (["--model", "toy:gaussian", "--sigma-min", "5", "--sigma-max", "1"], "need 0 < --sigma-min < --sigma-max"),
    (["--model", "toy:gaussian?sigma_min=5&sigma_max=1"], "model options: need 0 < sigma_min"),
    (["--model", "toy:gaussian", "--samples", "0"], "samples"),
    (["--model", "toy:gaussian", "--id", "Bad Id"], "invalid schedule id"),
    (["--model", "toy:gaussian", "--out", "/no/such/folder/x.json"], "does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert main(["optimize", "--out", str(tmp_path / "x.json"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ays: error: ") and message in err and "\n" not in err


def state_of_other_run():
    """A well-formed state file, but of a run with other settings (--samples 256)."""
    from ays_core.search import STATE_FORMAT, state_checksum

    result = optimize(GaussianToy(), RunSettings(steps=4, refine=1, samples=256, validation_samples=64), progress=False)
    doc = {"format": STATE_FORMAT, "config": result.settings, "stage": 2, "iteration": 0,
           "sigmas": result.sigmas[::-1].tolist(), "width": 0.5, "best": None, "since_best": 0,
           "history": result.history, "evaluations": result.evaluations, "table": None}
    return json.dumps({**doc, "checksum": state_checksum(doc)}).encode()


@pytest.mark.parametrize("content,message", [
    (b"{not json", "corrupt resume state"),
    (b'{"format": "something else"}', "corrupt resume state"),
    (b'{"format": "ays-optimize-state-v1", "config": {}, "stage": 0, "sigmas": [1, 0.5]}', "corrupt resume state"),
    (None, "other settings"),
])
def test_bad_resume_state_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    (tmp_path / "g.state.json").write_bytes(state_of_other_run() if content is None else content)
    assert main(["optimize", *TINY, "--out", str(tmp_path / "g.json"), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ays: error: ") and message in err and "\n" not in err


# `ays optimize` that pauses for good right after the state save that holds `at` iterations and
# says so on file descriptor `fd`: the test kills it at that point, not at a moment of the clock.
PAUSING_OPTIMIZE = """
import os, signal, sys
from ays_core import search
from ays_core.cli import main
fd, at = int(sys.argv[1]), int(sys.argv[2])
save_state = search.save_state
def save_then_pause(path, state):
    save_state(path, state)
    if len(state["history"]) >= at:
        os.write(fd, b"paused")
        while True:
            signal.pause()
search.save_state = save_then_pause
sys.exit(main(["optimize", *sys.argv[3:]]))
"""


def start_pausing_cli(args, cwd, at):
    """`ays optimize` in a fresh interpreter that pauses after saving `at` iterations; returns
    (process, whether it paused: False when it ended first)."""
    read_end, write_end = os.pipe()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(Path(cwd) / "paused.err", "wb") as err:  # a file: a full pipe would stop it before the pause
        proc = subprocess.Popen([sys.executable, "-c", PAUSING_OPTIMIZE, str(write_end), str(at), *args], cwd=cwd,
                                env=env, pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=err)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as signal_pipe:
        paused = signal_pipe.read(6) == b"paused"  # blocks until the pause, or b"" once the process ended
    return proc, paused


def test_resume_after_kill_reaches_the_uninterrupted_result(tmp_path):
    args = ["--model", "toy:gaussian", "--steps", "6", "--refine", "1", "--mode", "paper", "--samples", "512",
            "--validation-samples", "64", "--out", "g.json"]
    state = tmp_path / "g.state.json"
    proc, paused = start_pausing_cli(args, tmp_path, at=4)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert paused, f"the run ended before its 4th iteration: {(tmp_path / 'paused.err').read_text()[-2000:]}"
    assert proc.returncode == -signal.SIGKILL
    killed_at = json.loads(state.read_text())
    assert not (tmp_path / "g.json").exists()
    resumed = run_cli(args + ["--resume"], tmp_path)
    _, err = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, err
    history = json.loads((tmp_path / "g.log.json").read_text())["history"]
    assert history[:len(killed_at["history"])] == killed_at["history"]  # continued, not restarted
    expected = optimize(GaussianToy(), RunSettings(steps=6, mode="paper", refine=1, samples=512, validation_samples=64),
                        progress=False)
    assert np.array_equal(load_schedule(tmp_path / "g.json").sigmas, expected.sigmas)
    assert [h["klub"] for h in history] == [h["klub"] for h in expected.history]


def worker_logs(log_dir):
    """Every torchrun worker's stdout and stderr (torchrun --log-dir ... --redirects 3), for a failure message."""
    return "\n".join(f"--- {path.relative_to(log_dir)}:\n{path.read_text(errors='replace')[-3000:]}"
                     for path in sorted(Path(log_dir).rglob("std*.log")))


@pytest.mark.parametrize("mode", ["fast", "paper"])
def test_two_gloo_processes_give_the_one_process_schedule(tmp_path, mode):
    args = [*TINY, "--samples", "1024", "--mode", mode, "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"}  # a native abort shows the Python stacks
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                "--log-dir", str(tmp_path / "logs"), "--redirects", "3",
                "-m", "ays_core", "optimize", *args, "--out", "two.json"]
    done = subprocess.run(torchrun, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    # torchrun's own stderr names each worker's exit code (a signal, for a crash); the workers' logs say why
    assert done.returncode == 0, f"{done.stderr[-3000:]}\n{worker_logs(tmp_path / 'logs')}"
    assert main(["optimize", *args, "--out", str(tmp_path / "one.json")]) == 0
    assert load_schedule(tmp_path / "two.json").sigmas.tolist() == load_schedule(tmp_path / "one.json").sigmas.tolist()


@pytest.fixture
def one_rank_torchrun(monkeypatch):
    """`ays optimize` as a torchrun worker sees it (WORLD_SIZE=2), joining a real gloo group of one rank
    in this process instead of waiting for a second one. Yields the backends it was asked to join."""
    import torch.distributed as dist

    real_init, joined = dist.init_process_group, []

    def one_rank_init(backend):
        joined.append(backend)
        real_init(backend, store=dist.HashStore(), rank=0, world_size=1)

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(dist, "init_process_group", one_rank_init)
    yield joined
    if dist.is_initialized():  # left behind by a failing test: the next tests start without it
        dist.destroy_process_group()


@pytest.mark.parametrize("extra,code", [([], 0), (["--model", "toy:nope"], 2)])
def test_optimize_leaves_the_process_group_before_it_returns(tmp_path, one_rank_torchrun, extra, code):
    """A worker that still holds its gloo group when Python exits can abort there ("terminate called
    without an active exception": a gloo thread releasing a finished collective's tensors after the
    interpreter began finalizing), failing a torchrun run whose schedule was already written. The
    command leaves the group itself, after a finished run and after an error alike."""
    import torch.distributed as dist

    assert main(["optimize", *TINY, "--device", "cpu", "--out", str(tmp_path / "g.json"), *extra]) == code
    assert one_rank_torchrun == ["gloo"]
    assert not dist.is_initialized()
