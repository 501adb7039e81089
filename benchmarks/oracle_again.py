"""How reachable is "within the paired CI of the oracle"? Bench the suite's oracle lists as if they
were AYS's, with the suite's seeds and sizes: the oracle then searches again from its own list (40
more evaluations of the main metric on its own noise seeds). Where it beats that list beyond the
paired CI on the evaluation seeds, the oracle's own list fails the criterion the suite applies to AYS.

Reads a finished suite run (`make bench`, --suite out/suite); writes only under --out.

    nice .venv/bin/python benchmarks/oracle_again.py --models toy,digits,patches
"""
import argparse
import copy
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

from suite import MODELS, SOLVERS, SuiteSettings, run  # noqa: E402


def oracle_as_schedule(folder, nfe):
    """The suite's AYS file of `folder` with each step count of `nfe` replaced by the oracle's list."""
    with open(os.path.join(folder, "bench", "results.json")) as f:
        oracles = json.load(f)["config"]["oracle"]
    with open(os.path.join(folder, "AYS.json")) as f:
        doc = copy.deepcopy(json.load(f))
    solver = os.path.basename(folder)
    for n in nfe:
        doc["step_schedules"][str(n)] = [s for s in oracles[f"{solver}@{n}"] if s > 0]
    return doc


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default=os.path.join(REPO, "out", "suite"), help="a finished suite run")
    parser.add_argument("--models", default="toy,digits,patches")
    parser.add_argument("--samplers", default=",".join(SOLVERS))
    parser.add_argument("--nfe", default="6,8,10", help="the cells (the issue's criterion: 6, 8 and 10 NFE)")
    parser.add_argument("--out", default=os.path.join(REPO, "out", "oracle-again"))
    args = parser.parse_args()

    from ays_core.bench_report import read_result
    from ays_core.verdict import beyond, paired_difference, per_seed

    settings, nfe = SuiteSettings(), [int(n) for n in args.nfe.split(",")]
    words = {0: "within", 1: "the oracle again better", -1: "its list better"}
    for model_name in args.models.split(","):
        for solver in args.samplers.split(","):
            out = os.path.join(args.out, model_name, solver)
            os.makedirs(out, exist_ok=True)
            schedule = os.path.join(out, "oracle-list.json")
            with open(schedule, "w") as f:
                json.dump(oracle_as_schedule(os.path.join(args.suite, model_name, solver), nfe), f)
            samples, oracle_samples = settings.sizes(model_name)
            run("bench", "--model", MODELS[model_name], "--schedules", f"{schedule},oracle", "--samplers", solver,
                "--nfe", args.nfe, "--samples", str(samples), "--seeds", str(settings.seeds), "--seed",
                str(settings.seed), "--oracle-evaluations", str(settings.oracle_evaluations), "--oracle-samples",
                str(oracle_samples), "--out", os.path.join(out, "bench"), "--no-progress")
            result = read_result(os.path.join(out, "bench", "results.json"))
            key = result.metrics[0].key
            for (_, n), values in sorted(per_seed(result.rows, key).items(), key=lambda item: item[0][1]):
                listed = next(v for name, v in values.items() if name != "oracle")
                diff, half = paired_difference(listed, values["oracle"])
                print(f"{model_name} {solver} {n} NFE ({key}): the oracle's list minus the oracle again "
                      f"{diff:+.3g} ± {half:.2g}: {words[beyond(diff, half)]}", flush=True)


if __name__ == "__main__":
    main()
