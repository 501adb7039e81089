"""The solver stage (ays_core.refine): racing, refinement, exact per-step schedules, teacher reuse."""
import math
import types

import numpy as np
import pytest
import torch

from ays_core import data_figure, refine
from ays_core.errors import AYSError
from ays_core.registry import Schedule, new_schedule_doc

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0


class ConstructedFigure(refine.Figure):
    """A figure with a known answer: per-sample error = distance of log-sigmas to `target` plus a
    per-sample offset shared by every schedule (paired, as real teacher errors are)."""

    def __init__(self, target, chunks=4):
        self.target = np.log(np.asarray(target[:-1]))
        self.offsets = np.random.default_rng(0).uniform(0, 0.1, (chunks, refine.CHUNK))
        self.teacher = refine.Teacher([None] * chunks, (SIGMA_MIN, SIGMA_MAX))
        self.evaluations = 0
        self._cache = {}

    def chunk_errors(self, sigmas, index):
        key = (np.asarray(sigmas).tobytes(), index)
        if key not in self._cache:
            self.evaluations += refine.CHUNK
            gap = np.sqrt(np.mean((np.log(np.asarray(sigmas[:-1])) - self.target) ** 2))
            self._cache[key] = gap + self.offsets[index]
        return self._cache[key]


def sampling(*values):
    return np.array([*values, 0.0])


def test_race_picks_the_best_and_stops_estimating_the_clear_losers():
    target = sampling(80, 10, 1, 0.1)
    figure = ConstructedFigure(target)
    candidates = {"far": sampling(80, 1, 0.1, 0.01), "near": sampling(80, 9, 1, 0.1), "exact": target}
    won = refine.race(candidates, figure)
    assert won.name == "exact" and won.figure == pytest.approx(np.mean(figure.offsets[:won.chunks]))
    # the paired differences have no spread: settled after the first chunk, nobody runs more
    assert won.chunks == 1 and won.figures["far"][1] == won.figures["near"][1] == 1
    assert figure.evaluations == 3 * refine.CHUNK


def test_coordinate_search_only_goes_down_and_approaches_a_known_optimum():
    target = sampling(80, 12, 2.5, 0.4, 0.05)
    figure = ConstructedFigure(target)
    start = sampling(80, 3, 1, 0.3, 0.01)
    start_value = figure.errors(start, 4).mean()
    result, passes, moves = refine.coordinate_search(start, refine.on_figure(figure), SIGMA_MIN, refine.SearchRule(passes=50))
    final = figure.errors(result, 4).mean()
    offset = np.mean(figure.offsets)
    assert moves > 0 and final < start_value
    assert final - offset < 0.25 * (start_value - offset)   # most of the way to the optimum
    assert result[0] == 80 and result[-1] == 0 and np.all(np.diff(result[:-1]) < 0)
    assert result[-2] > SIGMA_MIN


@pytest.mark.parametrize("pushes, target, moved, tried", [(0, 79, 1, 4), (3, 79, 4, 7), (3, 50, 2, 6)])
def test_a_kept_move_is_pushed_on_in_its_direction_while_it_improves(pushes, target, moved, tried):
    # only sigma 1 matters: each move up halves its log-gap to 80 (10 -> 28.3 -> 47.6 -> 61.7 ...),
    # so one pass moves it until the next move would not come closer to the target, at most 1 + pushes
    # times; trials: its move down, its moves up, the first push that fails (then no more), sigma 2's two
    trials = []

    def improves(trial, current):
        trials.append(trial)
        return abs(math.log(trial[1] / target)) < abs(math.log(current[1] / target))

    result, passes, moves = refine.coordinate_search(sampling(80, 10, 1), improves, SIGMA_MIN, refine.SearchRule(1, pushes))
    assert passes == 1 and moves == moved and len(trials) == tried
    assert result[1] == pytest.approx(80 * 8 ** -(1 / 2 ** moved))
    assert list(result[2:]) == [1, 0]


@pytest.mark.parametrize("pushes, widths", [(0, (1.0,)), (3, (1.0,)), (0, (1.0, 0.5)), (3, (1.0, 0.5))])
def test_a_pass_tries_at_most_both_directions_at_each_width_and_the_pushes_per_point(pushes, widths):
    # the plan's most (data_figure.evaluations): every point refuses its move down at every width and its
    # moves up at every width but the last, then keeps the last width's move up and every push
    trials, ups = [], {}

    def improves(trial, current):
        trials.append(trial)
        index = int(np.flatnonzero(trial != current)[0])
        up = bool(trial[index] > current[index])
        ups[index] = ups.get(index, 0) + up
        return up and ups[index] >= len(widths)

    result, _, moves = refine.coordinate_search(sampling(80, 20, 5, 1, 0.2), improves, SIGMA_MIN,
                                                 refine.SearchRule(1, pushes, widths))
    assert len(trials) == (2 * len(widths) + pushes) * 4 and moves == (1 + pushes) * 4
    assert np.all(np.diff(result[:-1]) < 0) and result[-2] > SIGMA_MIN


def test_a_point_tries_half_the_width_when_no_move_of_the_full_width_improves():
    # sigma 1 = 10 between 80 and 1; its target 16: half the log-gap up (28.3, the first pass's width
    # START_WIDTH = 0.5) overshoots, a quarter (16.8) comes closer. One pass with the full width alone
    # moves nothing; with (1, 0.5) it takes the quarter
    assert refine.START_WIDTH == 0.5

    def improves(trial, current):
        return abs(math.log(trial[1] / 16)) < abs(math.log(current[1] / 16))

    alone, _, moves_alone = refine.coordinate_search(sampling(80, 10, 1), improves, SIGMA_MIN, refine.SearchRule(1))
    both, _, moves_both = refine.coordinate_search(sampling(80, 10, 1), improves, SIGMA_MIN,
                                                      refine.SearchRule(1, 0, (1.0, 0.5)))
    assert moves_alone == 0 and alone[1] == 10
    assert moves_both == 1 and both[1] == pytest.approx(10 * 8 ** 0.25)


