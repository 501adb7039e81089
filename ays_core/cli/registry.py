"""`ays registry`: list, show, publish, verify and index a registry folder."""
import json

from .. import Registry, RegistrySet, load_schedule, parse_ref
from ..registry import default_registry, dump_schedule


def add_parser(subparsers, common):
    p = subparsers.add_parser(
        "registry", help="list, show, publish, verify and index schedules",
        description="Manage a schedule registry: a folder of immutable <id>/v<N>.json files plus index.json.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    a = actions.add_parser("list", parents=[common], help="list every schedule (id, version, model)")
    a.set_defaults(run=run_list)

    a = actions.add_parser("show", parents=[common], help="print one schedule file (latest version unless ID@V)")
    a.add_argument("ref", metavar="ID[@V]")
    a.set_defaults(run=run_show)

    a = actions.add_parser("publish", parents=[common],
                           help="validate FILE and add it as the next version of its id")
    a.add_argument("file", metavar="FILE")
    a.set_defaults(run=run_publish)

    a = actions.add_parser("verify", parents=[common],
                           help="re-validate every file and recompute every sha256 in the index (exit 1 on problems)")
    a.set_defaults(run=run_verify)

    a = actions.add_parser("index", parents=[common], help="regenerate index.json from the files")
    a.set_defaults(run=run_index)


def _registries(args):
    return RegistrySet([args.registry or default_registry(), Registry()])


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
    published = _registries(args).publish(doc)
    print(f"published {published.ref} to {published.path}")
    return 0


def run_verify(args):
    registry = _target(args)
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
