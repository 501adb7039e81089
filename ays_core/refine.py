"""Selection and refinement of a schedule for one solver and step count, after the KLUB stage.

The KLUB optimum is not the best few-step sampling schedule (docs/BENCHMARKS.md): on the
benchmark models a hand-made start often samples better than any KLUB iterate, and which one
wins depends on the solver and the step count. So the KLUB stage proposes candidates, and the
schedule for N steps of solver S is chosen and then refined on S's own global error:

    figure(schedule) = mean over teacher samples of the RMS distance between S's N-step sample
                       and the probability-flow ODE's many-step solution from the same noise

benchmarks/rank_study.py measured how this figure ranks schedules against the bench's
sample-quality metrics (docs/BENCHMARKS.md). A stochastic S is judged by its ODE counterpart
(`judged_solver`): its own pathwise error against an SDE reference ranked schedules unlike the
distribution metrics. The teacher samples come in chunks of CHUNK rows, so that any prefix of
chunks is a complete, reproducible estimate.

Candidates per step count: the hand-made schedules (HAND_MADE), a GITS-style DP schedule computed
from the teacher's own noise (GITS_LABEL, ays_core/gits.py), and KLUB iterates.

1. `race`: every candidate is run on the first chunk; after each chunk a candidate whose paired
   difference to the leader exceeds RACE_Z standard errors is dropped (the ranking is settled),
   the others get the next chunk. The survivor with the lowest figure wins.
2. `coordinate_search`: each sigma but the first moves down or up by `width` of the log-gap to
   its neighbour; a trial is kept when its figure (paired, over every chunk) is lower, and
   abandoned after any chunk where it is behind by RACE_Z standard errors. A pass without a move
   halves the width; the search ends below MIN_WIDTH or after MAX_PASSES passes.
The figure of the result is never above that of any candidate that ran on every chunk.
3. The data figure (models whose x0 are real data, not the model's own draws; ays_core/data_figure.py):
   the teacher is the model's converged ODE solution, not the data. Where the model itself misses
   the data, a schedule that misses that solution can sample closer to the data (on the digits
   model sd15:ays at 8-10 steps lies closer to held-out digits than the converged 100-step samples
   do, and every refinement move away from it lost FD; on the photo-patch UNet the race's choice
   lost on pixel FD to karras:ays: docs/BENCHMARKS.md). So `solver`'s own samples from fresh noise
   are compared with x0 draws for the race winner, the refined schedule and every candidate whose
   figure is within PLAUSIBLE times the winner's. The refined schedule is kept only when it lies
   closer than the winner; another candidate replaces that choice only when it is clearly closer
   (paired bootstrap). A stochastic solver was raced on its ODE counterpart's error, which ranks its
   schedules loosely: where the model's converged solution lies far closer to the data than the race's
   pick (an accurate model; the stage then does not search on the data), every candidate and the
   refined schedule are judged on the wide check (data_figure.WIDE_SAMPLES) and the closest is taken.
4. The search on the data: `coordinate_search`'s moves from that choice, a trial kept when its
   data score is lower and a kept move pushed on in its direction while the score keeps falling
   (data_figure.SEARCH_PUSHES), for `search_passes` passes (the run's data_search_passes). It runs
   three ways (`data_searches`: the pass's width alone, half-width retries, and a width that halves
   every pass, for one pass more): greedy moves end in different places. On the photo-patch UNet the
   oracle, searching pixel FD, beat every candidate by far, and so did this search
   (benchmarks/data_search_study.py: pixel FD -11 to -58 at 6-10 NFE in 2 passes, and with
   the pushes -89 to -94 for dpmpp_2m, both held-out metrics better); on the digits and the exact
   toy it over-fitted its 512 samples in some cells.
   So a fresh check (other noise, other x0 draws) picks the closest of the lists the searches end on
   (the lowest own score is the least of two or three minima on the same samples; in the suite the
   two picks differed in 4 of 24 step counts: docs/BENCHMARKS.md, ninth round), and that list
   replaces the choice only when it is clearly closer to the data there. There is no search where
   the model's converged solution lies far closer to the data than the choice (the exact toy: the
   teacher leads there).
"""
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import data_figure
from .errors import AYSError