def test_a_width_that_halves_every_pass_reaches_what_the_width_alone_does_not():
    # sigma 1 = 10 between 80 and 1, target 2.8: the first pass's half log-gap down reaches 10^0.5 = 3.16
    # (the push on to 1.78 overshoots); the width alone then finds nothing closer. Halving every pass, the
    # second pass's quarter (2.37) overshoots too, and the third's eighth reaches 10^0.4375 = 2.74
    def improves(trial, current):
        return abs(math.log(trial[1] / 2.8)) < abs(math.log(current[1] / 2.8))

    alone, _, alone_moves = refine.coordinate_search(sampling(80, 10, 1), improves, SIGMA_MIN, refine.SearchRule(3, 3))
    halving, passes, moves = refine.coordinate_search(sampling(80, 10, 1), improves, SIGMA_MIN,
                                                      refine.SearchRule(3, 3, halves_every_pass=True))
    assert alone_moves == 1 and alone[1] == pytest.approx(10 ** 0.5)
    assert passes == 3 and moves == 2 and halving[1] == pytest.approx(10 ** 0.4375)


def test_a_width_that_halves_every_pass_ends_below_the_least_width_and_the_plan_counts_so():
    # every trial improves: the width alone runs every pass, the halving one stops after 0.5, 0.25, 0.125
    assert refine.START_WIDTH == 0.5 and refine.MIN_WIDTH == 0.1
    for rule, expected in ((refine.SearchRule(6), 6), (refine.SearchRule(6, halves_every_pass=True), 3)):
        _, passes, _ = refine.coordinate_search(sampling(80, 10, 1), lambda trial, current: True, SIGMA_MIN, rule)
        assert passes == rule.most_passes() == expected


def test_the_searches_on_the_data():
    assert refine.data_searches(0) == ()
    alone, retries, halving = refine.data_searches(2)
    assert (alone.passes, alone.widths, alone.halves_every_pass) == (2, (1.0,), False)
    assert (retries.passes, retries.widths, retries.halves_every_pass) == (2, (1.0, 0.5), False)
    assert (halving.passes, halving.widths, halving.halves_every_pass) == (3, (1.0,), True)
    assert {rule.pushes for rule in (alone, retries, halving)} == {data_figure.SEARCH_PUSHES}


@pytest.mark.parametrize("order", [((1.0,), (0.5,)), ((0.5,), (1.0,))])
@pytest.mark.parametrize("fresh_at", [28, 24])
def test_the_fresh_check_picks_among_the_lists_the_searches_end_on_in_any_order(order, fresh_at):
    # sigma 1's data lie at 28 on the search's own samples: the full width reaches 28.3 in one move, half
    # widths take 16.8 then 24.8 (two moves); the fresh check's data lie at `fresh_at`. Its pick, not the
    # lowest own score, is the result
    start = sampling(80, 10, 1)
    check = LogDistanceJudge(sampling(80, 28, 1), fresh_like=sampling(80, fresh_at, 1))
    found = refine.search_on_data(start, check.judge({"start": start}), check, SIGMA_MIN,
                                  [refine.SearchRule(1, 3, widths) for widths in order])
    expected, moves = (math.sqrt(800), 1) if fresh_at == 28 else (10 * 8 ** 0.25 * (80 / (10 * 8 ** 0.25)) ** 0.25, 2)
    assert found.lists == 2 and found.moves == moves and found.sigmas[1] == pytest.approx(expected)
    assert found.confirmed and found.confirmation["searched"] < found.confirmation["before"]
    assert found.confirmation["searched"] == pytest.approx(abs(math.log(expected / fresh_at)) / math.sqrt(3))


def test_a_list_two_searches_end_on_is_judged_once_and_no_move_is_no_result():
    start = sampling(80, 10, 1)
    check = LogDistanceJudge(sampling(80, 28, 1))
    found = refine.search_on_data(start, check.judge({"start": start}), check, SIGMA_MIN,
                                  [refine.SearchRule(1, 3), refine.SearchRule(2, 3)])
    assert found.lists == 1 and found.moves == 1 and check.confirmed == [{"search 1"}, {"searched", "before"}]
    at_start = LogDistanceJudge(start)
    assert refine.search_on_data(start, at_start.judge({"start": start}), at_start, SIGMA_MIN,
                                 [refine.SearchRule(1, 3)]) is None and at_start.confirmed == []


def test_trial_schedule_moves_within_the_neighbours():
    sigmas = sampling(80, 10, 1)
    up = refine.trial_schedule(sigmas, 1, +1, 0.5, SIGMA_MIN)
    down = refine.trial_schedule(sigmas, 2, -1, 0.5, SIGMA_MIN)
    assert up[1] == pytest.approx(math.sqrt(80 * 10))          # half the log-gap to 80
    assert down[2] == pytest.approx(math.sqrt(1 * SIGMA_MIN))  # half the log-gap to sigma_min


def test_plan_counts_the_fewest_and_most_evaluations():
    fewest, most = refine.planned_evaluations("euler", [3], candidates=5, teacher_samples=2 * refine.CHUNK)
    trials = 2 * (3 - 1)
    # fewest: 5 candidates x 1 chunk, the winner's 2nd chunk, 3 passes (widths 1/2, 1/4, 1/8) of 4 trials
    # x 1 chunk; 3 calls each
    assert fewest == refine.CHUNK * 3 * (5 + 1 + 3 * trials)
    assert most == 2 * refine.CHUNK * 3 * (5 + refine.MAX_PASSES * trials)
    assert refine.teacher_evaluations(16, 100, reused=True) == 0
    assert refine.teacher_evaluations(16, 100, reused=False) == 16 * 100  # DPM++ 2M: one call per step
    assert [refine.judged_solver(s) for s in ("euler", "euler_ancestral", "dpmpp_2m_sde")] == \
        ["euler", "euler", "dpmpp_2m"]


def schedule_with(step_schedules):
    sigmas = np.exp(np.linspace(np.log(SIGMA_MAX), np.log(SIGMA_MIN), 11))
    doc = new_schedule_doc("x", sigmas, family="edm", prediction="edm", source="optimized", solver="euler",
                           samples=1, data="test", step_schedules=step_schedules)
    return Schedule(doc), sigmas


