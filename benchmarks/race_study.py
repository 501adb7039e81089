"""Which figure should pick the solver stage's schedule? One (model, solver) per run.

The solver stage (ays_core/refine.py) races its candidates (hand-made schedules, the GITS-style
one, KLUB iterates) on the "teacher figure": the judged solver's RMS error against the model's own
converged ODE solution. Where the model misses its data (the under-trained photo-patch UNet), a
schedule can sample closer to the data than the converged model does, which that figure cannot
see. This script runs `ays optimize` as a user would (default settings, seed 0), records every
step count's candidates exactly as the stage raced them, and scores each candidate:
- teacher: the stage's figure on its own 32 teacher samples;
- data: what `data_figure.DataCheck` measures (the solver's own samples from the run's fixed 512
  noises against 512 x0 draws): sliced W2, the Frechet distance (on at most 128 fixed directions)
  and the score the stage combines them into (here relative to the best of the whole pool);
- the bench's metrics on --eval-seeds x --eval-samples samples from seeds --seed.. (disjoint from
  the suite's 1000.. and the optimizer's 0), against held-out data.
It prints Spearman rank correlations of each figure with each metric over the pool, and the
metrics of the schedule each figure would pick, paired against the stage's actual result.

    nice .venv/bin/python benchmarks/race_study.py --model patches --solver dpmpp_2m --nfe 6,8,10
"""
import argparse
import os
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

MODELS = {"toy": "toy:gmm8x8", "digits": os.path.join(REPO, "ays_core/assets/digits_denoiser.safetensors"),
          "patches": os.path.join(REPO, "ays_core/assets/patches_unet.safetensors")}


def recorded_stage(refine, argv):
    """Run `ays optimize argv`, recording (candidates, figure, data check, result) per step count."""
    from ays_core.cli import main as ays

    seen = {}
    original = refine.tune_steps

    def recording(figure, steps, candidates, sigma_min, data_check=None, *rest):
        result = original(figure, steps, candidates, sigma_min, data_check, *rest)
        seen[steps] = (dict(candidates), figure, data_check, result)
        return result

    refine.tune_steps = recording
    try:
        if ays(argv):
            sys.exit("ays optimize failed")
    finally:
        refine.tune_steps = original
    return seen


def study_parser(description):
    """The options both studies share."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="patches")
    parser.add_argument("--solver", default="dpmpp_2m")
    parser.add_argument("--nfe", default="6,8,10")
    parser.add_argument("--eval-samples", type=int, default=None, help="default: 256 for patches, else 1000")
    parser.add_argument("--eval-seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=3100, help="first evaluation seed")
    return parser


def recorded_run(args, options=()):
    """`ays optimize` for the study's model and solver (seed 0, more `options`), with what the
    stage did per step count, the model, and the bench's scorer: a SimpleNamespace."""
    import types

    import torch

    from ays_core import refine
    from ays_core.bench import scorer_for
    from ays_core.models import load_denoiser

    torch.set_num_threads(2)
    nfes = [int(n) for n in args.nfe.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        seen = recorded_stage(refine, ["optimize", "--model", MODELS[args.model], "--solver", args.solver,
                                       "--steps", str(max(nfes)), "--seed", "0", "--no-progress",
                                       "--out", os.path.join(folder, "AYS.json"), *options])
    model = load_denoiser(MODELS[args.model])
    samples = args.eval_samples or (256 if args.model == "patches" else 1000)
    scorer = scorer_for(model, samples, args.seed)
    return types.SimpleNamespace(
        seen=seen, nfes=nfes, model=model, sigma_range=(float(model.sigma_min), float(model.sigma_max)),
        samples=samples, scorer=scorer, keys=[m.key for m in scorer.metrics if m.key != "ref_dist"],
        shape=tuple(next(iter(seen.values()))[1].teacher.chunks[0][0].shape[1:]))


def main():
    args = study_parser(__doc__).parse_args()

    from scipy.stats import spearmanr

    from ays_core.bench import initial_noise, mean_and_interval, run_sampler, schedule_sigmas

    run = recorded_run(args)
    seen, nfes, model, scorer, keys, shape, samples = (run.seen, run.nfes, run.model, run.scorer, run.keys, run.shape,
                                                       run.samples)
    lo, hi = run.sigma_range
    evals = []
    for s in range(args.eval_seeds):
        seed = args.seed + s
        x = initial_noise(shape, samples, hi, seed)
        reference, _ = run_sampler(model, args.solver, schedule_sigmas("karras", 100, lo, hi), x, seed, (lo, hi))
        evals.append((x, seed, reference))

    def metrics(sigmas):
        rows = [scorer.score(run_sampler(model, args.solver, sigmas, x, seed, (lo, hi))[0], ref) for x, seed, ref in evals]
        return {k: np.array([row[k] for row in rows]) for k in keys}

    print(f"{args.model} {args.solver}: metrics on {args.eval_seeds} x {samples} samples, seeds {args.seed}..", flush=True)
    for steps in nfes:
        if steps not in seen:
            print(f"\n== {steps} steps: not tuned by the run (step counts {sorted(seen)})")
            continue
        candidates, figure, check, result = seen[steps]
        pool = dict(candidates)
        if not any(np.array_equal(result.sigmas, sigmas) for sigmas in candidates.values()):
            pool["stage result"] = result.sigmas  # the refined schedule (else it is one of the candidates)
        names = list(pool)
        if check is None:
            print(f"\n== {steps} steps: the run had no data check (its x0 are the model's own draws)")
            continue
        judged = check.judge(pool)
        figures = {"teacher": [float(figure.errors(pool[n], figure.chunks).mean()) for n in names],
                   "data sliced W2": [judged.distances.get(n, (np.inf, np.inf))[0] for n in names],
                   "data FD": [judged.distances.get(n, (np.inf, np.inf))[1] for n in names],
                   "data score": [judged.scores[n] for n in names]}
        scores = {n: metrics(pool[n]) for n in names}
        ok = [i for i, n in enumerate(names) if all(np.all(np.isfinite(scores[n][k])) for k in keys)]
        ours = next((n for n in names if np.array_equal(pool[n], result.sigmas)), "stage result")
        print(f"\n== {steps} steps: {len(candidates)} candidates; the stage's result: {result.provenance()}", flush=True)
        for label, values in figures.items():
            cells = []
            for k in keys:
                rho = spearmanr([values[i] for i in ok], [scores[names[i]][k].mean() for i in ok]).statistic
                cells.append(f"{k} {rho:+.2f}")
            pick = names[min(ok, key=lambda i: values[i])]
            diffs = ", ".join("{} {:+.4g} ± {:.2g}".format(k, *mean_and_interval(scores[pick][k] - scores[ours][k]))
                              for k in keys)
            print(f"  {label:15s} Spearman with {', '.join(cells)} (n={len(ok)}); picks {pick}: minus the stage's ({ours}) {diffs}")
        best = {k: names[min(ok, key=lambda i: scores[names[i]][k].mean())] for k in keys}
        print(f"  best on the metrics: {best}")
        print("  candidate | " + " | ".join(figures) + " | " + " | ".join(keys))
        for i, n in enumerate(names):
            print(f"  {n} | " + " | ".join(f"{values[i]:.5g}" for values in figures.values()) + " | "
                  + " | ".join(f"{scores[n][k].mean():.5g}" for k in keys), flush=True)


if __name__ == "__main__":
    main()
