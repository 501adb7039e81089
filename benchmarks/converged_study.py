"""Where does the model's converged solution lie, next to the solver stage's schedules? One (model, solver) per run.

The stage (ays_core/refine.py) searches on the data only where the model's converged ODE solution
does not lie far closer to the data than the stage's choice (data_figure.DataCheck.converged_closer).
This script runs `ays optimize` as a user would (seed 0) and prints, per step count, the distances
of the stage's own data check (its 512 noises against its 512 x0 draws: sliced W2 and the square
root of the Frechet distance) for the converged solution (the teacher's 100-step DPM++ 2M from the
same noise), the race winner and the result.

    nice .venv/bin/python benchmarks/converged_study.py --model toy --solver euler --nfe 4,6,8,10
"""
import math
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

from race_study import recorded_run, study_parser  # noqa: E402


def main():
    args = study_parser(__doc__).parse_args()

    from ays_core import refine

    run = recorded_run(args)
    converged = None
    for steps in run.nfes:
        candidates, figure, check, result = run.seen[steps]
        if check is None:
            print(f"{steps} steps: no data check (the x0 are the model's own draws)")
            continue
        if converged is None:
            converged = check.samples(figure.teacher.sigmas, refine.TEACHER_SOLVER)
        rows = {"converged": converged, "race winner": check.samples(candidates[result.start]),
                "result": check.samples(result.sigmas)}
        words = "; ".join(f"{name}: sliced W2 {d[0]:.4g}, sqrt(FD) {math.sqrt(d[1]):.4g}"
                          for name, d in ((name, check.distances(p)) for name, p in rows.items()))
        print(f"{steps} steps ({result.provenance()}; search: {result.search or 'none'}): {words}", flush=True)
    print("result sigmas:", {n: np.round(run.seen[n][3].sigmas[:-1], 4).tolist() for n in run.nfes})


if __name__ == "__main__":
    main()
