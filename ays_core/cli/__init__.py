"""The `ays` command: argument parsing and messages only; the work happens in ays_core.

Each command lives in its own module exposing SUMMARY (its line in `ays --help`) and
`add_parser(subparsers, common)`, which adds a sub-parser whose `run(args)` default does the work
and returns the exit status, and whose `setting_flags` default ({name: flag}, see `setting_flags`)
names the flags in messages about settings (ays_core.errors.SettingError). Only the command being run gets its full parser: optimize and bench
list choices that live beside torch code, and `ays --help` or `ays schedule` must not load torch.
"""
import argparse
import importlib
import sys

from ..errors import AYSError
from ..version import __version__

COMMANDS = ("schedule", "registry", "plot", "optimize", "bench")  # module names under ays_core.cli, in --help order


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `ays schedule: error: ... (see ays schedule --help)`, exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def common_options():
    """Options every command shares, as an argparse parent parser."""
    parent = Parser(add_help=False)
    parent.add_argument("--registry", metavar="DIR",
                        help="your registry folder, searched first and written by publish, pull and import "
                             "(default: $AYS_REGISTRY, else ays/registry in your per-user data folder, "
                             "e.g. ~/.local/share/ays/registry); lookups then search the registry shipped with AYS")
    return parent


def setting_flags(parser, dests=None):
    """{setting name: the flag of `parser` that sets it}: each option's argparse dest, and the
    names in `dests` ({setting: dest}) where a setting is not named like its flag."""
    flags = {action.dest: max(action.option_strings, key=len) for action in parser._actions if action.option_strings}
    return {**flags, **{name: flags[dest] for name, dest in (dests or {}).items()}}


def build_parser(command="all"):
    """The `ays` parser with the full options of `command` (of every command by default); the
    other commands appear by name and summary only (None: all of them, as for `ays --help`)."""
    parser = Parser(
        prog="ays",
        description="Align Your Steps: sampling schedules optimized for your diffusion model. "
                    "Print schedules for any step count, manage the schedule registry, optimize and "
                    "benchmark new schedules. `ays COMMAND --help` explains each command.")
    parser.add_argument("--version", action="version", version=f"ays {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    common = common_options()
    for name in COMMANDS:
        module = importlib.import_module(f"{__name__}.{name}")
        if command in (name, "all"):
            module.add_parser(subparsers, common)
        else:
            subparsers.add_parser(name, help=module.SUMMARY, add_help=False)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    command = next((arg for arg in argv if not arg.startswith("-")), None)  # `ays` itself has only -h/--version
    args = build_parser(command).parse_args(argv)
    try:
        return args.run(args) or 0
    except AYSError as exc:
        print(f"ays: error: {exc.named(getattr(args, 'setting_flags', {}))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ays: interrupted", file=sys.stderr)
        return 130