def test_a_schedule_made_for_n_steps_is_used_exactly_in_both_conventions():
    schedule, sigmas = schedule_with({4: [80.0, 5.0, 0.5, 0.01]})
    for convention in ("ays", "a1111"):
        assert np.allclose(schedule.resample(4, convention=convention), [80, 5, 0.5, 0.01, 0])
    # other step counts resample the stored list: 5 steps, "ays" = 6 log-evenly spaced values, last -> 0
    expected = np.exp(np.linspace(np.log(80), np.log(0.002), 6))
    expected[-1] = 0
    assert np.allclose(schedule.resample(5), expected)
    # another range maps the exact list with the stored list's log-affine map: [0.002, 80] -> [0.02, 8]
    mapped = schedule.resample(4, sigma_min=0.02, sigma_max=8.0)
    scale = (math.log(8) - math.log(0.02)) / (math.log(80) - math.log(0.002))
    manual = [math.exp(math.log(0.02) + (math.log(v) - math.log(0.002)) * scale) for v in (80, 5, 0.5, 0.01)]
    assert np.allclose(mapped, [*manual, 0])
    assert np.allclose(schedule.resample(4, denoise=0.5), [0.5, 0.01, 0])


@pytest.mark.parametrize("exact,message", [
    ([80.0, 5.0, 0.5], "must hold 4"), ([80.0, 0.5, 5.0, 0.01], "descending"), ([70.0, 5.0, 0.5, 0.01], "start"),
    ([80.0, 5.0, 0.5, 0.001], "above"),
])
def test_bad_step_schedules_are_refused(exact, message):
    with pytest.raises(AYSError, match=message):
        schedule_with({4: exact})


@pytest.mark.parametrize("counts", ["1", "4,x", "101"])
def test_bad_step_counts_are_refused(counts):
    from ays_core.settings import RunSettings

    with pytest.raises(AYSError, match="step_counts"):
        RunSettings(step_counts=counts).check()
    assert RunSettings(steps=10, step_counts="8, 4,8").tuned_steps() == [4, 8, 10]


def test_data_free_draws_give_their_starting_noise_back():
    from ays_core.data import LatentBank

    latents = torch.randn(3, 4, 2, 2)
    bank = LatentBank(latents, torch.tensor([0, 1, 0]), ["a", "b"], "test", noise_seeds=torch.tensor([7, 8, 9]),
                      sigma_start=14.6)
    noise, x0, cond = bank.teacher_pairs(2)
    expected = torch.randn((4, 2, 2), generator=torch.Generator().manual_seed(8)) * 14.6
    assert torch.equal(noise[1], expected) and torch.equal(x0, latents[:2])
    assert cond["cond_index"].tolist() == [0, 1]
    assert LatentBank(latents, torch.zeros(3, dtype=torch.long), ["a"], "images").teacher_pairs(2) is None


def tuned_on_the_toy(solver, steps):
    """The stage's result for `solver` at `steps` (its only step count) on the exact toy, and w2: the
    sliced W2 of `solver`'s samples of a schedule, from noise the stage never saw, to fresh true
    samples (a distribution metric the stage never computed)."""
    from ays_core.metrics import sliced_wasserstein
    from ays_core.models.toy import GridMixtureToy
    from ays_core.samplers import initial_noise, run_sampler
    from ays_core.search import optimize
    from ays_core.settings import RunSettings

    toy = GridMixtureToy()
    settings = RunSettings(steps=steps, solver=solver, refine=0, step_counts="")
    result = optimize(toy, settings, progress=False, solver_stage=refine.solver_stage_for(settings))
    assert list(result.tuned) == [str(steps)]
    x = initial_noise((2,), 2000, SIGMA_MAX, 1000)
    real = toy.sample_data(4000, generator=torch.Generator().manual_seed(5))

    def w2(sigmas):
        return sliced_wasserstein(run_sampler(toy, solver, sigmas, x, 1000, (SIGMA_MIN, SIGMA_MAX))[0], real)
    return result.tuned[str(steps)], w2


def test_the_tuned_schedule_beats_karras_and_exponential_on_fresh_noise_and_another_metric():
    from ays_core.bench import schedule_sigmas

    tuned, w2 = tuned_on_the_toy("euler", 6)
    for name in ("karras", "exponential"):
        assert w2(tuned["sigmas"]) < w2(schedule_sigmas(name, 6, SIGMA_MIN, SIGMA_MAX))


def test_a_stochastic_solvers_schedule_beats_the_race_pick_of_its_ode_counterpart_on_fresh_noise_and_data():
    from ays_core.bench import schedule_sigmas

    tuned, w2 = tuned_on_the_toy("euler_ancestral", 10)
    # on euler's error the race picks kl_optimal:ays (and refines it); Euler ancestral's own samples say otherwise
    assert tuned["start"] == "kl_optimal:ays" and "judged on 2048 samples" in tuned["summary"]
    for name in ("kl_optimal:ays", "karras", "exponential"):
        assert w2(tuned["sigmas"]) < w2(schedule_sigmas(name, 10, SIGMA_MIN, SIGMA_MAX))


class LogDistanceJudge:
    """A data figure with a known answer: a schedule's score is its RMS log-sigma distance to the
    schedule `data_like`; "clearly closer" means closer by more than `margin`. Its fresh check
    (`confirm`) measures the distance to `fresh_like` (default: the same schedule)."""

    def __init__(self, data_like, margin=0.0, fresh_like=None):
        self.target, self.margin = np.log(np.asarray(data_like[:-1])), margin
        self.fresh_target = self.target if fresh_like is None else np.log(np.asarray(fresh_like[:-1]))
        self.judged, self.confirmed, self.widely, self.sampled = [], [], [], set()

    @property
    def evaluations(self):  # one per schedule sampled, as the real check's cache counts them
        return len(self.sampled)

    def distance(self, sigmas, target, fresh=False):
        self.sampled.add((np.asarray(sigmas).tobytes(), fresh))
        return float(np.sqrt(np.mean((np.log(np.asarray(sigmas[:-1])) - target) ** 2)))

    def judgement(self, pool, target, fresh=False):
        scores = {n: self.distance(s, target, fresh) for n, s in pool.items()}
        margin = self.margin
        return types.SimpleNamespace(scores=scores, best=min(scores, key=scores.get),
                                     value=lambda sigmas: self.distance(sigmas, target, fresh),
                                     clearly_closer=lambda a, b: scores[a] < scores[b] - margin)

    def judge(self, pool):
        self.judged.append(set(pool))
        return self.judgement(pool, self.target)

    def confirm(self, pool):
        self.confirmed.append(set(pool))
        return self.judgement(pool, self.fresh_target, fresh=True)

    def judge_widely(self, pool):
        self.widely.append(set(pool))
        return self.judgement(pool, self.target)

    converged_is_closer = False
    stochastic = False

    def converged_closer(self, sigmas, reference):
        return self.converged_is_closer


