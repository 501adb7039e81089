"""How close a schedule's samples lie to the model's data, for the solver stage (ays_core/refine.py).

The stage races schedules on the solver's error against the model's converged ODE solution. Where
the model itself misses its data (an under-trained checkpoint), a schedule that misses that
solution can sample closer to the data, and the teacher's figure cannot see it: on the
photo-patch UNet the race's choice lost on pixel FD to karras:ays by 5 and to a KLUB iterate by
7, which these data figures ranked first (docs/BENCHMARKS.md, benchmarks/race_study.py).

`DataCheck` samples a schedule with the solver from fixed seeded noise and compares the samples
with as many fixed x0 draws in two ways that rank schedules differently where the model is poor:
- sliced W2 (the shape of one-dimensional marginals; on the UNet it ranked like pixel sliced W2,
  Spearman +0.99 to +1.00, and like pixel FD only +0.08 to +0.41);
- the Frechet distance (means and covariances: structure across coordinates; it ranked like
  pixel FD, +0.98 to +1.00), on at most FRECHET_DIMS fixed random directions so that its cost
  stays bounded for latents (on the UNet the ranking of 10 schedules was the same as in all 768).
A schedule's score is the sum of both, each over the best of the schedules judged together
(sliced W2 / best + sqrt(FD) / best sqrt(FD) - 2, so 0 is "best on both"): a schedule far behind
on either distance cannot win on the other alone.

With SAMPLES samples the figure is noisy next to the teacher's paired figure (on the exact toy
denoiser it picked schedules worse on held-out data than the race's). So a schedule replaces the
race's choice only when it is clearly closer: in at least CONFIDENCE of RESAMPLES paired bootstrap
resamples (the same noise rows for both schedules, data rows drawn again). Samples are kept only
as their projections (256 + at most 128 numbers per sample), so image latents stay small.

A schedule searched on this figure (refine.tune_steps) is chosen on the same samples that judge
it, so the fresh check (`confirm`: other noise and other x0 draws) chooses among the searches' lists
and confirms the pick against the schedule they started from.

A stochastic solver's Brownian paths add their own noise to its samples: on the exact toy, 512 of
them put different schedules closest from one check seed to the next. Where its choice rests on the
data alone (refine._choose_on_data), the wide check (`judge_widely`: WIDE_SAMPLES other noises
against as many other x0 draws) judges every candidate.
"""
import math

import numpy as np

SAMPLES = 512          # fresh samples per schedule (and x0 draws); measured when the check was sliced W2 of
                       # the refinement alone: 256 misjudged toy euler_ancestral at 4 steps in 2 of 8 seeds,
                       # 512 and 1024 in none (docs/BENCHMARKS.md)
WIDE_SAMPLES = 2048    # samples (and x0 draws) of the check that chooses a stochastic solver's schedule among every
                       # candidate: on the exact toy, over 6 check seeds, 512 put different schedules closest in 5 of
                       # 8 cells, 2048 in 3, with a quarter of the held-out regret (benchmarks/choice_study.py)
FRECHET_DIMS = 128     # the Frechet distance is computed on this many fixed random directions, at most
RESAMPLES = 64         # bootstrap resamples of the clear-preference test
CONFIDENCE = 0.95      # share of resamples in which a schedule must be closer to replace the race's choice
SEARCH_PUSHES = 3      # the search on the data repeats a kept move in its direction up to this many more times:
                       # on the photo-patch UNet its moves kept one direction pass after pass, and 2 passes with
                       # pushes beat 4 without at 6 NFE (pixel FD 151 against 218) and about matched them at 10
                       # (151 against 142; docs/BENCHMARKS.md)
CONVERGED_MARGIN = 0.5  # no search where the choice's score beside the converged solution is this high (25%
                       # farther on each distance): on the exact toy the choice was 2-6x farther and the search
                       # lost NLL; on the photo-patch UNet it was about as far (docs/BENCHMARKS.md)


def frechet_directions(dims, seed=0):
    """None when `dims` is small enough for the Frechet distance itself, else a fixed orthonormal
    dims x FRECHET_DIMS basis to project on."""
    if dims <= FRECHET_DIMS:
        return None
    basis, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dims, FRECHET_DIMS)))
    return basis


