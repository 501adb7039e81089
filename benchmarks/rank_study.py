"""Which cheap figure ranks schedules the way the bench's sample-quality metrics do?

For each model and solver: a pool of candidate schedules (hand-made ones in both step
conventions, the stock SD1.5 AYS list, and log-sigma jitters of them) at NFE steps. Each
candidate gets
- selection figures on optimization noise (seed 0, --fit-samples): "teacher" = mean RMS distance
  of the N-step samples to a many-step run of the same solver from the same noise and Brownian
  path; "knn" = the k-NN estimate of KL(samples || x0 draws) (the optimizer's figure until v2);
- the bench's metrics on evaluation noise (seeds 1000.., --eval-samples x --seeds), never seen by
  the figures.
Prints Spearman rank correlations of each figure with each metric, per model, solver and NFE.

Command: nice .venv/bin/python benchmarks/rank_study.py [--models ...] [--solvers ...]
"""
import argparse

import numpy as np
import torch
from scipy.stats import spearmanr

from ays_core.bench import initial_noise, reference_distance, run_sampler, schedule_sigmas, scorer_for, data_shape
from ays_core.models import load_denoiser
from ays_core.search import knn_divergence

HAND_MADE = ("karras", "exponential", "kl_optimal", "beta", "sd15")


def candidate_pool(steps, lo, hi, jitters, seed):
    pool = {}
    for name in HAND_MADE:
        for suffix in ("", ":ays"):
            pool[name + suffix] = schedule_sigmas(name + suffix, steps, lo, hi)
    rng = np.random.default_rng(seed)
    bases = list(pool.items())
    for j in range(jitters):
        name, sigmas = bases[j % len(bases)]
        log_s = np.log(sigmas[:-1])
        inner = log_s[1:-1] + rng.normal(0, 0.25, len(log_s) - 2) * np.diff(log_s)[1:].mean()
        jittered = np.sort(np.clip(inner, np.log(lo) + 1e-3, np.log(hi) - 1e-3))[::-1]
        pool[f"{name}~{j}"] = np.concatenate([[sigmas[0]], np.exp(jittered), sigmas[-2:]])
    return pool


def score(scorer, samples, reference):
    """The scorer's metrics; none (so the candidate is left out) when the solver diverged."""
    if not torch.isfinite(samples).all():
        return {}
    return scorer.score(samples, reference)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="toy:gmm8x8,ays_core/assets/digits_denoiser.safetensors")
    parser.add_argument("--solvers", default="euler,euler_ancestral,dpmpp_2m,dpmpp_2m_sde")
    parser.add_argument("--nfe", default="6,10")
    parser.add_argument("--fit-samples", type=int, default=256)
    parser.add_argument("--eval-samples", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--jitters", type=int, default=10)
    parser.add_argument("--teacher-steps", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for spec in args.models.split(","):
        model = load_denoiser(spec)
        lo, hi = float(model.sigma_min), float(model.sigma_max)
        shape = data_shape(model)
        scorer = scorer_for(model, args.eval_samples, 1000)
        x_fit = initial_noise(shape, args.fit_samples, hi, 0)
        data = model.sample_data(args.fit_samples, generator=torch.Generator().manual_seed(1))
        for solver in args.solvers.split(","):
            teacher_sigmas = schedule_sigmas("karras", args.teacher_steps, lo, hi)
            teacher, _ = run_sampler(model, solver, teacher_sigmas, x_fit, 0, (lo, hi))
            evals = []
            for s in range(args.seeds):
                x_eval = initial_noise(shape, args.eval_samples, hi, 1000 + s)
                ref, _ = run_sampler(model, solver, teacher_sigmas, x_eval, 1000 + s, (lo, hi))
                evals.append((x_eval, 1000 + s, ref))
            for nfe in map(int, args.nfe.split(",")):
                pool = candidate_pool(nfe, lo, hi, args.jitters, nfe)
                figures = {"teacher": [], "knn": []}
                metrics = {}
                for name, sigmas in pool.items():
                    out, _ = run_sampler(model, solver, sigmas, x_fit, 0, (lo, hi))
                    figures["teacher"].append(reference_distance(out, teacher))
                    figures["knn"].append(knn_divergence(out, data))
                    scores = [score(scorer, run_sampler(model, solver, sigmas, x, seed, (lo, hi))[0], ref)
                              for x, seed, ref in evals]
                    for key in (m.key for m in scorer.metrics):
                        metrics.setdefault(key, []).append(float(np.mean([sc.get(key, np.nan) for sc in scores])))
                keep = [i for i in range(len(pool)) if all(np.isfinite(v[i]) for v in (*figures.values(), *metrics.values()))]
                names = [list(pool)[i] for i in keep]
                figures = {k: [v[i] for i in keep] for k, v in figures.items()}
                metrics = {k: [v[i] for i in keep] for k, v in metrics.items()}
                cells = []
                for fig, values in figures.items():
                    for key, truth in metrics.items():
                        if key == "ref_dist":
                            continue
                        rho = spearmanr(values, truth).statistic
                        cells.append(f"{fig}~{key} {rho:+.2f}")
                best = {key: names[int(np.argmin(v))] for key, v in metrics.items() if key != "ref_dist"}
                pick = {fig: names[int(np.argmin(v))] for fig, v in figures.items()}
                print(f"{spec.split('/')[-1]} {solver} nfe={nfe} n={len(names)}/{len(pool)}: " + ", ".join(cells)
                      + f" | best by metric {best} | picked {pick}", flush=True)


if __name__ == "__main__":
    main()
