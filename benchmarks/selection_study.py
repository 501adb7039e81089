"""Why does the solver stage's schedule lose where it loses? One (model, solver) per run.

The solver stage (ays_core/refine.py) chooses a schedule for N steps on the "fit figure": the
mean RMS distance of the judged solver's N-step samples to a 100-step DPM++ 2M teacher from the
same noise, on 32 samples (seed 0). This script rebuilds exactly that stage's candidates (hand-made
ones, KLUB iterates), its race and its refinement (recording every move it keeps), then scores
every schedule of that pool three ways:
- fit: the stage's own figure (32 teacher samples, seed 0), what it optimizes;
- held-out: the same figure on --heldout other teacher samples (seed --seed), never seen by the stage;
- the bench's metrics (the suite's main metric first) on --eval-seeds x --eval-samples samples
  from seeds --seed.. (disjoint from the suite's 1000..), the solver the schedule is for.
It prints Spearman rank correlations (fit vs held-out, each figure vs each metric) over the whole
pool and over its best half by held-out figure (where the stage's choice is made), with the pool
size, and the refinement path: each kept move's figures and metrics as paired differences to the
race winner (mean ± 95% CI over evaluation seeds).

    nice .venv/bin/python benchmarks/selection_study.py --model digits --solver dpmpp_2m --nfe 8,10
"""
import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

MODELS = {"toy": "toy:gmm8x8", "digits": os.path.join(REPO, "ays_core/assets/digits_denoiser.safetensors")}


def recorded_refinement(refine, winner, figure, sigma_min):
    """refine.coordinate_search on the figure, returning every schedule it kept, in order."""
    kept = []
    original = refine.better

    def recording(trial, current, fig):
        accepted = original(trial, current, fig)
        if accepted:
            kept.append(trial.copy())
        return accepted

    refine.better = recording
    try:
        refine.coordinate_search(winner, refine.on_figure(figure), sigma_min)
    finally:
        refine.better = original
    return kept