@pytest.mark.parametrize("data_at_start", [True, False])
def test_a_refinement_is_kept_only_when_its_samples_lie_closer_to_the_data(data_at_start):
    start, teacher_optimum = sampling(80, 3, 1, 0.3, 0.01), sampling(80, 12, 2.5, 0.4, 0.05)
    figure = ConstructedFigure(teacher_optimum)
    check = LogDistanceJudge(start if data_at_start else teacher_optimum)
    result = refine.tune_steps(figure, 4, {"karras": start}, SIGMA_MIN, check)
    assert result.moves > 0 and check.judged == [{"karras", refine.REFINED_LABEL}]
    assert result.data["karras"] == (0.0 if data_at_start else pytest.approx(check.judge({"s": start}).scores["s"]))
    if data_at_start:  # the refinement went toward the teacher, away from the data: undone
        assert not result.refined and np.array_equal(result.sigmas, start) and result.hand_made
        assert result.figure == pytest.approx(figure.errors(start, 4).mean())
        assert "kept unchanged" in result.describe() and "karras" in result.describe()
        assert result.provenance() == "karras, unchanged"
    else:
        assert result.refined and not result.hand_made and result.chosen == refine.REFINED_LABEL
        assert result.data[refine.REFINED_LABEL] < result.data["karras"]
        assert result.figure < figure.errors(start, 4).mean()
        assert result.provenance() == f"karras, {result.moves} refinement moves"
    assert result.evaluations == figure.evaluations + check.evaluations


@pytest.mark.parametrize("margin, replaced", [(0.0, True), (10.0, False)])
def test_a_candidate_clearly_closer_to_the_data_replaces_the_race_winner(margin, replaced):
    teacher_optimum = sampling(80, 12, 2.5, 0.4, 0.05)
    data_like = sampling(80, 11.5, 2.4, 0.38, 0.05)  # figure 0.085: within PLAUSIBLE of the winner's 0.05
    far = sampling(80, 0.5, 0.2, 0.1, 0.02)          # figure 2.4: not plausible, never sampled on the data
    candidates = {"karras": teacher_optimum, "beta": data_like, "kl_optimal": far}
    figure = ConstructedFigure(teacher_optimum)
    check = LogDistanceJudge(data_like, margin)
    result = refine.tune_steps(figure, 4, candidates, SIGMA_MIN, check)
    assert result.start == "karras" and result.moves == 0  # the race winner is the teacher's optimum
    assert check.judged == [{"karras", "beta"}]
    if replaced:
        assert result.chosen == "beta" and np.array_equal(result.sigmas, data_like) and result.hand_made
        assert "beta lie clearly closer to the data" in result.describe()
        assert result.provenance() == "beta, closer to the data than karras"
        assert result.figure == pytest.approx(figure.errors(data_like, 4).mean())
    else:  # closer, but not clearly: the race winner stays
        assert result.chosen == "karras" and np.array_equal(result.sigmas, teacher_optimum)
        assert result.provenance() == "karras, unchanged"


def test_a_clearly_closer_candidate_replaces_the_winner_after_an_undone_refinement():
    start, teacher_optimum = sampling(80, 3, 1, 0.3, 0.01), sampling(80, 12, 2.5, 0.4, 0.05)
    data_like = sampling(80, 2.5, 0.8, 0.25, 0.008)  # behind the winner (figure 1.2 vs 1.0), where the data are
    figure = ConstructedFigure(teacher_optimum)
    check = LogDistanceJudge(data_like)
    result = refine.tune_steps(figure, 4, {"karras": start, "beta": data_like}, SIGMA_MIN, check)
    assert result.start == "karras" and result.moves > 0
    # the refinement went toward the teacher; karras is nearer the data than the refined schedule, and
    # beta is nearer still: it replaces the refinement's choice (karras) and says so
    assert result.chosen == "beta" and result.replaced == "karras" and np.array_equal(result.sigmas, data_like)
    assert result.provenance() == "beta, closer to the data than karras"
    words = result.describe()
    assert "refinement moved it" not in words and "beta lie clearly closer" in words


def test_a_candidate_replacing_the_refined_schedule_names_the_refinement():
    winner = sampling(80, 12, 2.5, 0.4, 0.05)
    result = refine.StepResult(4, winner, "karras", 0.1, 0.2, 2, 3, 100, chosen="beta",
                               data={"karras": 0.5, refine.REFINED_LABEL: 0.3, "beta": 0.0}, replaced=refine.REFINED_LABEL)
    assert result.provenance() == "beta, closer to the data than the refinement of karras"
    assert "refinement moved it 3 times" in result.describe() and "against 0.3" in result.describe()
    assert not result.refined and result.hand_made


@pytest.mark.parametrize("tuned, words", [
    ({"start": "karras", "moves": 0, "provenance": "beta, closer to the data than karras"},
     "beta, closer to the data than karras"),
    ({"start": "karras", "moves": 3, "refined": False}, "karras, unchanged"),  # a state saved before "provenance"
    ({"start": "karras", "moves": 3, "refined": True}, "karras, 3 refinement moves"),
    ({"start": "karras", "moves": 3}, "karras, 3 refinement moves"),  # ... and before "refined"
])
def test_the_schedule_file_records_what_each_step_count_became(tuned, words):
    assert refine.provenance_of(tuned) == words


def test_the_stage_searches_on_the_data_with_half_width_retries_too():
    # sigma 1 = 10 (between 80 and 1) has its data at 5.7, sigma 2 = 1 at sqrt(SIGMA_MIN) = 0.045. In one
    # pass only the half-width retries reach 10^0.75 = 5.62 (a quarter of the log-gap to 1) before sigma 2
    # moves down: afterwards a quarter of the gap to 0.045 overshoots, which is all the halving search's
    # second pass tries, and the width alone has no second pass
    start = sampling(80, 10, 1)
    data_like = sampling(80, 5.7, math.sqrt(SIGMA_MIN))
    result = refine.tune_steps(ConstructedFigure(start), 2, {"karras": start}, SIGMA_MIN, LogDistanceJudge(data_like),
                               search_passes=1)
    assert result.moves == 0 and result.data_moves == 2 and result.searched
    assert result.sigmas[1] == pytest.approx(10 ** 0.75) and result.sigmas[2] == pytest.approx(math.sqrt(SIGMA_MIN))


