"""How much does the solver stage's GITS-style candidate move with the run's --seed? One cell per call.

The stage (ays_core/refine.py) races a GITS-style DP schedule made from its own teacher noise: 32
samples drawn from the run's --seed. The suite's `gits` peer makes the same DP from 256 draws of a
seed of its own. Where the stage picks its GITS-style list, a paired gap between the two on the
suite's main metric may be the DP's own sampling noise rather than a fault of the choice. This
script makes the stage's list for several optimizer seeds and benches each against the peer's, on
the suite's evaluation seeds and sample count (main metric, paired over the seeds). Nothing here
changes the optimizer.

    .venv/bin/python benchmarks/gits_seed_study.py --model toy --solver euler_ancestral --nfe 10
"""
import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

from suite import FULL, MODELS, SOLVERS  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="toy")
    parser.add_argument("--solver", choices=SOLVERS, default="euler_ancestral")
    parser.add_argument("--nfe", type=int, default=10)
    parser.add_argument("--optimizer-seeds", type=int, default=8, help="optimizer seeds 0.. to try (default 8)")
    parser.add_argument("--eval-seed", type=int, default=FULL.seed, help="the first evaluation seed (the suite's)")
    args = parser.parse_args(argv)
    if not 1 <= args.optimizer_seeds <= 64 or not 2 <= args.nfe <= 100 or not 1 <= args.eval_seed <= 6_999_000:
        parser.error("--optimizer-seeds must be 1 to 64, --nfe 2 to 100 and --eval-seed 1 to 6999000 (apart from "
                     "the optimizer's and the peers' own seeds)")

    import torch

    from ays_core import refine
    from ays_core.bench import data_shape, mean_and_interval
    from ays_core.gits import Gits
    from ays_core.models import load_denoiser
    from ays_core.samplers import initial_noise, run_sampler, steps_for_nfe
    from ays_core.scoring import scorer_for

    os.chdir(REPO)  # the model paths are relative to the repository
    model = load_denoiser(MODELS[args.model])
    shape, sigma_range = data_shape(model), (float(model.sigma_min), float(model.sigma_max))
    steps = steps_for_nfe(args.solver, args.nfe)
    samples = FULL.sizes(args.model)[0]
    lists = {"peer (256 draws)": Gits(model, shape).sigmas(steps)}
    for seed in range(args.optimizer_seeds):
        # the stage's teacher noise for this --seed (1 step: the DP uses the noise, not the teacher's solution)
        teacher = refine.make_teacher(model, refine.TEACHER_SAMPLES, seed, sigma_range, 1, shape, "cpu")
        starts = [(x, cond) for x, _, _, cond in teacher.chunks]
        lists[f"stage, --seed {seed}"] = Gits(model, shape, starts=starts, sigma_range=sigma_range).sigmas(steps)
    scores = {label: [] for label in lists}
    scorer = scorer_for(model, samples, args.eval_seed)  # one held-out reference for every seed, as the bench's
    metric = scorer.metrics[0]
    for eval_seed in range(args.eval_seed, args.eval_seed + FULL.seeds):
        x_start = initial_noise(shape, samples, sigma_range[1], eval_seed)
        for label, sigmas in lists.items():
            result, _ = run_sampler(model, args.solver, torch.as_tensor(sigmas), x_start, eval_seed, sigma_range)
            scores[label].append(scorer.score(result, result)[metric.key])  # the reference only feeds ref_dist
    peer = np.asarray(scores["peer (256 draws)"])
    print(f"{args.model} {args.solver} {args.nfe} NFE: {metric.label} of the GITS-style lists, {FULL.seeds} evaluation "
          f"seeds from {args.eval_seed} x {samples} samples; list minus the peer's, paired 95% CI")
    print(f"| list | {metric.label} | minus the peer's | sigmas |\n|---|---:|---:|---|")
    for label, values in scores.items():
        gap, half = mean_and_interval(np.asarray(values) - peer)
        print(f"| {label} | {np.mean(values):.5g} | {gap:+.4g} ± {half:.2g} | "
              f"{', '.join(f'{s:.3g}' for s in lists[label])} |")


if __name__ == "__main__":
    main()