class DataCheck:
    """How far `solver`'s samples of a schedule lie from the model's data: its samples from fresh
    noise (seeded, with a Brownian path for stochastic solvers) against as many x0 draws, both
    fixed for the run so that schedules are compared on the same noise and data.
    x0_draw: f(n, generator) -> x0 or (x0, cond); the samples get the conditioning of the draws."""

    def __init__(self, denoiser, solver, x0_draw, count, seed, sigma_range, shape, device, bar=None):
        import torch

        from .metrics import sliced_directions
        from .samplers import initial_noise

        draw = x0_draw(count, torch.Generator().manual_seed(seed))
        data, cond = draw if isinstance(draw, (tuple, list)) else (draw, None)
        data = data.double().flatten(1).cpu().numpy()
        self._source = x0_draw, shape, device  # for another check like this one
        self.fresh = None  # the confirming check, made when first needed
        self.wide = None   # the stochastic solver's choosing check, made when first needed
        self.directions = sliced_directions(data.shape[1]), frechet_directions(data.shape[1])
        self.data = self.project(data)
        self.all_data = self.references()
        self.cond = None if not cond else {k: v.to(device) for k, v in cond.items()}
        self.noise = initial_noise(shape, len(data), sigma_range[1], seed * 1009 + 1008).to(device)
        self.denoiser, self.solver, self.seed, self.sigma_range = denoiser, solver, seed, sigma_range
        self._evaluations = 0
        self.bar = bar  # a tqdm bar counting denoiser evaluations, or None
        self._projected = {}

    def another(self, seed, count):
        """A check like this one (model, solver, x0 source, sigma range) on other noise and x0 draws."""
        x0_draw, shape, device = self._source
        return DataCheck(self.denoiser, self.solver, x0_draw, count, seed, self.sigma_range, shape, device, self.bar)

    @property
    def evaluations(self):
        """Denoiser evaluations of this check and of its confirming and choosing checks."""
        return self._evaluations + sum(check.evaluations for check in (self.fresh, self.wide) if check is not None)

    @property
    def stochastic(self):
        from .samplers import get_sampler

        return get_sampler(self.solver).stochastic

    def project(self, matrix):
        """(projections for sliced W2, coordinates for the Frechet distance) of rows of samples."""
        sliced, frechet = self.directions
        return matrix @ sliced, matrix if frechet is None else matrix @ frechet

    def samples(self, sigmas, solver=None):
        """The samples of `sigmas` by the check's solver (or `solver`), projected (cached); None
        where not finite."""
        from .samplers import run_sampler

        solver = solver or self.solver
        key = (np.asarray(sigmas, dtype=np.float64).tobytes(), solver)
        if key not in self._projected:
            out, calls = run_sampler(self.denoiser, solver, sigmas, self.noise, self.seed, self.sigma_range, self.cond)
            self._evaluations += calls * len(self.noise)
            if self.bar is not None:
                self.bar.update(calls * len(self.noise))
            out = out.double().flatten(1).cpu().numpy()
            self._projected[key] = self.project(out) if np.all(np.isfinite(out)) else None
        return self._projected[key]

    def references(self, rows=None):
        """What `distances` compares with: the x0 draws (the rows `rows` of them)."""
        from .metrics import FrechetReference, SlicedReference

        sliced, frechet = self.data if rows is None else (self.data[0][rows], self.data[1][rows])
        return SlicedReference(sliced, projected=True), FrechetReference(frechet)

    def distances(self, projected, references=None, rows=None):
        """(sliced W2, Frechet distance) of projected samples (rows of them) to the x0 draws
        (default: all of them)."""
        sliced, frechet = references or self.all_data
        mine = projected if rows is None else (projected[0][rows], projected[1][rows])
        return sliced.distance(mine[0]), frechet.distance(mine[1])

    def judge(self, pool):
        """A Judgement of the schedules in `pool` (name -> sampling sigmas)."""
        return Judgement(self, {name: self.samples(sigmas) for name, sigmas in pool.items()})

    def converged_closer(self, sigmas, reference):
        """Whether the model's converged solution from the same noise (reference: (solver,
        sampling sigmas) of the teacher's many-step runs, or None) lies far closer to the data than
        the samples of `sigmas`: their score beside it at least CONVERGED_MARGIN."""
        if reference is None or reference[1] is None:
            return False
        solver, reference_sigmas = reference
        judged = Judgement(self, {"converged": self.samples(reference_sigmas, solver), "schedule": self.samples(sigmas)})
        return judged.scores["schedule"] - judged.scores["converged"] >= CONVERGED_MARGIN

    def confirm(self, pool):
        """A Judgement of the schedules in `pool` (name -> sampling sigmas) on a fresh check (other
        noise, other x0 draws: seeded apart from every other stream of the run)."""
        if self.fresh is None:
            self.fresh = self.another(confirmation_seed(self.seed), len(self.noise))
        return self.fresh.judge(pool)

    def judge_widely(self, pool):
        """A Judgement of the schedules in `pool` on the choosing check: WIDE_SAMPLES other noises
        (and Brownian paths) against as many other x0 draws. Its samples are dropped from the
        check's cache (the Judgement keeps them): a pool of that many is large for image latents."""
        if self.wide is None:
            self.wide = self.another(wide_seed(self.seed), WIDE_SAMPLES)
        judged = self.wide.judge(pool)
        self.wide._projected.clear()
        return judged