def test_the_stage_searches_on_the_data_with_a_width_that_halves_every_pass_too():
    # sigma 1's data lie at 2.8 (between 80 and 1): only the search whose width halves every pass, with
    # its one pass more, reaches 10^0.4375 = 2.74 in the default 2 passes (see the test of coordinate_search)
    start = sampling(80, 10, 1, 0.1, 0.02)
    data_like = sampling(80, 2.8, 1, 0.1, 0.02)
    result = refine.tune_steps(ConstructedFigure(start), 4, {"karras": start}, SIGMA_MIN, LogDistanceJudge(data_like),
                               search_passes=2)
    assert result.moves == 0 and result.data_moves == 2 and result.searched
    assert result.sigmas[1] == pytest.approx(10 ** 0.4375) and list(result.sigmas[2:]) == [1, 0.1, 0.02, 0]
    assert result.searched_lists == 2 and ("moved it to 2 different lists; fresh samples put the one 2 moves away "
                                           "closest and confirmed") in result.describe()


@pytest.mark.parametrize("confirmed", [True, False])
def test_the_search_on_the_data_moves_toward_the_data_and_is_kept_only_when_fresh_samples_confirm(confirmed):
    teacher_optimum = sampling(80, 12, 2.5, 0.4, 0.05)
    data_like = sampling(80, 4, 0.8, 0.1, 0.02)  # not a candidate: only the search can get near it
    figure = ConstructedFigure(teacher_optimum)
    check = LogDistanceJudge(data_like, fresh_like=None if confirmed else teacher_optimum)
    result = refine.tune_steps(figure, 4, {"karras": teacher_optimum}, SIGMA_MIN, check, search_passes=2)
    assert result.start == result.chosen == "karras" and result.moves == 0 and result.data_moves > 0
    assert result.confirmation["searched"] != result.confirmation["before"]

    def to_data(sigmas):
        return np.sqrt(np.mean((np.log(sigmas[:-1]) - np.log(data_like[:-1])) ** 2))
    assert result.search == ("kept" if confirmed else "dropped")
    if confirmed:
        # the known optimum of the data score is data_like: the search got closer to it than the
        # start, in at most 2 passes of halving moves
        assert result.searched and result.refined and not result.hand_made
        assert to_data(result.sigmas) < 0.7 * to_data(teacher_optimum)
        assert result.figure == pytest.approx(figure.errors(result.sigmas, 4).mean())
        assert result.provenance() == f"karras, unchanged, then {result.data_moves} moves on the data (confirmed)"
        assert "confirmed that it lies clearly closer to the data" in result.describe()
        assert "the result is the searched schedule" in result.describe()
    else:  # the fresh check's data lie where the teacher's optimum is: the search over-fitted, dropped
        assert not result.searched and result.hand_made and np.array_equal(result.sigmas, teacher_optimum)
        assert result.provenance() == "karras, unchanged"
        assert "did not confirm" in result.describe() and "this is a hand-made schedule" in result.describe()
    assert result.evaluations == figure.evaluations + check.evaluations


@pytest.mark.parametrize("why", ["converged closer", "no passes", "already there"])
def test_no_search_on_the_data_where_the_converged_solution_is_far_closer_or_none_is_asked(why):
    teacher_optimum, data_like = sampling(80, 12, 2.5, 0.4, 0.05), sampling(80, 4, 0.8, 0.1, 0.02)
    figure = ConstructedFigure(teacher_optimum)
    check = LogDistanceJudge(teacher_optimum if why == "already there" else data_like)
    check.converged_is_closer = why == "converged closer"
    result = refine.tune_steps(figure, 4, {"karras": teacher_optimum}, SIGMA_MIN, check,
                               search_passes=0 if why == "no passes" else 2)
    assert result.data_moves == 0 and not result.searched and np.array_equal(result.sigmas, teacher_optimum)
    assert result.search == {"converged closer": "skipped", "no passes": "", "already there": "no move"}[why]
    assert ("found no closer move" in result.describe()) == (why == "already there")
    assert ("converged solution lies far closer" in result.describe()) == (why == "converged closer")
    assert result.provenance() == "karras, unchanged"
    assert check.widely == [] and "2048" not in result.describe()  # a deterministic solver: never the wide check


@pytest.mark.parametrize("converged_closer", [True, False])
def test_a_stochastic_solver_takes_the_closest_of_every_candidate_where_the_model_is_accurate(converged_closer):
    teacher_optimum, data_like = sampling(80, 12, 2.5, 0.4, 0.05), sampling(80, 4, 0.8, 0.1, 0.02)
    candidates = {"karras": teacher_optimum, "exponential": data_like}
    figure = ConstructedFigure(teacher_optimum)
    check = LogDistanceJudge(data_like, margin=10.0)  # never "clearly" closer
    check.stochastic, check.converged_is_closer = True, converged_closer
    result = refine.tune_steps(figure, 4, candidates, SIGMA_MIN, check, search_passes=2)
    far = figure.errors(data_like, figure.chunks).mean()
    assert far > refine.PLAUSIBLE * figure.errors(teacher_optimum, figure.chunks).mean()  # outside the usual pool
    if converged_closer:  # the race only proposed: every candidate on the wide check, the closest taken, no search
        assert check.widely == [{"karras", "exponential"}] and check.judged == [] and check.confirmed == []
        assert result.chosen == "exponential" and np.array_equal(result.sigmas, data_like)
        assert result.search == "skipped" and result.provenance() == "exponential, closer to the data than karras"
        words = result.describe()
        assert "exponential lie closest to the data" in words and "all 2 schedules were judged on 2048 samples" in words
    else:  # the model misses its data: the usual choice among the plausible, then the search from it
        assert check.widely == [] and check.judged == [{"karras"}] and result.chosen == "karras"
        assert result.search in ("kept", "dropped", "no move") and "2048" not in result.describe()


