"""The `ays` command: argument parsing and messages only; the work happens in ays_core.

Each command lives in its own module exposing `add_parser(subparsers, common)`, which adds a
sub-parser whose `run(args)` default does the work and returns the exit status.
"""
import argparse
import importlib
import sys

from ..errors import AYSError
from ..version import __version__

COMMANDS = ("schedule", "registry", "plot", "optimize", "bench")  # module names under ays_core.cli, in --help order


def common_options():
    """Options every command shares, as an argparse parent parser."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--registry", metavar="DIR",
                        help="registry folder (default: $AYS_REGISTRY, else the registry/ shipped with AYS); "
                             "lookups fall back to the shipped registry")
    return parent


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ays",
        description="Align Your Steps: sampling schedules optimized for your diffusion model. "
                    "Print schedules for any step count, manage the schedule registry, optimize and "
                    "benchmark new schedules.")
    parser.add_argument("--version", action="version", version=f"ays {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = common_options()
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers, common)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except AYSError as exc:
        print(f"ays: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ays: interrupted", file=sys.stderr)
        return 130
