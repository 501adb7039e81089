"""Careless input anywhere in the `ays` argument space: every run ends with status 0, 1 or 2 and,
for 2, exactly one line `ays...: error: ...` on stderr; never a traceback.

In-process, a few dozen derandomized examples per command (the same ones on every run). What
would do real work or leave the machine (the search, the benchmark, serving, downloads) is
replaced by a stand-in that stops the run once every check before it has passed."""
import io
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ays_core import share
from ays_core.cli import main

# What people mistype, by kind of value
NUMBERS = ["", "-1", "0", "1", "3", "0.5", "1e400", "nan", "inf", "99999999999", "abc"]
IDS = ["sd15", "sdxl@v1", "karras", "UP", "sd15@v0", "@", "nope", "", "./missing.json", "/nonexistent/x.json",
       "../escape", "é"]
PATHS = ["out.png", "x.json", "/nonexistent/x.json", "../escape/x", "", "é.json", "-", "/proc/x.json"]
MODELS = ["toy:gaussian", "toy:gmm8x8?std=abc", "toy:gaussian?c=-1", "toy:nope", "nonsense", "diffusers:",
          "arch:sd15", "/nonexistent.safetensors", ""]
WORDS = ["", "nope", "karras", "a,b,,c", "euler,nope", "6,8", "1", "cuda", "cuda:7", "meta", "cpu", "fast", "json",
         "a1111", "http://127.0.0.1:9/", "ftp://x", "999.1.1.1", "127.0.0.1"]

REQUIRED = {"schedule": ["--steps"], "plot": ["--out"], "optimize": ["--model", "--out"], "bench": ["--model"],
            "registry serve": ["--port"]}  # always given (with a drawn value), so that runs get past argparse
COMMANDS = {  # command: (positional value pools, {option: value pool or None for a flag})
    "schedule": ([IDS], {"--steps": NUMBERS, "--denoise": NUMBERS, "--version": NUMBERS, "--convention": WORDS,
                         "--sigma-min": NUMBERS, "--sigma-max": NUMBERS, "--format": WORDS, "--registry": PATHS}),
    "plot": ([IDS, IDS], {"--steps": NUMBERS, "--out": PATHS, "--title": WORDS, "--registry": PATHS}),
    "registry list": ([], {"--registry": PATHS}),
    "registry show": ([IDS], {"--registry": PATHS}),
    "registry publish": ([PATHS], {"--to": PATHS, "--registry": PATHS}),
    "registry verify": ([], {"--registry": PATHS}),
    "registry index": ([], {"--registry": PATHS}),
    "registry pull": ([WORDS], {"--id": IDS, "--timeout": NUMBERS, "--retries": NUMBERS, "--registry": PATHS}),
    "registry serve": ([], {"--port": NUMBERS, "--host": WORDS, "--registry": PATHS}),
    "registry export": ([IDS, PATHS], {"--force": None, "--registry": PATHS}),
    "registry import": ([PATHS], {"--registry": PATHS}),
    "optimize": ([], {"--model": MODELS, "--steps": NUMBERS, "--refine": NUMBERS, "--solver": WORDS, "--mode": WORDS,
                      "--samples": NUMBERS, "--seed": NUMBERS, "--patience": NUMBERS, "--validation-samples": NUMBERS,
                      "--max-iterations": NUMBERS, "--sigma-min": NUMBERS, "--sigma-max": NUMBERS, "--id": IDS,
                      "--out": PATHS, "--publish": None, "--state": PATHS, "--resume": None, "--log": PATHS,
                      "--device": WORDS, "--no-progress": None, "--dry-run": None}),
    "bench": ([], {"--model": MODELS, "--schedules": WORDS, "--samplers": WORDS, "--nfe": WORDS, "--samples": NUMBERS,
                   "--seeds": NUMBERS, "--seed": NUMBERS, "--reference-steps": NUMBERS, "--out": PATHS,
                   "--no-progress": None}),
}


class ReachedTheWork(Exception):
    """Raised by the stand-ins: every check before the real work passed."""


def _stop(*args, **kwargs):
    raise ReachedTheWork


def _estimator_until_the_device(denoiser, x0_source, samples, seed, chunk_size, device, *args, **kwargs):
    import torch

    torch.zeros(1, device=device)  # the first thing the KLUB estimators do with the device
    raise ReachedTheWork


def command_lines(command):
    positionals, options = COMMANDS[command]

    @st.composite
    def draw_argv(draw):
        argv = command.split() + [draw(st.sampled_from(pool)) for pool in positionals]
        chosen = draw(st.lists(st.sampled_from(sorted(options)), min_size=0 if command in REQUIRED else 1, max_size=4))
        for option in REQUIRED.get(command, []) + chosen:
            argv.append(option)
            if options[option] is not None:
                argv.append(draw(st.sampled_from(options[option])))
        return argv

    return draw_argv()


@pytest.fixture
def stand_ins(monkeypatch, tmp_path):
    import socketserver

    import ays_core.bench
    import ays_core.search

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))  # `import -` reads an empty file
    monkeypatch.setattr(ays_core.search, "PathKLUB", _estimator_until_the_device)  # optimize() has checked its input
    monkeypatch.setattr(ays_core.search, "ImportanceKLUB", _estimator_until_the_device)
    monkeypatch.setattr(ays_core.bench, "run_bench", _stop)
    monkeypatch.setattr(socketserver.BaseServer, "serve_forever", _stop)  # the server is made, then not run
    monkeypatch.setattr(share.Downloader, "get", lambda self, url, limit: (_ for _ in ()).throw(
        share.AYSError(f"{url}: cannot connect (offline test)")))


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_careless_input_gives_a_traceback(stand_ins, capsys, command):
    @settings(max_examples=15 if command == "plot" else 40, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(argv=command_lines(command))
    def check(argv):
        try:
            code = main(argv)
        except SystemExit as exit:  # argparse: --help (0) or a usage error (2)
            code = exit.code
        except ReachedTheWork:
            capsys.readouterr()
            return
        _, err = capsys.readouterr()
        assert "Traceback" not in err
        assert code in (0, 1, 2), (argv, code, err)
        if code == 2:
            lines = [line for line in err.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("ays") and "error: " in lines[0], (argv, err)

    check()
