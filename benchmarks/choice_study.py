"""How many samples does the choice on the data need for a stochastic solver? One (model, solver) per run.

The solver stage (ays_core/refine.py) races a stochastic solver's candidates on its ODE
counterpart's error; where the model is accurate it then takes the candidate whose own samples lie
closest to the data on the wide check (data_figure.WIDE_SAMPLES noises against as many x0 draws).
This script runs `ays optimize` as a user would (seed 0), records every step count's candidates
and result, and judges that pool on data checks of other seeds (--check-seeds of them, from 1) at
each --samples size: which schedule each check puts closest, and how much worse that pick is than
the pool's best on held-out data (the bench's main metric on --eval-seeds x --eval-samples samples
from --seed, disjoint from the suite's seeds). A size whose picks change from seed to seed, or
cost on held-out data, is too small for the choice. The pool is the raced candidates and the
stage's result (the refined schedule only where the stage kept it). Nothing here changes the
optimizer.

    nice .venv/bin/python benchmarks/choice_study.py --model toy --solver dpmpp_2m_sde --nfe 4,6,8,10
"""
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

from race_study import recorded_run, study_parser  # noqa: E402


def main():
    parser = study_parser(__doc__)
    parser.add_argument("--samples", default="512,2048", help="data check sizes to compare")
    parser.add_argument("--check-seeds", type=int, default=6)
    args = parser.parse_args()

    from ays_core.bench import initial_noise, run_sampler

    run = recorded_run(args)
    model, key = run.model, run.keys[0]
    lo, hi = run.sigma_range
    noises = [(initial_noise(run.shape, run.samples, hi, args.seed + s), args.seed + s) for s in range(args.eval_seeds)]

    def held_out(sigmas):
        return float(np.mean([run.scorer.score(samples, samples)[key] for samples in
                              (run_sampler(model, args.solver, sigmas, x, seed, (lo, hi))[0] for x, seed in noises)]))
    print(f"{args.model} {args.solver}: held-out {key} on {args.eval_seeds} x {run.samples} samples from seed {args.seed}",
          flush=True)
    for steps in run.nfes:
        if steps not in run.seen:
            print(f"\n== {steps} steps: not tuned by the run (step counts {sorted(run.seen)})")
            continue
        candidates, _, check, result = run.seen[steps]
        if check is None:
            print(f"\n== {steps} steps: no data check (the x0 are the model's own draws)")
            continue
        pool = dict(candidates)
        if not any(np.array_equal(result.sigmas, sigmas) for sigmas in pool.values()):
            pool["stage result"] = result.sigmas
        truth = {name: held_out(sigmas) for name, sigmas in pool.items()}
        best = min(truth, key=truth.get)
        top = ", ".join(f"{name} {truth[name]:.4g}" for name in sorted(truth, key=truth.get)[:4])
        print(f"\n== {steps} steps ({result.provenance()}): best on held-out data: {top}", flush=True)
        for size in (int(n) for n in args.samples.split(",")):
            picks = []
            for seed in range(1, args.check_seeds + 1):
                picks.append(check.another(seed, size).judge(pool).best)
            regret = np.mean([truth[pick] - truth[best] for pick in picks])
            print(f"  {size} samples: {len(set(picks))} different picks over {len(picks)} seeds "
                  f"({', '.join(picks)}); held-out regret {regret:.4g}", flush=True)


if __name__ == "__main__":
    main()
