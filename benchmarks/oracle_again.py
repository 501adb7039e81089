"""How reachable is "within the paired CI of the oracle"? Bench the suite's oracle lists as if they
were AYS's, with the suite's seeds and sizes: the oracle then searches again from its own list (as
many more evaluations of the main metric, on its own noise seeds). Where it beats that list beyond
the paired CI on the evaluation seeds, the oracle's own list fails the criterion the suite applies
to AYS.

Reads a finished suite run (`make bench`: --suite out/suite; `make bench-quick`: --quick); writes
only under --out, where summary.json keeps every cell's verdict and the counts per model.

    nice .venv/bin/python benchmarks/oracle_again.py --models toy,digits,patches
"""
import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

from dataclasses import replace  # noqa: E402

from ays_core.errors import AYSError  # noqa: E402
from ays_core.fileio import atomic_write, read_json  # noqa: E402
from suite import FULL, MODELS, QUICK, SOLVERS, bench_argv, run  # noqa: E402

VERDICTS = {0: "within", 1: "the oracle again better", -1: "its list better"}


def oracle_as_schedule(folder, solver, nfe, settings):
    """The suite's AYS file in `folder` with each step count of `nfe` replaced by the oracle's list;
    exits when that suite run does not match `settings` or has no oracle at one of `nfe`."""
    result = read_json(os.path.join(folder, "bench", "results.json"))
    config = result["config"]
    if len(config["seeds"]) != settings.seeds or config["seeds"][0] != settings.seed:
        sys.exit(f"oracle_again: {folder} was run with seeds {config['seeds']}, not these settings' "
                 f"{settings.seeds} from {settings.seed} (--quick for a `make bench-quick` run)")
    doc = read_json(os.path.join(folder, "AYS.json"))
    for n in nfe:
        key = f"{solver}@{n}"
        if key not in config.get("oracle", {}):
            sys.exit(f"oracle_again: the suite run in {folder} has no oracle at {n} NFE")
        doc["step_schedules"][str(n)] = [s for s in config["oracle"][key] if s > 0]
    return doc, config["samples"]


def subset(text, allowed, what):
    chosen = [item for item in text.split(",") if item]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"{what} must be some of {', '.join(allowed)}, got {text!r}")
    return chosen


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the run is `make bench-quick`'s (default out/suite-quick)")
    parser.add_argument("--suite", help="a finished suite run (default out/suite, out/suite-quick with --quick)")
    parser.add_argument("--models", type=lambda text: subset(text, MODELS, "--models"), default=list(MODELS))
    parser.add_argument("--samplers", type=lambda text: subset(text, SOLVERS, "--samplers"), default=None)
    parser.add_argument("--nfe", default=None, help="the cells (default: the issue's criterion, 6, 8 and 10 NFE; "
                                                    "6 and 10 with --quick)")
    parser.add_argument("--out", default=os.path.join(REPO, "out", "oracle-again"))
    args = parser.parse_args()
    settings = QUICK if args.quick else FULL
    suite = os.path.abspath(args.suite or os.path.join(REPO, "out", "suite-quick" if args.quick else "suite"))
    out_root = os.path.abspath(args.out)
    try:
        nfe = [int(n) for n in args.nfe.split(",")] if args.nfe else [n for n in (6, 8, 10) if n in settings.nfe]
    except ValueError:
        parser.error(f"--nfe must be step counts like 6,8,10, got {args.nfe!r}")
    samplers = args.samplers or list(settings.samplers)

    from ays_core.bench_report import read_result
    from ays_core.verdict import beyond, paired_difference, per_seed

    os.chdir(REPO)  # the suite's model paths are relative to the repository
    cells, counts = [], {}
    for model_name in args.models:
        for solver in samplers:
            out = os.path.join(out_root, model_name, solver)
            doc, samples = oracle_as_schedule(os.path.join(suite, model_name, solver), solver, nfe, settings)
            if samples != settings.sizes(model_name)[0]:
                sys.exit(f"oracle_again: {model_name} {solver} was run with {samples} samples, not these settings' "
                         f"{settings.sizes(model_name)[0]} (--quick for a `make bench-quick` run)")
            os.makedirs(out, exist_ok=True)
            schedule = os.path.join(out, "oracle-list.json")
            atomic_write(schedule, json.dumps(doc).encode("utf-8"))
            run(*bench_argv(model_name, solver, replace(settings, nfe=tuple(nfe)), (schedule, "oracle"),
                            os.path.join(out, "bench")))
            result = read_result(os.path.join(out, "bench", "results.json"))
            key = result.metrics[0].key
            for (_, n), values in sorted(per_seed(result.rows, key).items(), key=lambda item: item[0][1]):
                listed = next(v for name, v in values.items() if name != "oracle")
                diff, half = paired_difference(listed, values["oracle"])
                verdict = VERDICTS[beyond(diff, half)]
                cells.append({"model": model_name, "solver": solver, "nfe": n, "metric": key,
                              "list_minus_again": diff, "interval": half, "verdict": verdict})
                met, total = counts.get(model_name, (0, 0))
                counts[model_name] = (met + (verdict != VERDICTS[1]), total + 1)
                print(f"{model_name} {solver} {n} NFE ({key}): the oracle's list minus the oracle again "
                      f"{diff:+.3g} ± {half:.2g}: {verdict}", flush=True)
    for model_name, (met, total) in counts.items():
        print(f"{model_name}: the oracle's own list is within the oracle again or better in {met} of {total} cells")
    summary = {"suite": suite, "cells": cells, "within_or_better": counts}
    atomic_write(os.path.join(out_root, "summary.json"), json.dumps(summary, indent=1).encode("utf-8"))


if __name__ == "__main__":
    try:
        main()
    except AYSError as error:  # an unreadable or malformed file of the suite run
        sys.exit(f"oracle_again: {error}")