CHUNK = 8           # teacher samples per chunk (one Brownian seed each)
RACE_Z = 2.5        # a paired difference this many standard errors behind the leader drops out
START_WIDTH = 0.5   # a trial moves a sigma by this fraction of the log-gap to its neighbour
MIN_WIDTH = 0.1     # halving below this ends the search: fewest passes 3 (0.5, 0.25, 0.125)
MAX_PASSES = 4
STEP_COUNTS = (4, 6, 8)  # tuned beside the run's own --steps, stored side by side (few-step use)
TEACHER_SAMPLES = 32     # default teacher samples (4 chunks); the plan's cost scales with it
PLAUSIBLE = 2.0     # candidates whose figure is within this factor of the winner's are judged on the data
                    # (the study's data picks lay within 1.34x-1.68x: docs/BENCHMARKS.md); bounds its cost
REFINED_LABEL = "the refined schedule"
GITS_LABEL = "GITS-style DP"  # the candidate ays_core/gits.py makes from the teacher's noise
# Hand-made schedules raced in both step conventions: (label, bench spec) pairs; "sd15@2" is the
# stock AYS list shipped with the paper's values (what a WebUI user has today).
ODE_COUNTERPART = {"euler_ancestral": "euler", "dpmpp_2m_sde": "dpmpp_2m", "dpmpp_3m_sde": "dpmpp_2m"}
TEACHER_SOLVER = "dpmpp_2m"  # all deterministic solvers integrate one ODE: a second-order reference
HAND_MADE = tuple((f"{name}{suffix}", f"{spec}{suffix}")
                  for name, spec, suffixes in (("karras", "karras", ("", ":ays")),
                                               ("exponential", "exponential", ("", ":ays")),
                                               ("kl_optimal", "kl_optimal", ("", ":ays")),
                                              ("beta", "beta", ("", ":ays")),
                                               ("sd15", "sd15@2", (":ays", ":a1111")))
                  for suffix in suffixes)


@dataclass
class Teacher:
    """Starting noise and many-step solutions, in chunks: chunks[i] = (x_start, target, seed, cond)."""

    chunks: list
    sigma_range: tuple
    evaluations: int = 0  # denoiser evaluations its own runs cost (0 when reused)
    sigmas: Optional[np.ndarray] = None  # the schedule of its TEACHER_SOLVER runs (None when reused)


def judged_solver(solver):
    """The solver whose error judges schedules for `solver`: itself when deterministic, else its
    probability-flow ODE counterpart. The strong (same Brownian path) error of a stochastic solver
    misranked schedules: on toy:gmm8x8 the schedules it chose for euler_ancestral lost every cell
    on sliced W2, those chosen on euler's error lost one of four (docs/BENCHMARKS.md)."""
    from .samplers import get_sampler

    return ODE_COUNTERPART.get(solver, "dpmpp_2m") if get_sampler(solver).stochastic else solver


def make_teacher(denoiser, samples, seed, sigma_range, teacher_steps, shape, device, reuse=None):
    """A Teacher of `samples` rows (rounded up to whole chunks): the probability-flow ODE's
    solution (TEACHER_SOLVER, `teacher_steps` karras steps) from seeded noise.

    reuse: (noise, x0, cond) of x0 draws that are themselves many-step DPM++ 2M solutions from
    that noise (a latent model's data-free draws); taken instead of running the teacher."""
    from .bench import schedule_sigmas
    from .samplers import initial_noise, run_sampler, sampler_nfe

    lo, hi = sigma_range
    chunks, evaluations = [], 0
    count = teacher_rows(samples) // CHUNK
    name = TEACHER_SOLVER
    if reuse is not None:
        noise, x0, cond = reuse
        for c in range(min(count, math.ceil(len(noise) / CHUNK))):
            rows = slice(c * CHUNK, (c + 1) * CHUNK)
            chunks.append((noise[rows].to(device), x0[rows].to(device), seed + c,
                           {k: v[rows].to(device) for k, v in cond.items()}))
        return Teacher(chunks, (lo, hi))
    sigmas = schedule_sigmas("karras", teacher_steps, lo, hi)  # as the bench's many-step reference
    for c in range(count):
        x_start = initial_noise(shape, CHUNK, hi, seed * 1009 + c).to(device)
        target, _ = run_sampler(denoiser, name, sigmas, x_start, seed + c, (lo, hi))
        chunks.append((x_start, target, seed + c, None))
        evaluations += CHUNK * sampler_nfe(name, teacher_steps)
    return Teacher(chunks, (lo, hi), evaluations, np.asarray(sigmas, dtype=np.float64))


