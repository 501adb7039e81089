"""Paper mode vs fast mode of the schedule search: denoiser evaluations and wall time to the same KLUB.

Both modes run in this process on the same toy, seed and sample count, without early stopping
(the KLUB stage the paper converges). Every iterate of both runs is scored by one referee KLUB:
the closed form on toy:gaussian, a 65536-sample importance-sampled estimate (its own seed) on
toy:gmm8x8. The target is 1% above the worse of the two final referee values (a KLUB both modes
reach); the table gives the KLUB denoiser evaluations each mode had spent when its iterate first
reached the target, plus whole-run figures.

A second table checks early stopping: the validation figure (RMS distance of 10-step samples to a
100-step run of the same solver from the same noise) of the early-stopped schedule (fast mode,
default settings) next to karras and exponential in both step conventions, on noise held out
from the one early stopping looked at.

    .venv/bin/python benchmarks/bench_search.py [--samples 4096] [--steps 10] [--refine 0] [--models toy:gaussian toy:gmm8x8]
"""
import argparse
import time

import numpy as np

from ays_core.klub import ImportanceKLUB
from ays_core.models import load_denoiser
from ays_core.baselines import exponential, karras
from ays_core.metrics import reference_distance
from ays_core.samplers import run_sampler
from ays_core.search import optimize
from ays_core.validation import ReferenceValidation
from ays_core.settings import RunSettings

REFEREE_SAMPLES, REFEREE_SEED = 65536, 12345
HELD_OUT_SEED = 1000


def referee(model):
    """Schedule (descending) -> KLUB used to judge both modes."""
    if hasattr(model, "exact_klub"):
        return model.exact_klub
    estimator = ImportanceKLUB(model, model.sample_data, REFEREE_SAMPLES, REFEREE_SEED, 8192, "cpu", 1 << 17)
    return lambda sigmas: float(estimator(np.sort(sigmas))[0][0])


def run_mode(model, mode, args):
    start = time.perf_counter()
    settings = RunSettings(steps=args.steps, mode=mode, samples=args.samples, seed=args.seed, early_stop=False,
                           refine=args.refine)
    result = optimize(model, settings, progress=False)
    return result, time.perf_counter() - start


def evaluations_to_reach(history, score, target, steps):
    """KLUB denoiser evaluations spent when an iterate at `steps` steps first scored <= target."""
    for entry in history:
        if entry["steps"] == steps and score(entry["sigmas"]) <= target:
            return entry["evaluations"]["klub"]
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["toy:gaussian", "toy:gmm8x8"])
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--refine", type=int, default=0, help="also subdivide (the target is then at the final step count)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--early-stopping", action="store_true", help="also print the early-stopping table")
    parser.add_argument("--solvers", nargs="+", default=["euler", "dpmpp_2m"], help="solvers of the early-stopping table")
    parser.add_argument("--skip-modes", action="store_true", help="only the early-stopping table")
    args = parser.parse_args()
    if not args.skip_modes:
        modes_table(args)
    if args.early_stopping:
        early_stopping_table(args.models, args.solvers, args.samples, args.steps)


def modes_table(args):
    final_steps = args.steps * 2 ** args.refine
    print(f"steps {args.steps} -> {final_steps}, samples {args.samples}, seed {args.seed}, no early stopping\n")
    print("| model | mode | KLUB evals to target | wall s (whole run) | evals (whole run) | iterations | final KLUB |"
          " ratio paper/fast (evals to target) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for spec in args.models:
        model = load_denoiser(spec)
        score = referee(model)
        runs = {mode: run_mode(model, mode, args) for mode in ("paper", "fast")}
        finals = {mode: score(result.sigmas) for mode, (result, _) in runs.items()}
        target = 1.01 * max(finals.values())
        reached = {mode: evaluations_to_reach(result.history, score, target, final_steps)
                   for mode, (result, _) in runs.items()}
        for mode, (result, seconds) in runs.items():
            ratio = ""
            if mode == "fast" and reached["fast"] and reached["paper"]:
                ratio = f"{reached['paper'] / reached['fast']:.0f}x"
            shown = "not reached" if reached[mode] is None else f"{reached[mode]:,}"
            print(f"| {spec} | {mode} | {shown} | {seconds:.1f} | {result.evaluations['klub']:,} | "
                  f"{len(result.history)} | {finals[mode]:.4f} | {ratio} |")
    print("\ntarget = 1.01 x the worse final KLUB of the two modes; KLUB judged by the closed form (toy:gaussian) "
          f"or a {REFEREE_SAMPLES}-sample importance-sampled estimate (other models)")


def early_stopping_table(models, solvers, samples, steps):
    print(f"\n| model | solver | AYS (early-stopped at iteration) | karras | karras (N+1, last -> 0) | exponential |"
          " exponential (N+1, last -> 0) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for spec in models:
        model = load_denoiser(spec)
        lo, hi = model.sigma_min, model.sigma_max
        for solver in solvers:
            result = optimize(model, RunSettings(steps=steps, solver=solver, samples=samples, refine=0),
                              progress=False)
            held_out = ReferenceValidation(model, solver, steps, 1024, HELD_OUT_SEED, lo, hi, 100,
                                           model.data_shape, "cpu")
            cells = [f"{held_out(result.sigmas[::-1].copy()):.4f} (it. {result.best_iteration})"]
            for baseline in (karras, exponential):
                samples_kd, _ = run_sampler(model, solver, baseline(steps, lo, hi), held_out.x_start,
                                            HELD_OUT_SEED, held_out.range)
                cells.append(f"{reference_distance(samples_kd, held_out.reference):.4f}")
                cells.append(f"{held_out(baseline(steps + 1, lo, hi)[:-1][::-1].copy()):.4f}")
            print(f"| {spec} | {solver} | " + " | ".join(cells) + " |")
    print("\nRMS distance to a 100-step karras run of the same solver from the same noise, 1024 held-out samples; lower is better")


if __name__ == "__main__":
    main()
