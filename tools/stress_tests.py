"""Run the whole test suite K times while the CPUs are kept busy, to catch tests that pass or fail
by chance (timing, load, ports, leftover state). Not part of `make test`.

    .venv/bin/python tools/stress_tests.py              # 10 runs, one busy process per CPU
    .venv/bin/python tools/stress_tests.py -k 3 --jobs 2 -- tests/test_share.py

Prints each run's result and "N of K runs passed"; exits 0 only when every run passed. The runs
test a copy of the working tree taken at the start (tracked and untracked files that git does not
ignore), so editing or rebasing meanwhile changes nothing under test. The logs of failing runs
(with their pytest temporary folders, and the copy) are kept under --logs; passing runs leave nothing.
The CPU hog is bounded: --hogs processes, started and stopped by this script, each of which also
ends by itself after --hog-limit seconds or when this script is gone. Suites and hogs run under
`nice` (--nice) so that they compete with each other and not with anything else on the machine.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# A busy loop that checks twice a second whether it should end: its time is up, or the script
# that started it is gone (then the parent pid changes).
HOG = """
import os, sys, time
parent, end = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
while os.getppid() == parent and time.monotonic() < end:
    stop = time.monotonic() + 0.5
    while time.monotonic() < stop:
        sum(i * i for i in range(1000))
"""
SUMMARY = re.compile(r"^=*\s*(\d+ (passed|failed|error).*) in [\d.]+s")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Arguments after -- go to pytest (default: the whole suite).")
    parser.add_argument("-k", "--runs", type=int, default=10, help="how many times to run the suite (default 10)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="suites running at the same time (default 1); more is more load")
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 1,
                        help="busy processes kept running meanwhile (default: one per CPU; 0: none)")
    parser.add_argument("--hog-limit", type=float, default=4 * 3600,
                        help="seconds after which a hog ends by itself (default 4 h)")
    parser.add_argument("--nice", type=int, default=10, help="niceness of the suites and the hogs (default 10)")
    parser.add_argument("--logs", type=Path, default=None,
                        help="folder for failing runs' logs (default: a new folder in the system's temp folder)")
    parser.add_argument("pytest_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.jobs < 1 or args.hogs < 0 or args.hog_limit <= 0:
        parser.error("--runs and --jobs must be at least 1, --hogs at least 0, --hog-limit positive")
    return args


def start_hogs(count, limit):
    return [subprocess.Popen([sys.executable, "-c", HOG, str(os.getpid()), str(limit)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL) for _ in range(count)]


def stop_hogs(hogs):
    for hog in hogs:
        hog.kill()
    for hog in hogs:
        hog.wait()


NOT_COPIED = (".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", "*.egg-info", "build", "out")


def copy_working_tree(dest):
    """The files of the working tree as they are now, copied to `dest` (git lists them; outside a
    git checkout, e.g. in the copy a stress run tests, every file but the build and cache folders)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                                capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        if REPO in Path(dest).resolve().parents:
            raise
        return Path(shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(*NOT_COPIED)))
    for name in filter(None, listed.split(b"\0")):
        source = REPO / os.fsdecode(name)
        if source.is_file():  # a file deleted but not yet staged is still listed
            target = dest / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def run_suite(number, args, logs, checkout):
    """One whole pytest run; returns (passed?, its summary line, seconds, the kept log or None)."""
    folder = logs / f"run-{number:02d}"
    folder.mkdir()
    log = folder / "pytest.log"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE",
               "--basetemp", str(folder / "tmp"), *args.pytest_args]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    began = time.monotonic()
    with open(log, "wb") as out:
        code = subprocess.run(command, cwd=checkout, env=env, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.STDOUT).returncode
    seconds = time.monotonic() - began
    summary = next((m.group(1) for m in map(SUMMARY.match, reversed(log.read_text(errors="replace").splitlines()))
                    if m), f"pytest exited with status {code}")
    if code == 0:
        shutil.rmtree(folder)
        return True, summary, seconds, None
    return False, summary, seconds, log


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logs = args.logs or Path(tempfile.mkdtemp(prefix="ays-stress-"))
    logs.mkdir(parents=True, exist_ok=True)
    try:
        checkout = copy_working_tree(logs / "checkout")
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"stress_tests: cannot copy the working tree (git ls-files): {exc}")
    print(f"{args.runs} runs of the suite, {args.jobs} at a time, with {args.hogs} busy process(es), on a copy "
          f"of the working tree; failing runs' logs go to {logs}", flush=True)
    os.nice(args.nice)  # inherited by the suites and the hogs
    hogs = start_hogs(args.hogs, args.hog_limit)
    passed = 0
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            runs = [pool.submit(run_suite, i, args, logs, checkout) for i in range(1, args.runs + 1)]
            for number, run in enumerate(runs, 1):
                ok, summary, seconds, log = run.result()
                passed += ok
                kept = "" if ok else f"; log kept: {log}"
                print(f"run {number}/{args.runs}: {'passed' if ok else 'FAILED'} ({summary}, {seconds:.0f} s){kept}",
                      flush=True)
    finally:
        stop_hogs(hogs)
    print(f"{passed} of {args.runs} runs passed")
    if passed == args.runs:
        shutil.rmtree(checkout)
        if args.logs is None:
            logs.rmdir()
    return 0 if passed == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
