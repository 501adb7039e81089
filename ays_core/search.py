"""Schedule search (notes section 3): coordinate search on the KLUB, early stopping on samples,
coarse-to-fine subdivision, resumable state.

One search serves both modes; they differ only in the KLUB estimator behind it:
- "paper": every window evaluation is a fresh importance-sampled Monte Carlo estimate
  (`klub.ImportanceKLUB`), two denoiser calls per sample and candidate, as in the paper.
- "fast": the denoiser runs once along whole noising paths on a log-sigma grid
  (`klub.PathKLUB`); every later KLUB value, for any candidate, iteration and subdivision stage,
  is a quadrature over that table and costs no denoiser call.

Stage 0 optimizes `steps` steps from the EDM (rho = 7) start, or time-uniform for discrete
models, and, with early stopping, once more from each hand-made start (exponential, kl_optimal,
the SD1.5 AYS list); it keeps the iterate of all these descents whose samples (with the solver
the schedule is for) score best on a held-out validation figure (`ReferenceValidation`).
Stages 1..refine insert log-midpoints and optimize only the new points, to convergence.
Everything is deterministic given the seed, so a run resumed from its state file ends exactly
where an uninterrupted run ends.
"""
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .errors import AYSError
from .interp import check_range, resample
from .klub import ImportanceKLUB, PathKLUB

MODES = ("paper", "fast")
STARTS = ("all", "paper")  # stage 0 descends from every start schedule, or from the paper's only
START_BASELINES = ("exponential", "kl_optimal", "sd15")  # descended from after the paper's start
CANDIDATES = 11            # per point and pass, the current value in the middle (paper, appendix B)
START_WIDTH = 0.5          # candidates reach this fraction of the log-gap to each neighbour
MIN_WIDTH = 1 / 64         # a pass that moves nothing halves the width; below this, converged
STATE_FORMAT = "ays-optimize-state-v1"
MAX_STATE_BYTES = 64 << 20
MAX_POINTS = 1001          # a stored schedule holds at most this many sigmas
DIVERGED = 1e300           # validation figure of samples that are not finite
KNN_NEIGHBOURS = 5         # k of the k-NN divergence estimate behind the validation figure
# Default validation samples: a distribution figure needs a thousand samples to rank schedules
# (256 picked by noise on toy:gmm8x8); the pathwise reference figure is far less noisy per sample.
VALIDATION_SAMPLES = {"data": 1024, "reference": 256}


@dataclass
class OptimizeResult:
    """`sigmas`: the stored schedule, sigma_max ... sigma_min, steps * 2**refine + 1 values."""

    sigmas: np.ndarray
    steps: int
    klub: float
    best_iteration: int
    history: list
    evaluations: dict
    settings: dict
    best_start: str = "paper"  # the start schedule whose descent gave the early-stopped iterate


# ---------------------------------------------------------------- the search, one pass at a time

def candidate_log_sigmas(log_s, index, width):
    """CANDIDATES log-sigmas around point `index` of an ascending log schedule, spread over
    `width` of the log-gap to each neighbour; the middle one is the current value."""
    half = CANDIDATES // 2
    offsets = np.arange(-half, half + 1) / half * width
    gap = np.where(offsets < 0, log_s[index] - log_s[index - 1], log_s[index + 1] - log_s[index])
    return log_s[index] + offsets * gap