class Figure:
    """Per-sample errors of sampling schedules against a Teacher, computed chunk by chunk and cached."""

    def __init__(self, denoiser, solver, teacher, bar=None):
        self.denoiser, self.solver, self.teacher = denoiser, solver, teacher
        self.bar = bar  # a tqdm bar counting denoiser evaluations, or None
        self.evaluations = 0
        self._cache = {}

    def chunk_errors(self, sigmas, index):
        """RMS distance to the teacher of each sample of chunk `index` (inf where not finite)."""
        from .samplers import run_sampler

        key = (np.asarray(sigmas, dtype=np.float64).tobytes(), index)
        if key not in self._cache:
            x_start, target, seed, cond = self.teacher.chunks[index]
            out, calls = run_sampler(self.denoiser, self.solver, sigmas, x_start, seed, self.teacher.sigma_range, cond)
            self.evaluations += calls * len(x_start)
            if self.bar is not None:
                self.bar.update(calls * len(x_start))
            err = (out.double() - target.double()).flatten(1).pow(2).mean(1).sqrt().cpu().numpy()
            self._cache[key] = np.where(np.isfinite(err), err, np.inf)
        return self._cache[key]

    def errors(self, sigmas, chunks):
        return np.concatenate([self.chunk_errors(sigmas, i) for i in range(chunks)])

    @property
    def chunks(self):
        return len(self.teacher.chunks)


def clearly_worse(errors, leader):
    """Whether paired per-sample errors trail the leader's by more than RACE_Z standard errors."""
    diff = errors - leader
    if not np.all(np.isfinite(diff)):
        return bool(np.any(~np.isfinite(errors)))
    if len(diff) < 2:
        return False
    se = diff.std(ddof=1) / math.sqrt(len(diff))
    return diff.mean() > RACE_Z * se and diff.mean() > 0


@dataclass
class RaceResult:
    name: str
    sigmas: np.ndarray
    figure: float
    chunks: int                       # chunks the winner ran on
    figures: dict = field(default_factory=dict)  # every candidate: (mean error, chunks it ran on)


def race(candidates, figure):
    """The candidate (name -> sampling sigmas) with the lowest figure; see the module docstring."""
    names = list(candidates)
    ran = dict.fromkeys(names, 0)
    alive = list(names)
    for used in range(1, figure.chunks + 1):
        errors = {n: figure.errors(candidates[n], used) for n in alive}
        for n in alive:
            ran[n] = used
        leader = min(alive, key=lambda n: (errors[n].mean(), names.index(n)))
        alive = [n for n in alive if n == leader or not clearly_worse(errors[n], errors[leader])]
        if len(alive) == 1:  # the ranking is settled
            break
    winner = min(alive, key=lambda n: (figure.errors(candidates[n], ran[n]).mean(), names.index(n)))
    report = {n: (float(figure.errors(candidates[n], ran[n]).mean()), ran[n]) for n in names}
    return RaceResult(winner, np.asarray(candidates[winner]), report[winner][0], ran[winner], report)


def trial_schedule(sigmas, index, direction, width, sigma_min):
    """`sigmas` (sampling, ends in 0) with point `index` moved `direction` (-1 down, +1 up) by
    `width` of the log-gap to that neighbour; the last nonzero point's lower neighbour is sigma_min."""
    log_s = np.log(sigmas[:-1])
    below = log_s[index + 1] if index + 1 < len(log_s) else math.log(sigma_min)
    gap = (log_s[index - 1] - log_s[index]) if direction > 0 else (log_s[index] - below)
    trial = sigmas.copy()
    trial[index] = math.exp(log_s[index] + direction * width * gap)
    return trial


def better(trial, current, figure):
    """Whether `trial` has a lower figure than `current` over every chunk; stops a trial as
    soon as it trails by RACE_Z standard errors."""
    for used in range(1, figure.chunks + 1):
        mine, theirs = figure.errors(trial, used), figure.errors(current, used)
        if clearly_worse(mine, theirs):
            return False
    return figure.errors(trial, figure.chunks).mean() < figure.errors(current, figure.chunks).mean()


@dataclass(frozen=True)
class SearchRule:
    """How coordinate_search moves the points: at most `passes` passes; a point tries each of `widths`
    (fractions of the pass's width) in turn until one moves it; a kept move is tried again in its
    direction up to `pushes` more times while it keeps improving; the width halves after a pass that
    moves nothing, or after every pass (`halves_every_pass`)."""
    passes: int = MAX_PASSES
    pushes: int = 0
    widths: tuple = (1.0,)
    halves_every_pass: bool = False

    def most_passes(self):
        """The most passes this rule can run (a width that halves every pass falls below MIN_WIDTH
        after _passes_to_min_width of them)."""
        return min(self.passes, _passes_to_min_width()) if self.halves_every_pass else self.passes

    def most_trials(self):
        """Most trials of one point in one pass: both directions at each width, then the pushes."""
        return 2 * len(self.widths) + self.pushes