@pytest.mark.parametrize("passes", [0, 2])
def test_on_the_wide_check_a_refined_schedule_closest_to_the_data_is_kept(passes):
    teacher_optimum, far = sampling(80, 12, 2.5, 0.4, 0.05), sampling(80, 4, 0.8, 0.1, 0.02)
    start = sampling(80, 9, 2.0, 0.3, 0.03)
    figure = ConstructedFigure(teacher_optimum)
    check = LogDistanceJudge(teacher_optimum, margin=10.0)  # the data lie where the teacher leads
    check.stochastic = check.converged_is_closer = True
    result = refine.tune_steps(figure, 4, {"karras": start, "exponential": far}, SIGMA_MIN, check,
                               search_passes=passes)
    assert result.moves > 0 and check.widely == [{"karras", "exponential", refine.REFINED_LABEL}]
    assert result.chosen == refine.REFINED_LABEL and result.replaced is None and result.refined
    assert result.search == ("skipped" if passes else "") and check.judged == []
    assert result.provenance() == f"karras, {result.moves} refinement moves"
    assert "its samples lie closer to the data" in result.describe() and "judged on 2048 samples" in result.describe()


@pytest.mark.parametrize("data", ["the model's own", "narrow"])
def test_a_stochastic_solvers_choice_on_a_real_check_spends_within_its_plan(data):
    from ays_core.bench import schedule_sigmas
    from ays_core.data_figure import DataCheck
    from ays_core.models.toy import GaussianToy
    from ays_core.samplers import sampler_nfe

    d = 4
    toy = GaussianToy(c=0.5, d=d)

    def narrow(n, generator):
        return 0.1 * torch.randn(n, d, generator=generator, dtype=torch.float64)
    check = DataCheck(toy, "euler_ancestral", toy.sample_data if data == "the model's own" else narrow,
                      data_figure.SAMPLES, 0, (SIGMA_MIN, SIGMA_MAX), (d,), "cpu")
    candidates = {name: np.asarray(schedule_sigmas(name, 4, SIGMA_MIN, SIGMA_MAX), dtype=np.float64)
                  for name in ("karras", "exponential", "kl_optimal:ays")}
    figure = ConstructedFigure(candidates["karras"])
    figure.teacher.sigmas = np.asarray(schedule_sigmas("karras", 100, SIGMA_MIN, SIGMA_MAX))
    result = refine.tune_steps(figure, 4, candidates, SIGMA_MIN, check, search_passes=1)
    assert result.wide == (data == "the model's own")  # the model matches its own data, not the narrow ones
    gate = data_figure.gate_evaluations(sampler_nfe(refine.TEACHER_SOLVER, 100), "euler_ancestral", 1)
    fewest, most = data_figure.evaluations("euler_ancestral", [4], len(candidates), refine.data_searches(1))
    assert fewest <= check.evaluations - gate <= most


def test_the_closest_is_not_taken_where_no_schedule_sampled_finitely():
    result = refine.StepResult(4, sampling(80, 1, 0.1), "karras", 0.1, 0.1, 1, 0, 0)
    judged = types.SimpleNamespace(scores={"karras": math.inf, "exponential": math.inf}, best="exponential",
                                   clearly_closer=lambda name, other: False)
    refine._choose(result, types.SimpleNamespace(name="karras"), judged, take_closest=True)
    assert result.chosen == "karras" and result.replaced is None


def test_the_wide_check_uses_other_noise_and_draws_and_keeps_no_samples(monkeypatch):
    from ays_core.data_figure import confirmation_seed, wide_seed

    monkeypatch.setattr(data_figure, "WIDE_SAMPLES", 96)
    toy, check = gaussian_check(64)
    one, two = sampling(SIGMA_MAX, 1.0, SIGMA_MIN), sampling(SIGMA_MAX, 3.0, 0.1, SIGMA_MIN)
    judged = check.judge_widely({"one": one, "two": two})
    assert set(judged.scores) == {"one", "two"} and check.wide.seed == wide_seed(0)
    assert len({wide_seed(0), confirmation_seed(0), 0}) == 3 and len(check.wide.noise) == 96
    assert not torch.equal(check.wide.noise[:64], check.noise) and len(check.wide.data[0]) == 96
    assert check.wide._projected == {}
    judged.clearly_closer("two", "one")  # the Judgement keeps what its bootstrap needs: nothing sampled again
    assert check.wide._projected == {}
    assert check.evaluations == 96 * (3 + 4)  # one (3 steps) and two (4 steps), on the wide check only
    assert check.stochastic is False and data_figure.DataCheck(toy, "euler_ancestral", toy.sample_data, 8, 0,
                                                               (SIGMA_MIN, SIGMA_MAX), (4,), "cpu").stochastic


def test_the_converged_solution_is_far_closer_only_where_the_model_matches_its_data():
    from ays_core.bench import schedule_sigmas
    from ays_core.data_figure import DataCheck
    from ays_core.models.toy import GaussianToy

    c, d = 0.5, 4
    toy = GaussianToy(c=c, d=d)
    reference = (refine.TEACHER_SOLVER, np.asarray(schedule_sigmas("karras", 100, SIGMA_MIN, SIGMA_MAX)))
    # two Euler steps 80 -> s -> 0 on this exact denoiser scale a noise of std 80 to std c^2 s / (c^2 + s^2)
    # (to first order in c^2 / 80^2): s = 2.396 gives 0.1, s = SIGMA_MIN about 0
    to_narrow, to_nothing = sampling(SIGMA_MAX, 2.396, 0.0)[[0, 1, 3]], sampling(SIGMA_MAX, SIGMA_MIN)

    def narrow_data(n, generator):
        return 0.1 * torch.randn(n, d, generator=generator, dtype=torch.float64)

    def check(draw):
        return DataCheck(toy, "euler", draw, 512, 0, (SIGMA_MIN, SIGMA_MAX), (d,), "cpu")
    # the model's own data: its converged solution samples them, and beats both schedules by far
    assert check(toy.sample_data).converged_closer(to_narrow, reference)
    assert check(toy.sample_data).converged_closer(to_nothing, reference)
    # data of std 0.1, which the model (std 0.5) misses: its converged solution lies farther from them
    # than the schedule that lands on std 0.1, and even than the one that collapses to 0
    assert not check(narrow_data).converged_closer(to_narrow, reference)
    assert not check(narrow_data).converged_closer(to_nothing, reference)
    assert not check(toy.sample_data).converged_closer(to_narrow, None)


