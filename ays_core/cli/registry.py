"""`ays registry`: list, show, publish, verify and index a registry folder; share schedules
(pull, serve, import, export)."""
import sys
from pathlib import Path

from .. import AYSError, Registry, load_schedule
from ..registry import default_registry, dump_schedule, parse_ref, publish_message, search_order
from . import setting_flags

SUMMARY = "list, show, publish, verify, index and share schedules"  # the line `ays --help` shows


def add_parser(subparsers, common):
    p = subparsers.add_parser(
        "registry", help=SUMMARY,
        description="Manage a schedule registry: a folder of immutable <id>/v<N>.json files plus index.json. "
                    "Share schedules with pull/serve (over HTTP) and import/export (single files).")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    a = actions.add_parser("list", parents=[common], help="list every schedule (id, version, model)")
    a.set_defaults(run=run_list)

    a = actions.add_parser("show", parents=[common], help="print one schedule file (latest version unless ID@V)")
    a.add_argument("ref", metavar="ID[@V]")
    a.set_defaults(run=run_show)

    a = actions.add_parser("publish", parents=[common],
                           help="validate FILE and add it as the next version of its id")
    a.add_argument("file", metavar="FILE")
    a.add_argument("--to", metavar="DIR",
                   help="publish into this existing registry folder only (e.g. a git checkout of a shared "
                        "registry), numbering versions by what DIR holds; its index.json is regenerated "
                        "deterministically so that two publishers' changes merge")
    a.set_defaults(run=run_publish)

    a = actions.add_parser("verify", parents=[common],
                           help="re-validate every file and recompute every sha256 in the index (exit 1 on problems)")
    a.set_defaults(run=run_verify)

    a = actions.add_parser("index", parents=[common], help="regenerate index.json from the files")
    a.set_defaults(run=run_index)

    a = actions.add_parser(
        "pull", parents=[common], help="download new schedules from a remote registry (HTTP/HTTPS)",
        description="Download URL/index.json and the files it lists, check each against the sha256 in the index "
                    "and the schedule schema, and install new versions (keeping their version numbers) into "
                    "the registry. A version stored locally with different content is a conflict: reported, "
                    "never overwritten. Pulling again is a no-op. Exit status 2 if anything was rejected.")
    a.add_argument("url", metavar="URL", help="folder URL of the remote registry (or the URL of its index.json)")
    a.add_argument("--id", dest="ids", metavar="ID[@V]", action="append",
                   help="pull only this schedule id, or one version of it (repeat for several)")
    a.add_argument("--timeout", type=_positive, default=10.0, metavar="S",
                   help="seconds to wait for a connection or for data (default 10)")
    a.add_argument("--file-deadline", type=_positive, default=120.0, metavar="S",
                   help="seconds one file may take from the request to its last byte, headers included, "
                        "before its connection is dropped and it is retried (default 120)")
    a.add_argument("--pull-deadline", type=_positive, default=600.0, metavar="S",
                   help="seconds the whole pull may take, retries included; files that arrived by then are "
                        "installed, the rest reported (default 600)")
    a.add_argument("--retries", type=int, choices=range(0, 11), default=2, metavar="N",
                   help="retries after a timeout, dropped connection or HTTP 5xx, with backoff (default 2)")
    a.set_defaults(run=run_pull)

    a = actions.add_parser(
        "serve", parents=[common], help="serve the registry read-only over HTTP (for pull on a LAN or tests)",
        description="Serve index.json (generated from the files) and <id>/v<N>.json of the registry, read-only. "
                    "Stop with Ctrl+C.")
    a.add_argument("--port", type=_port, default=8000, metavar="P", help="port 0-65535 (default 8000; 0 picks a free one)")
    a.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 shares on the LAN)")
    a.set_defaults(run=run_serve)

    a = actions.add_parser("export", parents=[common],
                           help="write one schedule (latest version unless ID@V) to a file to share by hand")
    a.add_argument("ref", metavar="ID[@V]")
    a.add_argument("file", metavar="FILE", help="file to write ('-' for standard output)")
    a.add_argument("--force", action="store_true", help="replace FILE if it exists")
    a.set_defaults(run=run_export, setting_flags=setting_flags(a))

    a = actions.add_parser(
        "import", parents=[common], help="check a schedule file someone shared and install it at its version",
        description="Check FILE exactly like `pull` checks a download (strict JSON, schema, sigmas) and install it "
                    "at the version it carries. A version stored locally with different content is a conflict "
                    "(use `publish` to add the file as a new version instead).")
    a.add_argument("file", metavar="FILE", help="schedule file ('-' for standard input)")
    a.set_defaults(run=run_import)


def _positive(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 1e6:
        import argparse

        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _port(text):
    import argparse

    if not (text.isdigit() and int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {text!r}")
    return int(text)


def _registries(args):
    return search_order(args.registry)


def _target(args):
    return Registry(args.registry or default_registry())


def run_list(args):
    rows = [("ID", "VERSION", "FAMILY", "STEPS", "CHECKPOINT", "SOURCE", "REGISTRY")]
    for s in _registries(args).schedules():
        rows.append((s.id, f"v{s.version}", s.model["family"], str(len(s.doc["sigmas"]) - 1),
                     s.model.get("shorthash", "-"), s.doc["provenance"]["source"], str(s.path.parent.parent)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def run_show(args):
    schedule_id, version = parse_ref(args.ref)
    schedule = _registries(args).get(schedule_id, version)
    print(dump_schedule(schedule.doc).decode("utf-8"), end="")
    return 0


def run_publish(args):
    doc = load_schedule(args.file).doc
    if args.to:
        if not Path(args.to).is_dir():
            raise AYSError(f"--to {args.to}: no such folder (give the checkout of the shared registry)")
        published = Registry(args.to).publish(doc)
    else:
        published = _registries(args).publish(doc)
    print(publish_message(published))
    return 0


def run_verify(args):
    registry = _target(args)
    if not registry.root.exists():
        print(f"nothing to verify: your registry {registry.root} does not exist yet (publish, pull and import "
              f"create it; --registry DIR verifies another folder)")
        return 0
    problems = registry.verify()
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {registry.root}")
        return 1
    count = len(registry.read_index()["schedules"])
    print(f"ok: {count} schedule file(s) in {registry.root} valid and matching the index")
    return 0


def run_index(args):
    registry = _target(args)
    index = registry.write_index()
    print(f"wrote {registry.root / 'index.json'} ({len(index['schedules'])} schedules)")
    return 0


def run_pull(args):
    from ..share import Downloader, pull

    report = pull(args.url, _registries(args), ids=args.ids, progress=True,
                  downloader=Downloader(timeout=args.timeout, deadline=args.file_deadline, total=args.pull_deadline,
                                        attempts=args.retries + 1))
    for ref in report.installed:
        print(f"installed {ref}")
    for problem in report.problems:
        print(f"ays: error: {problem}", file=sys.stderr)
    print(report.summary())
    return 2 if report.problems else 0


def run_serve(args):
    from ..share import make_server, server_url

    registry = _target(args)
    server = make_server(registry, host=args.host, port=args.port)
    print(f"serving {registry.root} read-only at {server_url(server)} (Ctrl+C to stop)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def run_export(args):
    from ..share import export_file

    schedule = export_file(args.ref, args.file, _registries(args), force=args.force)
    if args.file != "-":
        print(f"exported {schedule.ref} to {args.file}")
    return 0


def run_import(args):
    from ..share import import_file

    path, status = import_file(args.file, _registries(args))
    verb = "imported" if status == "installed" else "already present:"
    print(f"{verb} {path}")
    return 0
