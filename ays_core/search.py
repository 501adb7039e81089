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
the SD1.5 AYS list). Then either the caller's solver stage (ays_core.refine, what the pipeline
runs in fast mode) takes the descents' iterates as candidates and returns schedules tuned for the
solver per step count, the `steps` one going on; or, without it, the iterate of all descents
whose samples score best on a held-out validation figure (`ReferenceValidation`) goes on.
Stages 1..refine insert log-midpoints and optimize only the new points, to convergence.
Everything is deterministic given the seed, so a run resumed from its state file ends exactly
where an uninterrupted run ends.
"""
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .errors import AYSError, SettingError
from .fileio import atomic_write, read_json, sha256_bytes
from .klub import ImportanceKLUB, PathKLUB, x0_sampler
from .settings import RunSettings
from .starts import initial_schedule, schedule_range, start_schedules
from .validation import VALIDATION_SAMPLES, ReferenceValidation, has_plain_data

CANDIDATES = 11            # per point and pass, the current value in the middle (paper, appendix B)
START_WIDTH = 0.5          # candidates reach this fraction of the log-gap to each neighbour
MIN_WIDTH = 1 / 64         # a pass that moves nothing halves the width; below this, converged
STATE_FORMAT = "ays-optimize-state-v1"
MAX_STATE_BYTES = 64 << 20


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
    tuned: dict = None         # with a solver stage: {str(steps): its result}, see refine.SolverStage


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


def stored_form(sampling, sigma_min):
    """Ascending stored schedule (sigma_min first) whose N-step "ays" resampling is `sampling`.
    A schedule whose last nonzero sigma is sigma_min itself (k-diffusion's form) gets its stored
    end between that point's neighbours; its exact list is kept beside it anyway."""
    positive = np.asarray(sampling, dtype=np.float64)[:-1]
    ascending = np.concatenate([[sigma_min], positive[::-1]])
    if ascending[1] <= sigma_min * (1 + 1e-6):
        ascending[1] = math.sqrt(sigma_min * ascending[2])
    return ascending


# ---------------------------------------------------------------- resumable state

def state_checksum(state):
    """sha256 of the state's canonical JSON, its own checksum left out. Floats print as their
    shortest round-tripping form, so a state read back gives the checksum it was saved with."""
    body = {key: value for key, value in state.items() if key != "checksum"}
    return sha256_bytes(json.dumps(body, sort_keys=True).encode("utf-8"))


def save_state(path, state):
    if distributed.is_main():
        atomic_write(path, json.dumps({**state, "checksum": state_checksum(state)}).encode("utf-8"))


def load_state(path, config):
    """The saved state for `config`, or AYSError saying in one line what is wrong with the file.
    A state whose checksum does not match (edited or damaged) is refused."""
    path = Path(path)
    try:
        state = read_json(path, limit=MAX_STATE_BYTES)
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError("not an AYS optimizer state file")
        if not isinstance(state.get("config"), dict):
            raise ValueError("config is not an object")
    except AYSError as exc:
        raise AYSError(f"corrupt resume state {exc}") from None
    except ValueError as exc:
        raise AYSError(f"corrupt resume state {path}: {exc}") from None
    if state.get("checksum") != state_checksum(state):
        raise AYSError(f"corrupt resume state {path}: its checksum does not match its content (edited or damaged); "
                       "start over instead of resuming")
    if state["config"] != config:
        changed = sorted(k for k in set(config) | set(state["config"]) if state["config"].get(k) != config.get(k))
        raise SettingError(lambda *names: f"resume state {path} belongs to a run with other settings "
                                          f"({', '.join(names)}); start over instead of resuming", *changed)
    try:
        _check_state(state, config)
    except KeyError as exc:
        raise AYSError(f"corrupt resume state {path}: no {exc}") from None
    except (ValueError, TypeError, IndexError) as exc:
        raise AYSError(f"corrupt resume state {path}: {exc}") from None
    return state


def _finite(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number")


def _count_of(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a whole number >= 0")


def _numbers(values, what):
    """`values` (nested lists) as a float64 array if they are all JSON numbers (not "1.5", not true)."""
    array = np.asarray(values)
    if array.dtype.kind not in "fi":
        raise ValueError(f"{what} must hold numbers only")
    return array.astype(np.float64)


def _check_sigmas(values, count, what):
    sigmas = _numbers(values, what)
    if sigmas.shape != (count,) or not np.all(np.isfinite(sigmas)) or np.any(np.diff(sigmas) <= 0) or sigmas[0] <= 0:
        raise ValueError(f"{what} must be {count} ascending positive numbers")


def _check_history(history):
    if not isinstance(history, list) or not history:
        raise ValueError("history must be a non-empty list")
    for entry in history:
        if not isinstance(entry, dict):
            raise ValueError("a history entry is not an object")
        _finite(entry["klub"], "history klub")
        for key in ("validation", "klub_se"):
            if entry.get(key) is not None:
                _finite(entry[key], f"history {key}")
        for key in ("stage", "steps", "iteration"):
            _count_of(entry[key], f"history {key}")
        if not isinstance(entry["sigmas"], list):  # stored high to low; the solver stage races them
            raise ValueError("history sigmas must be a list")
        _check_sigmas(entry["sigmas"][::-1], entry["steps"] + 1, "history sigmas")
        if entry["start"] is not None and not isinstance(entry["start"], str):
            raise ValueError("history start must be a name")


def _check_tuned(tuned):
    """The solver stage's results, when the state has them: {"N": {sigmas, start, summary, moves, ...}}."""
    if tuned is None:
        return
    if not isinstance(tuned, dict):
        raise ValueError("tuned must be an object")
    for count, result in tuned.items():
        # words: start and summary always; chosen and provenance since the data figure, search since the
        # search on the data (older states lack them)
        if not isinstance(result, dict) or not all(isinstance(result[key], str) for key in ("start", "summary")) \
                or not all(isinstance(result.get(key, ""), str) for key in ("chosen", "provenance", "search")):
            raise ValueError("a tuned schedule is malformed")
        _count_of(result["moves"], "tuned moves")
        sigmas = _numbers(result["sigmas"], "a tuned schedule")
        if sigmas.shape != (int(count) + 1,) or not np.all(np.isfinite(sigmas)):
            raise ValueError("a tuned schedule has the wrong shape")


def _check_state(state, config):
    """Structural checks of a state whose checksum matched (it may still have been forged);
    raise ValueError/TypeError/KeyError/IndexError naming the first problem."""
    if not isinstance(state["start"], str):
        raise ValueError("start must be a name")
    if state["descent_best"] is not None:
        _finite(state["descent_best"], "descent_best")
    _check_history(state["history"])
    if not isinstance(state["evaluations"], dict):
        raise ValueError("evaluations must be an object")
    for key in ("klub", "validation"):
        _count_of(state["evaluations"][key], f"evaluations {key}")
    stage, refine = state["stage"], config["refine"]
    _count_of(stage, "stage")
    if stage > refine + 1:
        raise ValueError(f"stage {stage!r} out of range")
    _check_sigmas(state["sigmas"], config["steps"] * 2 ** min(stage, refine) + 1, "sigmas")
    if not (isinstance(state["width"], float) and 0 < state["width"] <= START_WIDTH):
        raise ValueError("width out of range")
    for key in ("iteration", "since_best"):
        _count_of(state[key], key)
    if state["best"] is not None:
        _check_sigmas(state["best"]["sigmas"], config["steps"] + 1, "best iterate")
        _finite(state["best"]["validation"], "best validation")
        _count_of(state["best"]["iteration"], "best iteration")
        if not isinstance(state["best"]["start"], str):
            raise ValueError("best start must be a name")
    if not isinstance(state["pending"], list):
        raise ValueError("pending must be a list")
    for name, pending in state["pending"]:
        if not isinstance(name, str):
            raise ValueError("a pending start schedule has no name")
        _check_sigmas(pending, config["steps"] + 1, "a pending start schedule")
    _check_tuned(state.get("tuned"))
    if state["table"] is not None:
        table = _numbers(state["table"], "path table")
        if table.shape != (config["grid_size"],) * 2 or not np.all(np.isfinite(table)):
            raise ValueError("path table has the wrong shape")


# ---------------------------------------------------------------- the public entry point

def data_source(denoiser, x0):
    """x0 draws: the given tensor / sampler, else the model's own exact `sample_data`."""
    if x0 is not None:
        if not callable(x0) and (torch.as_tensor(x0).ndim < 2 or len(x0) == 0):
            raise AYSError("x0 data must be a tensor of at least one sample, shaped [N, ...]")
        return x0
    if hasattr(denoiser, "sample_data"):
        return denoiser.sample_data
    raise AYSError("this model has no data of its own: pass x0 (a tensor of data or a sampler f(n, generator))")


def optimize(denoiser, settings=None, *, x0=None, state_path=None, resume=False, progress=True, device=None,
             chunk_size=256, max_batch=16384, solver_stage=None):
    """Optimize a schedule for `denoiser` (contract in docs/ARCHITECTURE.md) with the search fields
    of `settings` (a settings.RunSettings; default: its defaults) and return an OptimizeResult whose
    `sigmas` (descending, steps * 2**refine + 1 values) go into a schedule file.

    x0: data as a tensor [N, ...] (rows drawn with replacement) or a sampler f(n, generator);
    default: the model's `sample_data`. With early stopping, the stage-0 iterate whose `solver`
    samples score best on the validation figure (`ReferenceValidation`) is kept; settings.start
    "all" descends from each of `start_schedules` in turn (the paper's start alone without early
    stopping), "paper" only from the paper's start.
    solver_stage: a factory from refine.solver_stage_for (the pipeline passes it): the stage-0
    descents then run to KLUB convergence unjudged, and the solver stage picks and refines.
    state_path: written atomically after every iteration; resume=True continues from it.
    chunk_size, max_batch: samples per host chunk and per denoiser call (memory, not results).
    Runs under torch.distributed when a process group is initialised (see ays_core.distributed)."""
    settings = RunSettings() if settings is None else settings
    settings.check()
    for name, value in (("chunk_size", chunk_size), ("max_batch", max_batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise AYSError(f"{name} must be a whole number >= 1, got {value!r}")
    source = data_source(denoiser, x0)
    validation_samples = settings.validation_samples
    if validation_samples is None:
        validation_samples = VALIDATION_SAMPLES["data" if has_plain_data(source) else "reference"]
    lo, hi = schedule_range(denoiser, settings)
    device = torch.device(device) if device is not None else _default_device()
    steps, mode, samples, seed = settings.steps, settings.mode, settings.samples, settings.seed
    config = {"steps": steps, "mode": mode, "solver": settings.solver, "samples": samples, "seed": seed,
              "early_stop": settings.early_stop, "patience": settings.patience, "refine": settings.refine,
              "max_iterations": settings.max_iterations, "sigma_min": lo, "sigma_max": hi,
              "validation_samples": validation_samples, "reference_steps": settings.reference_steps,
              "chunk_size": chunk_size, "grid_size": settings.grid_size, "start": settings.start,
              "solver_stage": None if solver_stage is None else _stage_config(settings),
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
        estimator = PathKLUB(*common, lo, hi, grid_size=settings.grid_size, table=table, progress=progress)
    validation = stage = None
    if settings.early_stop:
        shape = tuple(getattr(denoiser, "data_shape", None) or torch.as_tensor(_draw_one(source)).shape)
        if solver_stage is not None:
            stage = solver_stage(denoiser, x0_sampler(source), (lo, hi), shape, device, progress and distributed.is_main())
        else:
            validation = ReferenceValidation(denoiser, settings.solver, steps, validation_samples, seed, lo, hi,
                                             settings.reference_steps, shape, device, x0_source=source)
    run = _Run(config, estimator, validation, state_path, progress, stage)
    if state is None:
        starts = {"paper": initial_schedule(denoiser, steps, lo, hi)}
        if settings.early_stop and settings.start == "all":
            starts = start_schedules(denoiser, steps, lo, hi)
        run.start(list(starts.items()), None if mode == "paper" else estimator.table)
    else:
        run.state = state
    return run.finish()


def _stage_config(settings):
    """The solver stage's part of the config a state must match to resume; the data search's
    passes only where they differ from the default, so states saved before that setting resume."""
    config = {"step_counts": settings.tuned_steps(), "teacher_samples": settings.teacher_samples}
    if settings.data_search_passes != RunSettings().data_search_passes:
        config["data_search_passes"] = settings.data_search_passes
    return config


def _default_device():
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _draw_one(source):
    return x0_sampler(source)(1, torch.Generator().manual_seed(0))[0]


class _Run:
    """The state machine behind `optimize`: one call of `_step` is one iteration or stage change."""

    def __init__(self, config, estimator, validation, state_path, progress, stage=None):
        self.config, self.estimator, self.validation, self.stage = config, estimator, validation, stage
        self.state_path, self.progress = state_path, progress and distributed.is_main()
        self.state = None

    def start(self, starts, table):
        """starts: [(name, ascending sigmas)], descended from in this order in stage 0."""
        self.state = {"format": STATE_FORMAT, "config": self.config, "stage": 0, "iteration": 0,
                      "pending": [[name, sigmas.tolist()] for name, sigmas in starts], "start": None,
                      "sigmas": None, "width": START_WIDTH, "best": None, "since_best": 0, "descent_best": None,
                      "history": [], "evaluations": {"klub": 0, "validation": 0}, "tuned": None,
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

        bar = tqdm(total=self.config["max_iterations"], unit="it", disable=not self.progress)
        self._show(bar)
        while self.state["stage"] <= self.config["refine"]:
            self._step()
            self._save()
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
                              settings=dict(self.config), best_start=best_start, tuned=s.get("tuned"))

    def _step(self):
        s, config = self.state, self.config
        sigmas = np.asarray(s["sigmas"])
        stage_done = (s["width"] < MIN_WIDTH or s["iteration"] >= config["max_iterations"]
                      or (s["stage"] == 0 and self.validation is not None and s["since_best"] >= config["patience"]))
        if stage_done and s["stage"] == 0 and s["pending"]:
            self._next_start()
            return
        if stage_done:
            if s["stage"] == 0 and self.stage is not None:
                s["tuned"] = self.stage(s["history"])
                self._count()
                sigmas = stored_form(s["tuned"][str(config["steps"])]["sigmas"], config["sigma_min"])
            elif s["stage"] == 0 and s["best"] is not None:
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
        for judge in (self.validation, self.stage):
            if judge is not None:
                counts["validation"] += judge.evaluations
                judge.evaluations = 0

    def _save(self):
        if self.state_path is not None:
            save_state(self.state_path, self.state)

    def _show(self, bar):
        """One bar per stage (and per stage-0 descent), counting its iterations against the cap:
        the total and ETA are an upper bound, as a stage usually converges well before it."""
        s, last = self.state, self.state["history"][-1]
        what = f"stage {min(s['stage'], self.config['refine']) + 1}/{self.config['refine'] + 1}, {last['steps']} steps"
        what += f", descent from {s['start']}" if s["stage"] == 0 and s["start"] else ""
        if getattr(bar, "ays_stage", None) != what:  # a new stage or descent: a new count and ETA
            bar.ays_stage = what
            bar.reset(total=self.config["max_iterations"])
            bar.set_description(what, refresh=False)
        postfix = {"klub": f"{last['klub']:.4g}"}
        if last["validation"] is not None:
            postfix["val"] = f"{last['validation']:.4g}"
        bar.set_postfix(postfix, refresh=False)
        bar.update(s["iteration"] - bar.n)