def test_on_data_the_model_misses_the_search_moves_its_samples_toward_them():
    from ays_core.bench import schedule_sigmas
    from ays_core.data_figure import DataCheck
    from ays_core.models.toy import GaussianToy
    from ays_core.samplers import initial_noise, run_sampler

    d = 4
    toy = GaussianToy(c=0.5, d=d)  # the model's data have std 0.5; the x0 draws std 0.1

    def narrow_data(n, generator):
        return 0.1 * torch.randn(n, d, generator=generator, dtype=torch.float64)
    check = DataCheck(toy, "euler", narrow_data, 512, 0, (SIGMA_MIN, SIGMA_MAX), (d,), "cpu")
    start = np.asarray(schedule_sigmas("karras", 4, SIGMA_MIN, SIGMA_MAX), dtype=np.float64)
    judged = check.judge({"start": start, "other": start * [1, 0.5, 0.5, 0.5, 0]})
    assert judged.value(start * [1, 0.5, 0.5, 0.5, 0]) == judged.scores["other"]  # one scale for the search
    # the teacher's figure has its optimum at the start: only the search on the data moves it
    result = refine.tune_steps(ConstructedFigure(start), 4, {"karras": start}, SIGMA_MIN, check, search_passes=2)
    assert result.search == "kept" and result.confirmation["searched"] < result.confirmation["before"]

    def spread(sigmas):  # std of Euler samples from noise neither check saw
        x = initial_noise((d,), 4000, SIGMA_MAX, 99)
        return float(run_sampler(toy, "euler", sigmas, x, 99, (SIGMA_MIN, SIGMA_MAX))[0].std())
    assert abs(spread(result.sigmas) - 0.1) < 0.5 * abs(spread(start) - 0.1)


def test_the_fresh_check_uses_other_noise_and_other_draws_and_counts_its_samples():
    from ays_core.data_figure import confirmation_seed

    toy, check = gaussian_check(256)
    one, two = sampling(SIGMA_MAX, 1.0, SIGMA_MIN), sampling(SIGMA_MAX, 3.0, 0.1, SIGMA_MIN)
    check.judge({"one": one})
    fresh = check.confirm({"searched": two, "before": one})
    assert set(fresh.scores) == {"searched", "before"} and check.fresh.seed == confirmation_seed(0)
    assert not torch.equal(check.fresh.noise, check.noise) and not np.array_equal(check.fresh.data[0], check.data[0])
    assert check.evaluations == 256 * (3 + 3 + 4)  # one (3 steps) here; one and two (4 steps) on the fresh check


def gaussian_check(samples=1024, d=4, seed=0):
    from ays_core.data_figure import DataCheck
    from ays_core.models.toy import GaussianToy

    toy = GaussianToy(c=0.5, d=d)
    return toy, DataCheck(toy, "euler", toy.sample_data, samples, seed, (SIGMA_MIN, SIGMA_MAX), (d,), "cpu")


def test_the_data_check_measures_the_spread_a_one_step_sampler_loses():
    c, d = 0.5, 4
    counted = []
    _, check = gaussian_check(2048, d)
    check.bar = type("Bar", (), {"update": lambda self, n: counted.append(n)})()
    # one Euler step from pure noise x = sigma_max * eps lands on D(x, sigma_max) = c^2/(c^2+s^2) x:
    # isotropic N(0, a^2) with a = c^2 s / (c^2 + s^2); the sliced W2 of two isotropic Gaussians is
    # |a - c|, their Frechet distance d (a - c)^2
    spread = c ** 2 * SIGMA_MAX / (c ** 2 + SIGMA_MAX ** 2)
    sliced, frechet = check.distances(check.samples(sampling(SIGMA_MAX)))
    assert sliced == pytest.approx(c - spread, abs=0.03)
    assert frechet == pytest.approx(d * (c - spread) ** 2, rel=0.1)
    # the exact flow (many steps) keeps N(0, c^2): only the sampling error of 2 x 2048 draws remains
    many = np.append(np.exp(np.linspace(np.log(SIGMA_MAX), np.log(SIGMA_MIN), 200)), 0.0)
    assert check.distances(check.samples(many))[0] < 0.1 * (c - spread)
    assert check.evaluations == 2048 * (1 + 200) == sum(counted)  # the progress bar sees them too


def test_the_frechet_distance_of_many_coordinates_is_taken_on_a_fixed_projection():
    d, a, c = 300, 0.3, 0.5
    _, check = gaussian_check(16384, d)  # enough draws that the estimate's bias (~ k^2 / n) is small
    assert check.directions[1].shape == (d, data_figure.FRECHET_DIMS)
    narrow = np.random.default_rng(1).standard_normal((16384, d)) * a
    # an orthonormal projection of isotropic Gaussians: FD = k (a - c)^2 on k directions
    assert check.distances(check.project(narrow))[1] == pytest.approx(data_figure.FRECHET_DIMS * (a - c) ** 2, rel=0.05)


def test_the_data_figure_prefers_a_schedule_only_when_its_samples_are_clearly_closer():
    _, check = gaussian_check()
    one_step, many = sampling(SIGMA_MAX), np.append(np.exp(np.linspace(np.log(SIGMA_MAX), np.log(SIGMA_MIN), 60)), 0.0)
    judged = check.judge({"one step": one_step, "many": many, "the same": many.copy()})
    assert judged.best == "many" and judged.scores["many"] == judged.scores["the same"] == 0.0
    assert judged.scores["one step"] > 0
    assert judged.clearly_closer("many", "one step") and not judged.clearly_closer("one step", "many")
    assert not judged.clearly_closer("many", "the same") and not judged.clearly_closer("the same", "many")
    assert check.evaluations == 1024 * (1 + 60)  # a schedule judged twice is sampled once