def data_searches(passes):
    """The searches on the data of a run whose data_search_passes is `passes` (none for 0); the stage
    keeps the list a fresh check puts closest (search_on_data). All push a kept move
    (data_figure.SEARCH_PUSHES). On the photo-patch UNet each one alone lost some cells on held-out
    pixel FD, and one of them had the best or a near-best list in all 6 studied (docs/BENCHMARKS.md):
    the pass's width alone; half-width retries where it fails; and a width that halves every pass,
    with one pass more (0.5, 0.25, 0.125 of the log-gaps at the default 2, as measured; from 3 passes
    on it ends after those 3 all the same)."""
    if not passes:
        return ()
    pushes = data_figure.SEARCH_PUSHES
    return (SearchRule(passes, pushes), SearchRule(passes, pushes, widths=(1.0, 0.5)),
            SearchRule(passes + 1, pushes, halves_every_pass=True))


def _passes_to_min_width():
    """Passes of a search whose width halves every pass, from START_WIDTH until below MIN_WIDTH."""
    passes, width = 0, START_WIDTH
    while width >= MIN_WIDTH:
        width /= 2
        passes += 1
    return passes


def coordinate_search(sigmas, improves, sigma_min, rule=SearchRule()):
    """Refine a sampling schedule (ends in 0, first value fixed) the way `rule` says: a trial is kept
    when improves(trial, current). Returns (sigmas, passes run, moves kept)."""
    current = np.asarray(sigmas, dtype=np.float64).copy()
    width, passes, moves = START_WIDTH, 0, 0
    while passes < rule.passes and width >= MIN_WIDTH:
        passes += 1
        moved = False
        for index in range(1, len(current) - 1):
            for trial_width in (width * fraction for fraction in rule.widths):
                kept = _move_point(current, index, trial_width, improves, sigma_min, rule.pushes)
                if kept:
                    current, point_moves = kept
                    moved, moves = True, moves + point_moves
                    break
        if rule.halves_every_pass or not moved:
            width /= 2
    return current, passes, moves


def _move_point(current, index, width, improves, sigma_min, pushes):
    """(schedule, moves) after the first improving move of point `index` by `width` (down, then up)
    and its pushes; None when neither direction improves."""
    for direction in (-1, 1):
        trial = trial_schedule(current, index, direction, width, sigma_min)
        if not improves(trial, current):
            continue
        moves = 1
        for _ in range(pushes):
            pushed = trial_schedule(trial, index, direction, width, sigma_min)
            if not improves(pushed, trial):
                break
            trial, moves = pushed, moves + 1
        return trial, moves
    return None


def hand_made(steps, sigma_min, sigma_max):
    """{label: sampling sigmas of `steps` steps} of the HAND_MADE schedules on the range."""
    from .bench import schedule_sigmas

    result = {}
    for label, spec in HAND_MADE:
        try:
            sigmas = np.array(schedule_sigmas(spec, steps, sigma_min, sigma_max), dtype=np.float64)
        except AYSError:  # no shipped registry next to the library: the others serve
            continue
        sigmas[0] = sigma_max  # exact ends (k-diffusion computes in float32)
        if abs(sigmas[-2] - sigma_min) <= 1e-6 * sigma_min:
            sigmas[-2] = sigma_min
        result[label] = sigmas
    return result