def confirmation_seed(seed):
    """The fresh check's seed: its noise (seed * 1009 + 1008) and draws then differ from the run's
    own; below 2**32 so that the noise seed derived from it stays a valid torch seed."""
    return (seed * 1009 + 1007) % 2 ** 32


def wide_seed(seed):
    """The choosing check's seed, apart from the run's own and the fresh check's (as confirmation_seed)."""
    return (seed * 1009 + 1006) % 2 ** 32


class Judgement:
    """The data figure of a pool of schedules, each distance relative to the pool's best."""

    def __init__(self, check, projected):
        """projected: {name: projected samples (DataCheck.samples), None where not finite}."""
        self.check, self.projected = check, projected
        self.distances = {name: check.distances(p) for name, p in self.projected.items() if p is not None}
        if self.distances:
            self.scale = (max(min(d[0] for d in self.distances.values()), 1e-300),
                          max(min(math.sqrt(d[1]) for d in self.distances.values()), 1e-300))
        self.scores = {name: self.score(*self.distances[name]) if name in self.distances else math.inf
                       for name in projected}

    def score(self, sliced, frechet):
        return sliced / self.scale[0] + math.sqrt(frechet) / self.scale[1] - 2

    def value(self, sigmas):
        """The score of any schedule on this pool's scale (inf where its samples are not finite)."""
        projected = self.check.samples(sigmas)
        return math.inf if projected is None or not self.distances else self.score(*self.check.distances(projected))

    @property
    def best(self):
        return min(self.scores, key=self.scores.get)

    def clearly_closer(self, name, other):
        """Whether `name`'s samples are closer to the data than `other`'s in at least CONFIDENCE of
        RESAMPLES paired bootstrap resamples (seeded: the same call gives the same answer)."""
        if not math.isfinite(self.scores[name]):
            return False
        if not math.isfinite(self.scores[other]):
            return True
        rng = np.random.default_rng(self.check.seed)
        n, m = len(self.check.noise), len(self.check.data[0])
        closer = 0
        for _ in range(RESAMPLES):
            rows, references = rng.integers(n, size=n), self.check.references(rng.integers(m, size=m))
            mine = self.score(*self.check.distances(self.projected[name], references, rows))
            theirs = self.score(*self.check.distances(self.projected[other], references, rows))
            closer += mine < theirs
        return closer >= CONFIDENCE * RESAMPLES


def evaluations(solver, step_counts, candidates, searches):
    """(fewest, most) denoiser evaluations of the data figure per run (`searches`: the SearchRules of
    the search on the data, refine.data_searches; none when there is no search). Fewest: only the race
    winner is judged (nothing when there is no search), and the converged solution's gate skips the
    search. Most: every candidate and the refined schedule are judged, every trial of every search
    runs, and every search's list and their start are sampled again on the fresh check. A stochastic
    solver's race pick always meets the gate (so it is judged even with no search), and where the
    gate finds the model accurate every candidate and the refined schedule are judged on the wide
    check instead (the most of the two)."""
    from .samplers import get_sampler, sampler_nfe

    trials = sum(rule.most_passes() * rule.most_trials() for rule in searches)  # per free point
    stochastic = get_sampler(solver).stochastic
    fewest = most = 0
    for steps in step_counts:
        nfe = sampler_nfe(solver, steps)
        schedule = SAMPLES * nfe
        fewest += schedule if searches or stochastic else 0
        searched = schedule * (candidates + 1 + trials * (steps - 1) + (len(searches) + 1 if searches else 0))
        most += max(searched, schedule + WIDE_SAMPLES * nfe * (candidates + 1)) if stochastic else searched
    return fewest, most


def gate_evaluations(reference_nfe, solver, passes):
    """Denoiser evaluations of the converged samples the gate compares with (once per run): asked before
    a search on the data, and for a stochastic solver before its choice (refine._choose_on_data)."""
    from .samplers import get_sampler

    return SAMPLES * reference_nfe if passes or get_sampler(solver).stochastic else 0
