"""Does the solver stage's refinement stop short on its own figure? One suite run per call.

The refinement (ays_core/refine.py, step 2) moves the race winner's sigmas while the teacher's
figure (the solver's RMS distance to the model's converged ODE solution from the same noise) falls.
The suite's oracle searches the bench's main metric instead. Where the oracle's list also has the
lower teacher figure, the refinement stopped short of where its own figure leads (its search, not
its figure, is what to change); where the oracle's figure is higher, the two criteria disagree.
This script reads a suite run's AYS lists (AYS.json, one per tuned step count) and oracle lists
(bench/results.json) and prints both figures: on the stage's own teacher (32 samples, seed 0) and on
a larger one of another seed. Deterministic solvers only (a stochastic solver is raced on its ODE
counterpart's figure, and its choice is made on the data). Nothing here changes the optimizer.

    .venv/bin/python benchmarks/refine_study.py out/suite --model toy --solver euler
"""
import argparse
import json
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

from suite import MODELS  # noqa: E402

TEACHERS = ((32, 0), (256, 5))  # (samples, seed): the stage's own teacher, then a larger fresh one


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a suite output folder (out/suite)")
    parser.add_argument("--model", choices=sorted(MODELS), default="toy")
    parser.add_argument("--solver", choices=("euler", "dpmpp_2m"), default="euler")
    parser.add_argument("--reference-steps", type=int, default=100, help="the teacher's steps (the optimizer's default)")
    args = parser.parse_args(argv)

    from ays_core import refine
    from ays_core.bench import data_shape
    from ays_core.models import load_denoiser

    folder = os.path.join(args.run, args.model, args.solver)
    with open(os.path.join(folder, "AYS.json"), encoding="utf-8") as handle:
        ays = {int(steps): np.append(sigmas, 0.0) for steps, sigmas in json.load(handle)["step_schedules"].items()}
    with open(os.path.join(folder, "bench", "results.json"), encoding="utf-8") as handle:
        oracle = {int(key.split("@")[1]): np.asarray(sigmas) for key, sigmas in json.load(handle)["config"]["oracle"].items()
                  if key.startswith(args.solver + "@")}
    model = load_denoiser(MODELS[args.model])
    sigma_range = (float(model.sigma_min), float(model.sigma_max))
    print(f"{args.model} {args.solver}: teacher figure (RMS distance to the {args.reference_steps}-step solution), "
          "AYS's list against the oracle's")
    for samples, seed in TEACHERS:
        teacher = refine.make_teacher(model, samples, seed, sigma_range, args.reference_steps, data_shape(model), "cpu")
        figure = refine.Figure(model, args.solver, teacher)
        for steps in sorted(set(ays) & set(oracle)):
            mine, theirs = (float(figure.errors(s, figure.chunks).mean()) for s in (ays[steps], oracle[steps]))
            print(f"  teacher {samples} samples, seed {seed}, {steps} steps: AYS {mine:.5g}, oracle {theirs:.5g} "
                  f"(oracle / AYS {theirs / mine:.3f})", flush=True)


if __name__ == "__main__":
    main()