@dataclass
class StepResult:
    steps: int
    sigmas: np.ndarray     # sampling sigmas, ends in 0
    start: str             # the race winner, where the refinement started
    start_figure: float
    figure: float
    passes: int
    moves: int
    evaluations: int
    chosen: str = None     # the choice before any data search: start, REFINED_LABEL, or a candidate the data
                           # clearly preferred (or, `wide`, put closest)
    data: dict = None      # {label: data score} of the schedules judged on the data, when x0 are data
    replaced: str = None   # what that candidate replaced (start or REFINED_LABEL)
    search: str = ""       # the search on the data: "" (none asked, or x0 not data), "skipped" (the converged
                           # solution is far closer), "no move", "dropped" (not confirmed) or "kept"
    data_moves: int = 0    # moves it kept from the choice
    confirmation: dict = None  # {"searched": score, "before": score} on the fresh check, when it moved
    searched_lists: int = 0    # distinct lists the searches on the data moved to (the fresh check picked one)
    wide: bool = False     # the data judged every candidate on the wide check (a stochastic solver), closest taken

    def __post_init__(self):
        if self.chosen is None:
            self.chosen = REFINED_LABEL if self.moves else self.start

    @property
    def searched(self):
        """Whether the result is the schedule the search on the data found (confirmed)."""
        return self.search == "kept"

    @property
    def refined(self):
        """Whether the result was moved from a candidate (on the teacher's figure or on the data)."""
        return self.searched or self.chosen == REFINED_LABEL

    @property
    def hand_made(self):
        """Whether the result is a hand-made schedule, unchanged."""
        return not self.searched and self.chosen in hand_made_labels()

    def describe(self):
        figure = f"figure {self.figure:.4g}"
        if self.searched:
            figure = f"the result is the searched schedule; {figure}"
        elif self.chosen != REFINED_LABEL:
            figure = f"this is {kind_of(self.chosen)}; {figure}"
        return f"{self.steps} steps: {self._choice_words()}{self._search_words()} ({figure})"

    def _choice_words(self):
        if self.replaced is not None:
            moved = f" and refinement moved it {self.moves} times" if self.replaced == REFINED_LABEL else ""
            how = "lie closest to the data" if self.wide else "lie clearly closer to the data"
            return (f"{self.start} won the selection (figure {self.start_figure:.4g}){moved}, but the samples of "
                    f"{self.chosen} {how} (data score {self.data[self.chosen]:.3g} against "
                    f"{self.data[self.replaced]:.3g}; 0 = closest on both distances), so it was chosen")
        if self.moves == 0:
            return f"{self.start} won the selection and refinement kept it unchanged"
        moved = (f"selection picked {self.start} (figure {self.start_figure:.4g}); "
                 f"refinement moved it {self.moves} times in {self.passes} passes")
        if self.data is None:
            return moved
        winner, refined = self.data[self.start], self.data[REFINED_LABEL]
        if self.chosen == REFINED_LABEL:
            return f"{moved}, and its samples lie closer to the data (data score {refined:.3g} vs {winner:.3g})"
        return (f"{moved}, but its samples lay farther from the data (data score {refined:.3g} vs {winner:.3g}), "
                f"so {self.start} was kept unchanged")

    def _search_words(self):
        if self.wide:
            return ("; the model's converged solution lies far closer to the data than its samples, and the race "
                    f"judged the solver by its ODE counterpart, so all {len(self.data)} schedules were judged on "
                    f"{data_figure.WIDE_SAMPLES} samples and the closest taken, with no search on the data")
        if not self.search:
            return ""
        if self.search == "no move":
            return "; a search on the data score found no closer move"
        if self.search == "skipped":
            return ("; the model's converged solution lies far closer to the data than its samples, so the "
                    "teacher's figure guides it there and there was no search on the data")
        fresh = (f"data score on fresh samples {self.confirmation['searched']:.3g} against "
                 f"{self.confirmation['before']:.3g}")
        verdict = "confirmed that it lies clearly closer to the data" if self.searched else "did not confirm it"
        if self.searched_lists <= 1:
            words = (f"a search on the data score moved it {self.data_moves} times, "
                     f"{'and' if self.searched else 'but'} fresh samples {verdict} ({fresh})")
        else:
            words = (f"searches on the data score moved it to {self.searched_lists} different lists; fresh samples "
                     f"put the one {self.data_moves} move{'s' if self.data_moves > 1 else ''} away closest "
                     f"{'and' if self.searched else 'but'} {verdict} ({fresh})")
        return f"; then {words}" if self.searched else f"; {words}, so the search was dropped"

    def provenance(self):
        """What a schedule file records of this step count."""
        if self.replaced is not None:
            replaced = self.start if self.replaced == self.start else f"the refinement of {self.start}"
            words = f"{self.chosen}, closer to the data than {replaced}"
        else:
            words = kept_words(self.start, self.moves, self.chosen == REFINED_LABEL)
        return f"{words}, then {self.data_moves} moves on the data (confirmed)" if self.searched else words


def kept_words(start, moves, refined):
    """The provenance of a race winner kept, refined or not."""
    return f"{start}, {moves} refinement moves" if refined else f"{start}, unchanged"


def provenance_of(tuned):
    """What a schedule file records of one step count's result (a SolverStage dict); states saved
    before the data figure lack "provenance" (and before the data check, "refined")."""
    if tuned.get("provenance"):
        return tuned["provenance"]
    return kept_words(tuned["start"], tuned["moves"], tuned.get("refined", tuned["moves"] > 0))


