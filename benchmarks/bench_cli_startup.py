"""Start-up time of the light `ays` commands against `python -c "import numpy, jsonschema"`.

    .venv/bin/python benchmarks/bench_cli_startup.py [--runs 10]

Each command runs as a fresh process, interleaved with the reference so that machine load hits
both alike; the figure is the ratio of medians (wall time), plus whether the command loaded torch.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = [sys.executable, "-c", "import numpy, jsonschema"]
PNG = os.path.join(tempfile.gettempdir(), f"ays-startup-{os.getpid()}.png")
COMMANDS = (["--help"], ["--version"], ["schedule", "sdxl", "--steps", "20"], ["schedule", "karras", "--steps", "10"],
            ["registry", "list"], ["plot", "sd15", "karras", "--out", PNG])
TORCH_CHECK = "import runpy, sys; sys.argv = ['ays', *sys.argv[1:]]; code = 0\n" \
              "try: runpy.run_module('ays_core', run_name='__main__')\n" \
              "except SystemExit as e: code = e.code\n" \
              "print('torch' in sys.modules, file=sys.stderr)"


def wall(argv, env):
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def loads_torch(args, env):
    result = subprocess.run([sys.executable, "-c", TORCH_CHECK, *args], env=env, capture_output=True, text=True)
    return result.stderr.strip().splitlines()[-1] == "True"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": REPO}
    print(f"| command | median s | reference median s | ratio | loads torch |\n|---|---|---|---|---|")
    for command in COMMANDS:
        ours, reference = [], []
        for _ in range(args.runs):
            reference.append(wall(REFERENCE, env))
            ours.append(wall([sys.executable, "-m", "ays_core", *command], env))
        ratio = statistics.median(ours) / statistics.median(reference)
        print(f"| ays {' '.join(command).replace(PNG, 'FILE.png')} | {statistics.median(ours):.3f} | {statistics.median(reference):.3f} "
              f"| {ratio:.2f} | {loads_torch(command, env)} |", flush=True)
    if os.path.exists(PNG):
        os.unlink(PNG)


if __name__ == "__main__":
    main()