def coordinate_pass(sigmas, movable, width, estimator):
    """One pass over the movable points of an ascending schedule: each point takes the candidate
    with the lowest KLUB of its window (neighbour, candidate, neighbour). Points of one index
    parity are never adjacent, so each parity is one batched estimate. Returns (sigmas, moved)."""
    log_s = np.log(sigmas)
    moved = False
    for parity in (1, 0):
        points = [i for i in movable if i % 2 == parity]
        if not points:
            continue
        candidates = np.stack([candidate_log_sigmas(log_s, i, width) for i in points])
        windows = np.stack([np.stack([np.full(CANDIDATES, log_s[i - 1]), row, np.full(CANDIDATES, log_s[i + 1])], 1)
                            for i, row in zip(points, candidates)])
        values, _ = estimator(np.exp(windows.reshape(-1, 3)))
        values = values.reshape(len(points), CANDIDATES)
        for i, row, cand in zip(points, values, candidates):
            best = int(np.argmin(row))
            if row[best] < row[CANDIDATES // 2]:  # the current value wins ties: the estimate never rises
                log_s[i] = cand[best]
                moved = True
    result = np.exp(log_s)
    result[0], result[-1] = sigmas[0], sigmas[-1]  # the ends never move; keep them bit-exact
    return result, moved


def subdivide(sigmas):
    """Insert the log-midpoint of every interval; returns (sigmas, indices of the new points)."""
    log_s = np.log(sigmas)
    finer = np.empty(2 * len(log_s) - 1)
    finer[0::2] = log_s
    finer[1::2] = (log_s[:-1] + log_s[1:]) / 2
    result = np.exp(finer)
    result[0::2] = sigmas  # old points unchanged, bit for bit
    return result, list(range(1, len(finer), 2))


def initial_schedule(denoiser, steps, sigma_min, sigma_max):
    """Ascending start: EDM rho = 7 for continuous models, time-uniform for discrete ones."""
    from .baselines import karras, time_uniform

    table = getattr(denoiser, "sigma_table", None)
    if table is None:
        start = karras(steps + 1, sigma_min, sigma_max)
    else:
        start = time_uniform(steps + 1, sigma_min, sigma_max, sigma_table=np.asarray(torch.as_tensor(table).cpu(), dtype=np.float64))
    return _exact_ends(start[:-1][::-1], sigma_min, sigma_max)


def start_schedules(denoiser, steps, sigma_min, sigma_max):
    """{name: ascending schedule} for the stage-0 descents, in order: the paper's start, then
    START_BASELINES (the published SD1.5 AYS list rescaled to the range), all in the
    stored-schedule form (steps + 1 points). Early stopping picks among the iterates of a
    descent, so one descent from a poor start can end worse than a hand-made schedule: on the
    digits model no iterate of the descent from karras reached kl_optimal (docs/BENCHMARKS.md)."""
    from . import resolve
    from .baselines import exponential, kl_optimal

    starts = {"paper": initial_schedule(denoiser, steps, sigma_min, sigma_max)}
    for name, make in (("exponential", exponential), ("kl_optimal", kl_optimal)):
        starts[name] = _exact_ends(make(steps + 1, sigma_min, sigma_max)[:-1][::-1], sigma_min, sigma_max)
    try:
        published = resolve("sd15", version=1).resample(steps + 1, convention="a1111", sigma_min=sigma_min, sigma_max=sigma_max)
        starts["sd15"] = _exact_ends(published[:-1][::-1], sigma_min, sigma_max)
    except AYSError:  # no shipped registry next to the library: the other starts serve
        pass
    return starts


def _exact_ends(ascending, sigma_min, sigma_max):
    start = np.array(ascending, dtype=np.float64)
    start[0], start[-1] = sigma_min, sigma_max  # exact ends (k-diffusion computes in float32)
    return start


# ---------------------------------------------------------------- validation on actual samples

class ReferenceValidation:
    """The early-stopping figure of a schedule, from `samples` samples of `solver` at `steps`
    steps; lower is better. Computed on rank 0 and shared, so every rank takes the same decision.

    With plain x0 data: the k-NN estimate of KL(samples || data) against as many x0 draws (held
    aside from the KLUB's draws by their own seed), for every solver. The KLUB bounds a KL
    divergence; this measures the KL the few-step solver actually reaches. Distances tried
    before it picked worse schedules on toy:gmm8x8 (docs/BENCHMARKS.md): the pathwise distance to
    an SDE reference measures strong error, and a sliced W2 of a thousand samples barely sees
    samples stranded between modes, preferring schedules with ten times the NLL.
    Without (x0 that carry per-sample conditioning: latent models): mean RMS distance to a
    `reference_steps`-step run of the same solver from the same noise and Brownian path."""

    def __init__(self, denoiser, solver, steps, samples, seed, sigma_min, sigma_max, reference_steps, shape, device,
                 x0_source=None):
        from .bench import initial_noise, run_sampler, schedule_sigmas

        self.denoiser, self.solver, self.steps, self.seed = denoiser, solver, steps, seed
        self.range = (sigma_min, sigma_max)
        self.evaluations = 0
        self.real = None
        if distributed.is_main():
            self.x_start = initial_noise(shape, samples, sigma_max, seed).to(device)
            if samples > KNN_NEIGHBOURS + 1:  # the k-NN figure needs k + 2 samples
                self.real = _data_draws(x0_source, samples, seed + 1)
            if self.real is None:
                reference_sigmas = schedule_sigmas("karras", reference_steps, sigma_min, sigma_max)
                self.reference, calls = run_sampler(denoiser, solver, reference_sigmas, self.x_start, seed, self.range)
                self.evaluations += calls * samples

    def __call__(self, ascending):
        """The figure of a stored schedule (ascending here) sampled at `steps` steps, "ays" convention."""
        figure = None
        if distributed.is_main():
            from .bench import reference_distance, run_sampler

            sampling = resample(np.asarray(ascending)[::-1], self.steps)
            samples, calls = run_sampler(self.denoiser, self.solver, sampling, self.x_start, self.seed, self.range)
            self.evaluations += calls * len(self.x_start)
            if self.real is not None:
                figure = knn_divergence(samples.cpu(), self.real)
            else:
                figure = reference_distance(samples.cpu(), self.reference.cpu())
        return distributed.broadcast_object(figure)


def knn_divergence(samples, data, k=None):
    """k-nearest-neighbour estimate of KL(samples || data) (Wang, Kulkarni and Verdu, 2009):
    d * mean log(nu_k / rho_k) + log(m / (n - 1)), rho_k the distance of each sample to its k-th
    neighbour among the samples, nu_k to its k-th neighbour among the m data draws. Samples
    stranded between the data's modes raise it, as they raise the NLL under the true density (a
    sliced Wasserstein distance of a thousand samples barely sees them); collapsing onto the modes
    raises it too (rho_k shrinks), where the NLL would reward it. Exact ties are clamped so the
    figure stays finite."""
    from scipy.spatial import cKDTree

    k = KNN_NEIGHBOURS if k is None else k
    a = np.asarray(torch.as_tensor(samples).reshape(len(samples), -1).double())
    b = np.asarray(torch.as_tensor(data).reshape(len(data), -1).double())
    if not np.all(np.isfinite(a)):  # a diverged solver: worst possible, and still valid JSON in the state
        return DIVERGED
    rho = cKDTree(a).query(a, [k + 1])[0][:, 0]  # [k]: only the k-th neighbour, any k
    nu = cKDTree(b).query(a, [k])[0][:, 0]
    tiny = 1e-12 * (1.0 + float(np.abs(b).max()))
    return float(a.shape[1] * np.mean(np.log(np.maximum(nu, tiny) / np.maximum(rho, tiny))) + math.log(len(b) / (len(a) - 1)))


def _data_draws(source, count, seed):
    """`count` x0 draws to compare samples with, or None when there is no plain data source
    (none given, or one that returns per-sample conditioning)."""
    from .klub import x0_sampler

    if source is None:
        return None
    draws = x0_sampler(source)(count, torch.Generator().manual_seed(seed))
    return None if isinstance(draws, (tuple, list)) else torch.as_tensor(draws).cpu()


# ---------------------------------------------------------------- resumable state

def save_state(path, state):
    from .fileio import atomic_write

    if distributed.is_main():
        atomic_write(path, json.dumps(state).encode("utf-8"))


def load_state(path, config):
    """The saved state for `config`, or AYSError saying what is wrong with the file."""
    from .fileio import read_json

    path = Path(path)
    try:
        state = read_json(path, limit=MAX_STATE_BYTES)
        _check_state(state, config)
    except AYSError as exc:
        raise AYSError(f"corrupt resume state {exc}") from None
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise AYSError(f"corrupt resume state {path}: {exc}") from None
    if state["config"] != config:
        changed = sorted(k for k in set(config) | set(state["config"]) if state["config"].get(k) != config.get(k))
        raise AYSError(f"resume state {path} belongs to a run with other settings ({', '.join(changed)}); "
                       "rerun without --resume to start over")
    missing = [key for key in ("pending", "start", "descent_best") if key not in state]
    if missing:
        raise AYSError(f"corrupt resume state {path}: no {', '.join(missing)}")
    return state


def _check_state(state, config):
    """Structural checks; raise ValueError/TypeError/KeyError naming the first problem."""
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError("not an AYS optimizer state file")
    if not isinstance(state["config"], dict):
        raise ValueError("config is not an object")
    stage, refine = state["stage"], config["refine"]
    if not isinstance(stage, int) or not 0 <= stage <= refine + 1:
        raise ValueError(f"stage {stage!r} out of range")
    sigmas = np.asarray(state["sigmas"], dtype=np.float64)
    expected = config["steps"] * 2 ** min(stage, refine) + 1
    if sigmas.shape != (expected,) or not np.all(np.isfinite(sigmas)) or np.any(np.diff(sigmas) <= 0) or sigmas[0] <= 0:
        raise ValueError(f"sigmas must be {expected} ascending positive numbers")
    if not (isinstance(state["width"], float) and 0 < state["width"] <= START_WIDTH):
        raise ValueError("width out of range")
    for key in ("iteration", "since_best"):
        if not isinstance(state[key], int) or state[key] < 0:
            raise ValueError(f"{key} must be a whole number >= 0")
    if state["best"] is not None:
        best = np.asarray(state["best"]["sigmas"], dtype=np.float64)
        if best.shape != (config["steps"] + 1,) or not np.all(np.isfinite(best)):
            raise ValueError("best iterate has the wrong shape")
        float(state["best"]["validation"])
    for name, pending in state.get("pending", []):  # checked for presence once the config matches
        pending = np.asarray(pending, dtype=np.float64)
        if not isinstance(name, str) or pending.shape != (config["steps"] + 1,) or not np.all(np.isfinite(pending)):
            raise ValueError("a pending start schedule is malformed")
    if not isinstance(state["history"], list) or not isinstance(state["evaluations"], dict):
        raise ValueError("history/evaluations malformed")
    if state["table"] is not None:
        table = np.asarray(state["table"], dtype=np.float64)
        if table.shape != (config["grid_size"],) * 2 or not np.all(np.isfinite(table)):
            raise ValueError("path table has the wrong shape")


# ---------------------------------------------------------------- the public entry point

def _check_whole(name, value, least):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise AYSError(f"{name} must be a whole number >= {least}, got {value!r}")


def check_options(denoiser, steps, mode, solver, counts, sigma_min, sigma_max):
    """Raise AYSError for settings a user got wrong; return the (sigma_min, sigma_max) to use.
    counts: {name: (value, least allowed)} for the whole-number settings."""
    from .bench import get_sampler

    _check_whole("steps", steps, 2)
    if mode not in MODES:
        raise AYSError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    get_sampler(solver)
    for name, (value, least) in counts.items():
        _check_whole(name, value, least)
    refine = counts["refine"][0]
    if steps * 2 ** refine + 1 > MAX_POINTS:
        raise AYSError(f"{steps} steps refined {refine} times makes more than {MAX_POINTS - 1} steps")
    lo = float(denoiser.sigma_min if sigma_min is None else sigma_min)
    hi = float(denoiser.sigma_max if sigma_max is None else sigma_max)
    check_range(lo, hi)
    return lo, hi


def data_source(denoiser, x0):
    """x0 draws: the given tensor / sampler, else the model's own exact `sample_data`."""
    if x0 is not None:
        if not callable(x0) and (torch.as_tensor(x0).ndim < 2 or len(x0) == 0):
            raise AYSError("x0 data must be a tensor of at least one sample, shaped [N, ...]")
        return x0
    if hasattr(denoiser, "sample_data"):
        return denoiser.sample_data
    raise AYSError("this model has no data of its own: pass x0 (a tensor of data or a sampler f(n, generator))")


def optimize(denoiser, steps=10, *, x0=None, mode="fast", solver="dpmpp_2m", samples=4096, seed=0,
             early_stop=True, patience=5, refine=2, max_iterations=300, sigma_min=None, sigma_max=None,
             validation_samples=None, reference_steps=100, state_path=None, resume=False, progress=True,
             device=None, chunk_size=256, max_batch=16384, grid_size=96, start="all"):
    """Optimize a schedule for `denoiser` (contract in docs/ARCHITECTURE.md) and return an
    OptimizeResult whose `sigmas` (descending, steps * 2**refine + 1 values) go into a schedule file.

    x0: data as a tensor [N, ...] (rows drawn with replacement) or a sampler f(n, generator);
    default: the model's `sample_data`. mode: "fast" (path table) or "paper" (Monte Carlo per
    candidate). early_stop: keep the stage-0 iterate whose `solver` samples score best on the
    validation figure (`ReferenceValidation`; patience: iterations without improvement before
    stopping). start: "all" runs the early-stopped descent from each of `start_schedules` in turn
    and keeps the best iterate of all of them (the paper's start alone without early stopping);
    "paper": only from the paper's start.
    state_path: written atomically after every iteration; resume=True continues from it.
    Runs under torch.distributed when a process group is initialised (see ays_core.distributed)."""
    source = data_source(denoiser, x0)
    if validation_samples is None:
        validation_samples = VALIDATION_SAMPLES["data" if has_plain_data(source) else "reference"]
    counts = {"samples": (samples, 2), "seed": (seed, 0), "refine": (refine, 0), "patience": (patience, 1),
              "max_iterations": (max_iterations, 1), "validation_samples": (validation_samples, 1),
              "reference_steps": (reference_steps, 1), "chunk_size": (chunk_size, 1), "max_batch": (max_batch, 1),
              "grid_size": (grid_size, 2)}
    lo, hi = check_options(denoiser, steps, mode, solver, counts, sigma_min, sigma_max)
    if start not in STARTS:
        raise AYSError(f"unknown start {start!r}; choose one of {', '.join(STARTS)}")
    device = torch.device(device) if device is not None else _default_device()
    config = {"steps": int(steps), "mode": mode, "solver": solver, "samples": int(samples), "seed": int(seed),
              "early_stop": bool(early_stop), "patience": int(patience), "refine": int(refine),
              "max_iterations": int(max_iterations), "sigma_min": lo, "sigma_max": hi,
              "validation_samples": int(validation_samples), "reference_steps": int(reference_steps),
              "chunk_size": int(chunk_size), "grid_size": int(grid_size), "start": start,
              "model": json.loads(json.dumps(getattr(denoiser, "model_info", None) or {}, default=str))}
    state = None
    if resume and state_path is not None:
        exists = distributed.broadcast_object(Path(state_path).is_file() if distributed.is_main() else None)
        if exists:
            state = distributed.broadcast_object(load_state(state_path, config) if distributed.is_main() else None)
    common = (denoiser, source, samples, seed, chunk_size, device, max_batch)
    if mode == "paper":
        estimator = ImportanceKLUB(*common)
    else:
        table = None if state is None else state["table"]
        estimator = PathKLUB(*common, lo, hi, grid_size=grid_size, table=table)
    validation = None
    if early_stop:
        shape = tuple(getattr(denoiser, "data_shape", None) or torch.as_tensor(_draw_one(source)).shape)
        validation = ReferenceValidation(denoiser, solver, steps, validation_samples, seed, lo, hi,
                                         reference_steps, shape, device, x0_source=source)
    run = _Run(config, estimator, validation, state_path, progress)
    if state is None:
        starts = {"paper": initial_schedule(denoiser, steps, lo, hi)}
        if validation is not None and start == "all":
            starts = start_schedules(denoiser, steps, lo, hi)
        run.start(list(starts.items()), None if mode == "paper" else estimator.table)
    else:
        run.state = state
    return run.finish()


def _default_device():
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def has_plain_data(source):
    """Whether x0 draws come without per-sample conditioning (then the validation figure compares
    samples with them rather than with a many-step reference run)."""
    from .klub import x0_sampler

    return not isinstance(x0_sampler(source)(1, torch.Generator().manual_seed(0)), (tuple, list))


def _draw_one(source):
    from .klub import x0_sampler

    return x0_sampler(source)(1, torch.Generator().manual_seed(0))[0]


class _Run:
    """The state machine behind `optimize`: one call of `_step` is one iteration or stage change."""

    def __init__(self, config, estimator, validation, state_path, progress):
        self.config, self.estimator, self.validation = config, estimator, validation
        self.state_path, self.progress = state_path, progress and distributed.is_main()
        self.state = None

    def start(self, starts, table):
        """starts: [(name, ascending sigmas)], descended from in this order in stage 0."""
        self.state = {"format": STATE_FORMAT, "config": self.config, "stage": 0, "iteration": 0,
                      "pending": [[name, sigmas.tolist()] for name, sigmas in starts], "start": None,
                      "sigmas": None, "width": START_WIDTH, "best": None, "since_best": 0, "descent_best": None,
                      "history": [], "evaluations": {"klub": 0, "validation": 0},
                      "table": None if table is None else table.tolist()}
        self._next_start()
        self._save()

    def _next_start(self):
        """Begin the stage-0 descent from the next pending start schedule."""
        s = self.state
        s["start"], sigmas = s["pending"].pop(0)
        s["sigmas"], s["width"], s["iteration"], s["since_best"], s["descent_best"] = sigmas, START_WIDTH, 0, 0, None
        self._record(np.asarray(sigmas))

    def finish(self):
        from tqdm import tqdm

        bar = tqdm(desc=f"optimize ({self.config['mode']})", unit="it", disable=not self.progress)
        self._show(bar)
        while self.state["stage"] <= self.config["refine"]:
            self._step()
            self._save()
            bar.update()
            self._show(bar)
        bar.close()
        s = self.state
        best_iteration = s["best"]["iteration"] if s["best"] else s["history"][0]["iteration"]
        best_start = s["best"]["start"] if s["best"] else s["history"][0]["start"]
        final = np.asarray(s["sigmas"])
        if self.state_path is not None and distributed.is_main():
            Path(self.state_path).unlink(missing_ok=True)
        return OptimizeResult(sigmas=final[::-1].copy(), steps=self.config["steps"], klub=s["history"][-1]["klub"],
                              best_iteration=best_iteration, history=s["history"], evaluations=dict(s["evaluations"]),
                              settings=dict(self.config), best_start=best_start)

    def _step(self):
        s, config = self.state, self.config
        sigmas = np.asarray(s["sigmas"])
        stage_done = (s["width"] < MIN_WIDTH or s["iteration"] >= config["max_iterations"]
                      or (s["stage"] == 0 and self.validation is not None and s["since_best"] >= config["patience"]))
        if stage_done and s["stage"] == 0 and s["pending"]:
            self._next_start()
            return
        if stage_done:
            if s["stage"] == 0 and s["best"] is not None:
                sigmas = np.asarray(s["best"]["sigmas"])
            s["stage"] += 1
            if s["stage"] <= config["refine"]:
                sigmas, _ = subdivide(sigmas)
                s["width"], s["iteration"] = START_WIDTH, 0
                s["sigmas"] = sigmas.tolist()
                self._record(sigmas)
            else:
                s["sigmas"] = sigmas.tolist()
            return
        movable = list(range(1, len(sigmas) - 1)) if s["stage"] == 0 else list(range(1, len(sigmas) - 1, 2))
        sigmas, moved = coordinate_pass(sigmas, movable, s["width"], self.estimator)
        previous = s["history"][-1]["klub"]
        s["iteration"] += 1
        s["sigmas"] = sigmas.tolist()
        self._record(sigmas)
        # Narrow the search once a pass stops paying: nothing moved, or (paper mode, where each
        # window has its own Monte Carlo noise) the moves did not lower the whole schedule's KLUB.
        if not moved or s["history"][-1]["klub"] >= previous:
            s["width"] /= 2

    def _record(self, sigmas):
        """Log KLUB (and in stage 0 the validation figure) of the current iterate; track the best."""
        s = self.state
        klub, se = self.estimator(sigmas[None])
        entry = {"stage": s["stage"], "start": s["start"], "steps": len(sigmas) - 1, "iteration": s["iteration"],
                 "width": s["width"],
                 "klub": float(klub[0]), "klub_se": None if math.isnan(se[0]) else float(se[0]), "validation": None,
                 "sigmas": sigmas[::-1].tolist()}
        if s["stage"] == 0 and self.validation is not None:
            entry["validation"] = figure = float(self.validation(sigmas))
            if s["best"] is None or figure < s["best"]["validation"]:
                s["best"] = {"sigmas": sigmas.tolist(), "validation": figure, "iteration": s["iteration"],
                             "start": s["start"]}
            if s["descent_best"] is None or figure < s["descent_best"]:  # patience counts within one descent
                s["descent_best"], s["since_best"] = figure, 0
            else:
                s["since_best"] += 1
        self._count()
        entry["evaluations"] = dict(s["evaluations"])
        s["history"].append(entry)

    def _count(self):
        """Fold the estimators' new denoiser evaluations into the saved counters."""
        counts = self.state["evaluations"]
        counts["klub"] += distributed.all_sum(self.estimator.evaluations)
        self.estimator.evaluations = 0
        if self.validation is not None:
            counts["validation"] += self.validation.evaluations
            self.validation.evaluations = 0

    def _save(self):
        if self.state_path is not None:
            save_state(self.state_path, self.state)

    def _show(self, bar):
        last = self.state["history"][-1]
        postfix = {"stage": f"{last['steps']} steps", "klub": f"{last['klub']:.4g}"}
        if last["validation"] is not None:
            postfix["val"] = f"{last['validation']:.4g}"
        bar.set_postfix(postfix, refresh=False)