def kind_of(label):
    return ("a hand-made schedule" if label in hand_made_labels() else
            "the GITS-style DP schedule" if label == GITS_LABEL else "a KLUB iterate")


def on_figure(figure):
    """coordinate_search's test of a trial: a lower teacher figure (`better`)."""
    return lambda trial, current: better(trial, current, figure)


def on_data(judged):
    """coordinate_search's test of a trial: a lower data score on the scale of `judged` (a
    data_figure.Judgement)."""
    return lambda trial, current: judged.value(trial) < judged.value(current)


def tune_steps(figure, steps, candidates, sigma_min, data_check=None, search_passes=0):
    """Race `candidates` (label -> sampling sigmas of `steps` steps), refine the winner; with a
    data_figure.DataCheck, choose among the plausible candidates and the refined schedule on the
    data, then search on the data (`data_searches(search_passes)`; see the module docstring)."""
    def spent():
        return figure.evaluations + (data_check.evaluations if data_check is not None else 0)

    before = spent()
    won = race(candidates, figure)
    refined, passes, moves = coordinate_search(won.sigmas, on_figure(figure), sigma_min)
    result = StepResult(steps, refined, won.name, float(figure.errors(won.sigmas, figure.chunks).mean()), 0.0,
                        passes, moves, 0)
    if data_check is not None:
        _choose_on_data(result, won, candidates, refined, data_check, sigma_min, figure.teacher.sigmas, search_passes)
    result.figure = float(figure.errors(result.sigmas, figure.chunks).mean())
    result.evaluations = spent() - before
    return result


def _choose_on_data(result, won, candidates, refined, data_check, sigma_min, teacher_sigmas, search_passes):
    """Steps 3 and 4 of the module docstring, on `result` (a StepResult of the race and refinement)."""
    every = {**candidates, **({REFINED_LABEL: refined} if result.moves else {})}
    converged = (TEACHER_SOLVER, teacher_sigmas)
    # `refined` is the race's pick: the winner itself where the refinement did not move it
    if data_check.stochastic and data_check.converged_closer(refined, converged):
        # The teacher leads an accurate model's deterministic solvers, but a stochastic one was raced on its
        # ODE counterpart's error, which ranks its schedules loosely (exact toy: the best on held-out data
        # had 2.6x the winner's figure), and the stage does not search here: the closest of all, on the wide check.
        _choose(result, won, data_check.judge_widely(every), take_closest=True)
        result.sigmas = np.asarray(every[result.chosen])
        result.search = "skipped" if search_passes else ""
        return
    pool = {name: every[name] for name in every
            if name == REFINED_LABEL or won.figures[name][0] <= PLAUSIBLE * won.figure}
    if len(pool) == 1 and not search_passes:  # nothing to choose from, nothing to search
        return
    judged = data_check.judge(pool)
    _choose(result, won, judged, take_closest=False)
    choice = np.asarray(every[result.chosen])
    result.sigmas = choice
    if not search_passes:
        return
    if data_check.converged_closer(choice, converged):
        result.search = "skipped"  # closing the gap to the teacher is the way to the data
        return
    found = search_on_data(choice, judged, data_check, sigma_min, data_searches(search_passes))
    if found is None:
        result.search = "no move"
        return
    result.data_moves, result.confirmation, result.searched_lists = found.moves, found.confirmation, found.lists
    result.search = "kept" if found.confirmed else "dropped"
    if result.searched:
        result.sigmas = found.sigmas


def _choose(result, won, judged, take_closest):
    """The choice among the schedules `judged` (a data_figure.Judgement): the refined schedule only where
    it lies closer than the race winner, another candidate only where it lies clearly closer than that
    (`take_closest`: wherever it lies closest)."""
    result.data, result.wide = judged.scores, take_closest
    if result.moves and judged.scores[REFINED_LABEL] >= judged.scores[won.name]:
        result.chosen = won.name
    closest = take_closest and math.isfinite(judged.scores[judged.best])  # else no sample of any was finite
    if judged.best != result.chosen and (closest or judged.clearly_closer(judged.best, result.chosen)):
        result.replaced, result.chosen = result.chosen, judged.best


@dataclass
class DataSearchResult:
    sigmas: np.ndarray   # the searched list that the fresh check scored lowest
    moves: int           # the moves its search kept
    lists: int           # distinct lists the searches moved to, all judged on the fresh check
    confirmation: dict   # {"searched": its score, "before": the choice's} on the fresh check
    confirmed: bool      # whether it lies clearly closer to the data than the choice there