@pytest.mark.parametrize("passes", [2, 4, 0])
def test_the_data_check_is_planned_only_when_x0_are_data(passes):
    from ays_core.budget import count_evaluations
    from ays_core.samplers import sampler_nfe
    from ays_core.settings import RunSettings

    settings = RunSettings(solver="euler", step_counts="4", data_search_passes=passes)
    with_data, data_free = count_evaluations(settings), count_evaluations(settings, x0_draws=256)
    # at 4 and at 10 steps, 512 samples per schedule: at most every candidate and the refined
    # schedule, every trial of the searches for every point but the first in each pass, and the
    # fresh check's 4 (the three searches' lists and their start); at least the winner (nothing
    # without a search; the converged solution's gate may skip it)
    candidates = len(refine.HAND_MADE) + 1 + 3 * 4  # hand-made, GITS-style, 3 iterates of 4 descents
    # three searches, 3 pushes each: both directions at one width, at two, and at one width that halves every
    # pass, with one pass more (but only 3 before the width falls below its least)
    trials = passes * ((2 + 3) + (4 + 3)) + min(passes + 1, 3) * (2 + 3) if passes else 0
    most = sum(512 * sampler_nfe("euler", n) * (candidates + 1 + trials * (n - 1) + (3 + 1 if passes else 0))
               for n in (4, 10))
    fewest = sum(512 * sampler_nfe("euler", n) for n in (4, 10)) if passes else 0
    teacher = refine.teacher_evaluations(settings.teacher_samples, settings.reference_steps, reused=False)
    table_and_draws = data_free.fixed["x0 drawn from the model"]
    # the model's converged solution on the check's noise, for the search's gate
    converged = 512 * settings.reference_steps if passes else 0
    assert with_data.fixed.get("converged samples for the data check", 0) == converged
    assert with_data.high - (data_free.high - table_and_draws) == most + teacher + converged
    assert with_data.low - (data_free.low - table_and_draws) == fewest + teacher + converged


@pytest.mark.parametrize("passes", [2, 0])
def test_a_stochastic_solvers_plan_counts_its_gate_and_its_wide_check(passes):
    from ays_core.budget import count_evaluations
    from ays_core.samplers import sampler_nfe
    from ays_core.settings import RunSettings

    settings = RunSettings(solver="euler_ancestral", step_counts="4", data_search_passes=passes)
    with_data, data_free = count_evaluations(settings), count_evaluations(settings, x0_draws=256)
    candidates = len(refine.HAND_MADE) + 1 + 3 * 4
    trials = passes * ((2 + 3) + (4 + 3)) + min(passes + 1, 3) * (2 + 3) if passes else 0
    most = fewest = 0
    for n in (4, 10):
        nfe = sampler_nfe("euler_ancestral", n)
        searched = 512 * nfe * (candidates + 1 + trials * (n - 1) + (3 + 1 if passes else 0))
        wide = 512 * nfe + 2048 * nfe * (candidates + 1)  # the race pick at the gate, then every schedule widely
        most += max(searched, wide)
        fewest += 512 * nfe  # the race pick at the gate, at least
    teacher = refine.teacher_evaluations(settings.teacher_samples, settings.reference_steps, reused=False)
    table_and_draws = data_free.fixed["x0 drawn from the model"]
    converged = 512 * settings.reference_steps  # the gate is asked even with no search
    assert with_data.fixed["converged samples for the data check"] == converged
    assert with_data.high - (data_free.high - table_and_draws) == most + teacher + converged
    assert with_data.low - (data_free.low - table_and_draws) == fewest + teacher + converged


def test_the_data_check_samples_with_the_conditioning_of_its_draws():
    from ays_core.data_figure import DataCheck

    class PromptMean:
        """Predicts x0 = the prompt's index in every coordinate: one Euler step to 0 lands on it."""
        sigma_min, sigma_max = SIGMA_MIN, SIGMA_MAX

        def __call__(self, x, sigma, cond_index=None):
            return cond_index.to(x.dtype).view(-1, 1).expand_as(x)

    def draws(n, generator):
        cond = torch.randint(3, (n,), generator=generator)
        return cond.double().view(-1, 1).expand(n, 2).clone(), {"cond_index": cond}

    check = DataCheck(PromptMean(), "euler", draws, 64, 0, (SIGMA_MIN, SIGMA_MAX), (2,), "cpu")
    assert check.distances(check.samples(sampling(SIGMA_MAX)))[0] == pytest.approx(0.0, abs=1e-4)  # each sample on its own prompt
    assert check.cond["cond_index"].unique().numel() == 3


def test_the_stage_races_the_gits_schedule_of_its_own_teacher_noise(monkeypatch):
    from ays_core.gits import Gits
    from ays_core.models.toy import GridMixtureToy

    toy = GridMixtureToy()
    raced, original = [], refine.race
    monkeypatch.setattr(refine, "race", lambda candidates, figure: raced.append(candidates) or original(candidates, figure))
    from ays_core.settings import RunSettings

    options = (16, 0, (SIGMA_MIN, SIGMA_MAX), 50, (2,), "cpu")
    settings = RunSettings(solver="euler", steps=4, step_counts="", teacher_samples=16, reference_steps=50)
    stage = refine.SolverStage(toy, settings, (SIGMA_MIN, SIGMA_MAX), (2,), "cpu", toy.sample_data)
    tuned = stage([])
    teacher = refine.make_teacher(toy, *options)
    expected = Gits(toy, (2,), starts=[(x, cond) for x, _, _, cond in teacher.chunks]).sigmas(4)
    assert np.array_equal(raced[0][refine.GITS_LABEL], expected) and set(raced[0]) > refine.hand_made_labels()
    assert stage.evaluations >= teacher.evaluations + refine.gits_evaluations(16) == 16 * 50 + 16 * 121
    assert tuned["4"]["summary"].startswith("4 steps:")


def test_a_gits_result_is_named_as_such():
    result = refine.StepResult(6, sampling(80, 9, 2, 0.5, 0.1, 0.01), refine.GITS_LABEL, 0.1, 0.1, 3, 0, 100)
    assert "GITS-style DP won the selection" in result.describe() and "the GITS-style DP schedule" in result.describe()


def test_the_plan_counts_the_gits_run():
    from ays_core.budget import count_evaluations
    from ays_core.settings import RunSettings

    count = count_evaluations(RunSettings(solver="euler"), x0_draws=256)
    assert count.fixed["GITS-style candidate"] == refine.gits_evaluations(refine.TEACHER_SAMPLES) == 32 * 121
