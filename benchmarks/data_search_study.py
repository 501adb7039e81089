"""Would a search on the data score itself beat the solver stage's choice? One (model, solver) per run.

The stage (ays_core/refine.py) refines on the teacher's figure and then chooses among its
candidates on the data (ays_core/data_figure.py); this study measured, before the stage searched on
the data itself, what such a search would add, so it runs the stage without it
(`--data-search-passes 0`). On the under-trained photo-patch UNet the oracle,
searching pixel FD directly, finds schedules far better than any candidate (docs/BENCHMARKS.md).
This script runs `ays optimize` as a user would (seed 0), takes each step count's result and the
stage's own data check, and runs coordinate searches (refine.search_on_data: one per `--widths`
set, the stage's fresh check picking among their lists; `--widths stage` runs the stage's own,
refine.data_searches) on the data score instead of the teacher figure, the score's scale fixed by
the stage's pool. It then compares the searched schedule with the stage's result:
- on the data score of a fresh data check (other noise and x0 draws: seed --check-seed), to see
  whether the search over-fits its own 512 samples;
- on the bench's metrics against held-out data (--eval-seeds seeds from --seed), paired.
Nothing here changes the optimizer.

    nice .venv/bin/python benchmarks/data_search_study.py --model patches --solver dpmpp_2m --nfe 6,8,10
"""
import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

from race_study import recorded_run, study_parser  # noqa: E402


def width_sets(text):
    """'1;1,0.5' -> ((1.0,), (1.0, 0.5)); 'stage' -> None (the stage's own searches)."""
    if text == "stage":
        return None
    try:
        sets = tuple(tuple(float(w) for w in part.split(",")) for part in text.split(";"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected fractions like '1;1,0.5', got {text!r}") from None
    if not all(0 < w <= 1 for widths in sets for w in widths):
        raise argparse.ArgumentTypeError(f"every fraction must lie in (0, 1], got {text!r}")
    return sets


def main():
    parser = study_parser(__doc__)
    parser.add_argument("--check-seed", type=int, default=77, help="seed of the fresh data check")
    parser.add_argument("--passes", type=int, default=4, help="most passes of the search (the stage's refinement: 4)")
    parser.add_argument("--pushes", type=int, default=0,
                        help="pushes of a kept move in its direction (the stage's data search: data_figure.SEARCH_PUSHES)")
    parser.add_argument("--widths", type=width_sets, default="1",
                        help="the searches, ';' between them, each the fractions of the pass's width a point tries in "
                             "turn; the stage's fresh check picks among their lists. 'stage': the stage's own searches "
                             "at --passes (refine.data_searches; their pushes are the stage's, not --pushes; the "
                             "stage's default is --passes 2)")
    args = parser.parse_args()

    from ays_core import data_figure, refine
    from ays_core.bench import initial_noise, mean_and_interval, run_sampler
    from ays_core.klub import x0_sampler
    from ays_core.search import data_source

    run = recorded_run(args, ("--data-search-passes", "0"))
    seen, nfes, model, scorer, keys, samples = run.seen, run.nfes, run.model, run.scorer, run.keys, run.samples
    lo, hi = run.sigma_range
    for steps in nfes:
        candidates, figure, check, result = seen[steps]
        if check is None:
            print(f"\n== {steps} steps: no data check (the x0 are the model's own draws)")
            continue
        shape = run.shape
        pool = {**candidates, refine.REFINED_LABEL: result.sigmas}
        judged = check.judge(pool)
        before = check.evaluations
        score = judged.value
        rules = (refine.data_searches(args.passes) if args.widths is None else
                 [refine.SearchRule(args.passes, args.pushes, widths) for widths in args.widths])
        found = refine.search_on_data(result.sigmas, judged, check, lo, rules)
        searched, moves = (result.sigmas, 0) if found is None else (found.sigmas, found.moves)
        cost = check.evaluations - before
        fresh = data_figure.DataCheck(model, args.solver, x0_sampler(data_source(model, None)), data_figure.SAMPLES,
                                      args.check_seed, (lo, hi), shape, "cpu")
        fresh_judged = fresh.judge({"stage": result.sigmas, "searched": searched})
        print(f"\n== {steps} steps: stage result {result.provenance()}; the data search kept {moves} moves "
              f"({cost:,} denoiser evaluations, the stage's fresh check included)")
        print(f"  data score, own check: stage {score(result.sigmas):.4g}, searched {score(searched):.4g}; fresh check "
              f"(seed {args.check_seed}): stage {fresh_judged.scores['stage']:.4g}, searched "
              f"{fresh_judged.scores['searched']:.4g}")
        print(f"  teacher figure: stage {figure.errors(result.sigmas, figure.chunks).mean():.4g}, "
              f"searched {figure.errors(searched, figure.chunks).mean():.4g}")
        values = {name: {k: [] for k in keys} for name in ("stage", "searched")}
        for s in range(args.eval_seeds):
            seed = args.seed + s
            x = initial_noise(shape, samples, hi, seed)
            for name, sigmas in (("stage", result.sigmas), ("searched", searched)):
                out = run_sampler(model, args.solver, sigmas, x, seed, (lo, hi))[0]
                row = scorer.score(out, out)
                for k in keys:
                    values[name][k].append(row[k])
        for k in keys:
            diff = np.array(values["searched"][k]) - np.array(values["stage"][k])
            print(f"  {k}: stage {np.mean(values['stage'][k]):.5g}, searched {np.mean(values['searched'][k]):.5g}; "
                  "searched minus stage {:+.4g} ± {:.2g}".format(*mean_and_interval(diff)))
        print(f"  searched sigmas: {np.array2string(searched[:-1], precision=4)}", flush=True)


if __name__ == "__main__":
    main()