def search_on_data(choice, judged, data_check, sigma_min, rules):
    """A DataSearchResult of coordinate searches from `choice` on `judged`'s data score, one per
    SearchRule in `rules` (trials they share are sampled once: DataCheck caches); None when none moved.
    Of the distinct lists they end on, the fresh check (other samples) picks the closest to the data:
    the lowest own score is the least of several minima found on the same samples, biased low most
    where the searches over-fit them. The same fresh samples then test the pick against `choice`,
    a milder bias of the same kind (at most three correlated lists), which the suite measures on
    other seeds."""
    found = {}  # name -> (schedule, moves), each distinct list once
    for rule in rules:
        searched, _, moves = coordinate_search(choice, on_data(judged), sigma_min, rule)
        if moves and not any(np.array_equal(searched, other) for other, _ in found.values()):
            found[f"search {len(found) + 1}"] = (searched, moves)
    if not found:
        return None
    fresh = data_check.confirm({name: searched for name, (searched, _) in found.items()})
    searched, moves = found[fresh.best]
    # the pick against the choice alone (both samples cached): the scale of a pool's distances is its best's
    confirmation = data_check.confirm({"searched": searched, "before": choice})
    return DataSearchResult(searched, moves, len(found), dict(confirmation.scores),
                            confirmation.clearly_closer("searched", "before"))


def hand_made_labels():
    return {label for label, _ in HAND_MADE}


def candidate_count(starts):
    """Most candidates raced per step count: the hand-made ones, the GITS-style one and up to three
    iterates (1, 3, last) of each KLUB descent (`starts` descents)."""
    return len(HAND_MADE) + 1 + 3 * starts


def planned_evaluations(solver, step_counts, candidates, teacher_samples):
    """(fewest, most) denoiser evaluations of the race and refinement over `step_counts`.
    Fewest: every comparison settles on the first chunk, the search stops after its three
    shortest passes, and the winner runs every chunk once. Most: every candidate and trial runs
    every chunk for MAX_PASSES passes."""
    from .samplers import sampler_nfe

    chunks = teacher_rows(teacher_samples) // CHUNK
    fewest_passes = _passes_to_min_width()
    fewest = most = 0
    for steps in step_counts:
        nfe = sampler_nfe(solver, steps)
        trials = 2 * (steps - 1)
        fewest += CHUNK * nfe * (candidates + (chunks - 1) + fewest_passes * trials)
        most += CHUNK * chunks * nfe * (candidates + MAX_PASSES * trials)
    return fewest, most


def teacher_evaluations(teacher_samples, teacher_steps, reused):
    """Denoiser evaluations of the teacher run (none when the data-free draws serve)."""
    from .samplers import sampler_nfe

    if reused:
        return 0
    return teacher_rows(teacher_samples) * sampler_nfe(TEACHER_SOLVER, teacher_steps)


def gits_evaluations(teacher_samples):
    """Denoiser evaluations of the GITS-style candidate's fine-grid run from the teacher's noise."""
    from .gits import GitsSettings, grid_run_evaluations

    return grid_run_evaluations(teacher_rows(teacher_samples), GitsSettings().grid_steps)


def teacher_rows(teacher_samples):
    """The teacher's samples rounded up to whole chunks (at least one)."""
    return max(1, math.ceil(teacher_samples / CHUNK)) * CHUNK


# ---------------------------------------------------------------- the stage, as the search runs it

def solver_stage_for(settings):
    """What search.optimize takes as `solver_stage` for `settings` (a RunSettings): a factory
    (denoiser, x0 source, sigma range, sample shape, device) -> SolverStage, or None when the
    settings do not ask for the stage (paper mode, or no early stopping)."""
    if not settings.solver_stage:
        return None

    def build(denoiser, source, sigma_range, shape, device, progress=False):
        return SolverStage(denoiser, settings, sigma_range, shape, device, source, progress)
    return build


def klub_candidates(history, steps):
    """Stage-0 KLUB iterates worth racing, resampled to `steps` steps ("ays" convention):
    iterations 1 and 3 and the last of each descent (iteration 0 is a hand-made start)."""
    from .interp import resample

    by_start = {}
    for entry in history:
        if entry["stage"] == 0:
            by_start.setdefault(entry["start"], []).append(entry)
    candidates = {}
    for name, entries in by_start.items():
        last = entries[-1]["iteration"]
        for entry in entries:
            if entry["iteration"] in (1, 3, last) and entry["iteration"] > 0:
                candidates[f"KLUB from {name}, iteration {entry['iteration']}"] = resample(
                    np.asarray(entry["sigmas"]), steps)
    return candidates