def paired(values, base):
    from ays_core.bench import mean_and_interval

    return mean_and_interval(np.asarray(values) - np.asarray(base))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="digits")
    parser.add_argument("--solver", default="dpmpp_2m")
    parser.add_argument("--nfe", default="6,8,10")
    parser.add_argument("--heldout", type=int, default=256, help="held-out teacher samples")
    parser.add_argument("--eval-samples", type=int, default=1000)
    parser.add_argument("--eval-seeds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=3000, help="first held-out / evaluation seed")
    args = parser.parse_args()

    import torch
    from scipy.stats import spearmanr

    from ays_core import refine
    from ays_core.bench import data_shape, initial_noise, run_sampler, schedule_sigmas, scorer_for
    from ays_core.models import load_denoiser
    from ays_core.search import optimize
    from ays_core.settings import RunSettings

    torch.set_num_threads(1)
    model = load_denoiser(MODELS[args.model])
    lo, hi = float(model.sigma_min), float(model.sigma_max)
    shape = data_shape(model)
    settings = RunSettings(solver=args.solver, early_stop=False, refine=0)
    history = optimize(model, settings, progress=False).history
    judge = refine.judged_solver(args.solver)
    fit = refine.Figure(model, judge, refine.make_teacher(model, settings.teacher_samples, settings.seed, (lo, hi),
                                                          settings.reference_steps, shape, "cpu"))
    held = refine.Figure(model, judge, refine.make_teacher(model, args.heldout, args.seed, (lo, hi),
                                                           settings.reference_steps, shape, "cpu"))
    scorer = scorer_for(model, args.eval_samples, args.seed)
    keys = [m.key for m in scorer.metrics if m.key != "ref_dist"]
    evals = []
    for s in range(args.eval_seeds):
        seed = args.seed + 100 + s
        x = initial_noise(shape, args.eval_samples, hi, seed)
        reference, _ = run_sampler(model, args.solver, schedule_sigmas("karras", 100, lo, hi), x, seed, (lo, hi))
        evals.append((x, seed, reference))

    def spread(sigmas):
        """Total variance of the judged solver's held-out samples over the teacher's (1 = no loss of spread)."""
        outs, targets = [], []
        for x, target, seed, cond in held.teacher.chunks:
            outs.append(run_sampler(model, judge, sigmas, x, seed, (lo, hi), cond)[0])
            targets.append(target)
        out, target = torch.cat(outs).double().flatten(1), torch.cat(targets).double().flatten(1)
        return float(out.var(0).sum() / target.var(0).sum())

    def moved(before, after):
        return ",".join(str(i) for i in np.flatnonzero(np.asarray(before) != np.asarray(after)))

    def metrics(sigmas):
        per_seed = [scorer.score(run_sampler(model, args.solver, sigmas, x, seed, (lo, hi))[0], ref)
                    for x, seed, ref in evals]
        return {k: [row[k] for row in per_seed] for k in keys}

    print(f"{args.model} {args.solver} (judged on {judge}); fit {fit.chunks * refine.CHUNK} teacher samples seed "
          f"{settings.seed}, held-out {held.chunks * refine.CHUNK} seed {args.seed}, metrics {args.eval_seeds} x "
          f"{args.eval_samples} samples seeds {args.seed + 100}..", flush=True)
    for steps in map(int, args.nfe.split(",")):
        candidates = {**refine.hand_made(steps, lo, hi), **refine.klub_candidates(history, steps)}
        won = refine.race(candidates, fit)
        path = recorded_refinement(refine, won.sigmas, fit, lo)
        pool = dict(candidates)
        pool.update({f"move {i + 1}": s for i, s in enumerate(path)})
        names = list(pool)
        fit_values = [fit.errors(pool[n], fit.chunks).mean() for n in names]
        held_values = [held.errors(pool[n], held.chunks).mean() for n in names]
        scores = {n: metrics(pool[n]) for n in names}
        finite = [i for i, n in enumerate(names) if all(np.all(np.isfinite(scores[n][k])) for k in keys)
                  and np.isfinite(held_values[i]) and np.isfinite(fit_values[i])]
        order = sorted(finite, key=lambda i: held_values[i])
        subsets = {"all": finite, "best half": order[: max(3, len(order) // 2)]}
        print(f"\n== {steps} steps: race winner {won.name}; refinement kept {len(path)} moves", flush=True)
        for label, rows in subsets.items():
            cells = [f"fit~held {spearmanr([fit_values[i] for i in rows], [held_values[i] for i in rows]).statistic:+.2f}"]
            for fig_name, values in (("fit", fit_values), ("held", held_values)):
                for k in keys:
                    truth = [np.mean(scores[names[i]][k]) for i in rows]
                    cells.append(f"{fig_name}~{k} {spearmanr([values[i] for i in rows], truth).statistic:+.2f}")
            print(f"  Spearman over {label} (n={len(rows)}): " + ", ".join(cells))
        best = {k: names[min(finite, key=lambda i: np.mean(scores[names[i]][k]))] for k in keys}
        print(f"  best by metric: {best}; best by held-out figure: {names[order[0]]}")
        print("  schedule | moved index | fit | held-out | spread | " + " | ".join(f"{k} (minus race winner)" for k in keys))
        base = scores[won.name]
        previous = {f"move {i + 1}": (won.sigmas if i == 0 else path[i - 1]) for i in range(len(path))}
        shown = [won.name] + [n for n in names if n.startswith("move")] + [
            n for n in names if n in refine.hand_made_labels() and n != won.name]
        for n in shown:
            i = names.index(n)
            diffs = " | ".join("{:+.4g} ± {:.2g} ({:.4g})".format(*paired(scores[n][k], base[k]), np.mean(scores[n][k]))
                               for k in keys)
            where = moved(previous[n], pool[n]) if n in previous else ""
            print(f"  {n} | {where} | {fit_values[i]:.5g} | {held_values[i]:.5g} | {spread(pool[n]):.4f} | {diffs}",
                  flush=True)


if __name__ == "__main__":
    main()