class SolverStage:
    """What the search runs after its KLUB descents (fast mode with early stopping): for each
    step count, the race of hand-made schedules and KLUB iterates on `solver`'s error against a
    teacher, and the refinement of the winner. Called once with the stage-0 history; returns
    {str(steps): result dict} (JSON, kept in the search's state file). Runs on rank 0."""

    def __init__(self, denoiser, settings, sigma_range, shape, device, source, progress=False):
        """settings: the run's RunSettings (solver, tuned step counts, teacher and data-search sizes)."""
        self.denoiser, self.solver, self.step_counts = denoiser, settings.solver, settings.tuned_steps()
        self.progress = progress
        self.teacher_options = (settings.teacher_samples, settings.seed, sigma_range, settings.reference_steps, shape,
                                device)
        self.search_passes = settings.data_search_passes
        self.source = source
        self.evaluations = 0

    def _reuse(self):
        """The data-free draws of a latent bank, when they start from this run's sigma_max."""
        hi = self.teacher_options[2][1]
        pairs = getattr(self.source, "teacher_pairs", None)
        start = getattr(self.source, "sigma_start", None)
        if pairs is None or start is None or abs(start - hi) > 1e-5 * hi:
            return None
        return pairs(self.teacher_options[0])

    def _data_check(self, bar):
        """A DataCheck against the x0 draws when they are data (images, a model's own data set),
        None when they are the model's own draws (a data-free bank: the teacher already is that)."""
        if getattr(self.source, "noise_seeds", None) is not None:
            return None
        _, seed, sigma_range, _, shape, device = self.teacher_options
        return data_figure.DataCheck(self.denoiser, self.solver, self.source, data_figure.SAMPLES, seed, sigma_range,
                                     shape, device, bar)

    def __call__(self, history):
        from . import distributed

        if not distributed.is_main():
            return distributed.broadcast_object(None)
        from tqdm import tqdm

        from .gits import Gits
        from .samplers import sampler_nfe

        teacher = make_teacher(self.denoiser, *self.teacher_options, reuse=self._reuse())
        judge = judged_solver(self.solver)
        lo, hi = teacher.sigma_range
        bar = tqdm(total=gits_evaluations(len(teacher.chunks) * CHUNK), desc="solver stage (at most)", unit="eval",
                   disable=not self.progress)
        # GITS-style DP from the teacher's own noise: the peer that beat the race's pool on the toys
        gits = Gits(self.denoiser, self.teacher_options[4], starts=[(x, cond) for x, _, _, cond in teacher.chunks],
                    sigma_range=(lo, hi), bar=bar)
        raced = {steps: {**hand_made(steps, lo, hi), GITS_LABEL: gits.sigmas(steps), **klub_candidates(history, steps)}
                 for steps in self.step_counts}
        # the total is the most the race and refinement can cost; they usually settle sooner
        bar.total += sum(planned_evaluations(judge, [steps], len(candidates), self.teacher_options[0])[1]
                         for steps, candidates in raced.items())
        figure = Figure(self.denoiser, judge, teacher, bar)
        how = "" if judge == self.solver else f" (judged on {judge}'s error, the ODE counterpart of {self.solver})"
        check = self._data_check(bar)
        if check is not None:
            bar.total += (data_figure.evaluations(self.solver, self.step_counts, len(next(iter(raced.values()))),
                                                  data_searches(self.search_passes))[1] +
                          data_figure.gate_evaluations(sampler_nfe(TEACHER_SOLVER, self.teacher_options[3]),
                                                       self.solver, self.search_passes))
        tuned = {}
        for steps, candidates in raced.items():
            result = tune_steps(figure, steps, candidates, lo, check, self.search_passes)
            tuned[str(steps)] = {"sigmas": result.sigmas.tolist(), "start": result.start,
                                 "start_figure": result.start_figure, "figure": result.figure,
                                 "passes": result.passes, "moves": result.moves, "hand_made": result.hand_made,
                                 "refined": result.refined, "chosen": result.chosen, "provenance": result.provenance(),
                                 "search": result.search, "data_moves": result.data_moves,
                                 "evaluations": result.evaluations,
                                 "summary": result.describe() + how}
        bar.close()
        self.evaluations += teacher.evaluations + gits.evaluations + figure.evaluations + (check.evaluations if check else 0)
        return distributed.broadcast_object(tuned)
