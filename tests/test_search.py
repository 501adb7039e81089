"""The schedule search: convergence to the exact KLUB optimum, subdivision, early stopping."""
import functools

import numpy as np
import pytest
import torch
from scipy import optimize as sciopt

from ays_core import AYSError
from ays_core.samplers import run_sampler
from ays_core.baselines import exponential, karras
from ays_core.models.toy import GaussianToy, GridMixtureToy
from ays_core.metrics import knn_divergence
from ays_core.search import CANDIDATES, candidate_log_sigmas, optimize, subdivide
from ays_core.starts import start_schedules
from ays_core.validation import ReferenceValidation
from ays_core.settings import RunSettings

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0


def closed_form_klub(sigmas, c, d):
    """Notes section 1: sum over intervals of int t^-3 d c^4 (1/(t^2+c^2) - 1/(t_i^2+c^2)) dt."""
    t = np.sort(sigmas)
    lo, hi = t[:-1], t[1:]
    c2 = c * c
    anti = lambda s: -1 / (2 * c2 * s * s) - np.log(s * s / (s * s + c2)) / (2 * c2 * c2)  # noqa: E731
    return d * c2 * c2 * np.sum(anti(hi) - anti(lo) - (1 / (2 * lo * lo) - 1 / (2 * hi * hi)) / (hi * hi + c2))


@functools.lru_cache(maxsize=None)
def true_minimum(steps, c, d):
    """min over schedules with fixed ends, by scipy on the closed form (positions as softmax shares)."""
    span = np.log(SIGMA_MAX) - np.log(SIGMA_MIN)

    def schedule(z):
        shares = np.exp(z - z.max())
        return np.exp(np.log(SIGMA_MIN) + span * np.concatenate([[0.0], np.cumsum(shares / shares.sum())]))

    best = None
    for start in (np.zeros(steps), np.linspace(2, 0, steps), np.linspace(0, 2, steps)):
        result = sciopt.minimize(lambda z: closed_form_klub(schedule(z), c, d), start, method="BFGS",
                                 options={"gtol": 1e-10, "maxiter": 10000})
        if best is None or result.fun < best.fun:
            best = result
    return best.fun


@pytest.mark.parametrize("mode,c", [("paper", 0.5), ("fast", 0.5), ("fast", 1.0)])
def test_no_early_stop_converges_to_exact_minimum(mode, c):
    toy = GaussianToy(c=c, d=2)
    result = optimize(toy, RunSettings(steps=10, mode=mode, samples=2048, early_stop=False, refine=0), progress=False)
    assert result.sigmas[0] == SIGMA_MAX and result.sigmas[-1] == SIGMA_MIN and np.all(np.diff(result.sigmas) < 0)
    assert closed_form_klub(result.sigmas, c, 2) <= 1.01 * true_minimum(10, c, 2)


def test_candidates_stay_between_neighbours_and_include_the_current_value():
    log_s = np.log([0.002, 0.1, 0.3, 80.0])
    for width in (0.5, 0.01):
        cands = candidate_log_sigmas(log_s, 2, width)
        assert len(cands) == CANDIDATES and cands[CANDIDATES // 2] == log_s[2]
        assert np.all((cands > log_s[1]) & (cands < log_s[3])) and np.all(np.diff(cands) > 0)


def test_subdivide_inserts_log_midpoints():
    finer, new = subdivide(np.array([0.01, 1.0, 4.0]))
    assert np.allclose(finer, [0.01, 0.1, 1.0, 2.0, 4.0]) and new == [1, 3]


def test_refinement_moves_only_new_points():
    toy = GaussianToy()
    result = optimize(toy, RunSettings(steps=4, mode="fast", samples=512, early_stop=False, refine=2), progress=False)
    assert len(result.sigmas) == 17
    stage0 = [h for h in result.history if h["stage"] == 0][-1]["sigmas"]
    assert np.array_equal(result.sigmas[::4], stage0)
    assert [h["steps"] for h in result.history][-1] == 16


def test_early_stopped_gmm_schedule_beats_hand_made_ones_on_held_out_noise():
    toy = GridMixtureToy()
    result = optimize(toy, RunSettings(steps=10, mode="fast", samples=1024, refine=0, validation_samples=512),
                      progress=False)
    figures = [h["validation"] for h in result.history if h["validation"] is not None]
    own = ReferenceValidation(toy, "dpmpp_2m", 10, 512, 0, SIGMA_MIN, SIGMA_MAX, 100, (2,), "cpu",
                              x0_source=toy.sample_data)  # the optimizer's own figure
    assert own(result.sigmas[::-1].copy()) == pytest.approx(min(figures))  # the best iterate is the one returned
    # Judged on noise and data draws early stopping never saw, against hand-made schedules in both
    # step conventions (the stored form, N + 1 points with the last set to 0, is also where descents start).
    held_out = ReferenceValidation(toy, "dpmpp_2m", 10, 2048, 7, SIGMA_MIN, SIGMA_MAX, 100, (2,), "cpu",
                                   x0_source=toy.sample_data)
    ours = held_out(result.sigmas[::-1].copy())
    for baseline in (karras, exponential):
        as_stored = baseline(11, SIGMA_MIN, SIGMA_MAX)[:-1]
        assert ours < held_out(as_stored[::-1].copy())
        samples, _ = run_sampler(toy, "dpmpp_2m", baseline(10, SIGMA_MIN, SIGMA_MAX), held_out.x_start, 7,
                                 held_out.range)  # k-diffusion's own convention
        assert ours < knn_divergence(samples, held_out.real)


def test_stage_zero_descends_from_every_start_and_keeps_the_best_iterate():
    toy = GridMixtureToy()
    result = optimize(toy, RunSettings(steps=6, samples=256, refine=0, validation_samples=64, patience=2), progress=False)
    stage0 = [h for h in result.history if h["stage"] == 0]
    starts = start_schedules(toy, 6, SIGMA_MIN, SIGMA_MAX)
    assert list(dict.fromkeys(h["start"] for h in stage0)) == list(starts) == ["paper", "exponential", "kl_optimal", "sd15"]
    for name, sigmas in starts.items():  # each descent begins at its start schedule, as stored
        first = next(h for h in stage0 if h["start"] == name)
        assert first["iteration"] == 0 and np.allclose(first["sigmas"][::-1], sigmas)
    best = min(stage0, key=lambda h: h["validation"])
    assert (result.best_start, result.best_iteration) == (best["start"], best["iteration"])
    assert np.array_equal(result.sigmas, best["sigmas"])
    only_paper = optimize(toy, RunSettings(steps=6, samples=256, refine=0, validation_samples=64, patience=2,
                                           start="paper"), progress=False)
    assert {h["start"] for h in only_paper.history} == {"paper"} and only_paper.best_start == "paper"
    no_stop = optimize(toy, RunSettings(steps=6, samples=256, refine=0, early_stop=False), progress=False)
    assert {h["start"] for h in no_stop.history} == {"paper"}


def test_optimize_takes_a_data_tensor_and_needs_data_otherwise():
    toy = GaussianToy()
    result = optimize(toy, RunSettings(steps=3, samples=256, early_stop=False, refine=0), x0=toy.sample_data(500),
                      progress=False)
    assert len(result.sigmas) == 4

    def bare(x, sigma):
        return toy(x, sigma)
    bare.sigma_min, bare.sigma_max = SIGMA_MIN, SIGMA_MAX
    with pytest.raises(AYSError, match="x0"):
        optimize(bare, RunSettings(steps=3, samples=256), progress=False)


@pytest.mark.parametrize("options,message", [
    ({"steps": 1}, "steps"), ({"mode": "slow"}, "mode"), ({"solver": "nope"}, "sampler"),
    ({"samples": 1}, "samples"), ({"sigma_min": 5.0, "sigma_max": 1.0}, "sigma_min"),
    ({"refine": 9}, "steps"), ({"seed": -1}, "seed"), ({"validation_samples": 0}, "validation_samples"),
    ({"patience": 0}, "patience"), ({"steps": 2.5}, "steps"), ({"start": "karras"}, "start"),
])
def test_bad_options_raise_ays_error(options, message):
    with pytest.raises(AYSError, match=message):
        optimize(GaussianToy(), RunSettings(**options), progress=False)


def test_cli_no_early_stop_converges_to_exact_minimum(tmp_path):
    from ays_core.cli import main
    from ays_core.registry import load_schedule

    out = tmp_path / "g.json"
    assert main(["optimize", "--model", "toy:gaussian", "--steps", "10", "--refine", "0", "--no-early-stop",
                 "--samples", "2048", "--out", str(out)]) == 0
    assert closed_form_klub(load_schedule(out).sigmas, 0.5, 2) <= 1.01 * true_minimum(10, 0.5, 2)


def test_a_state_saved_between_descents_resumes_and_a_bad_pending_start_is_rejected(tmp_path, monkeypatch):
    import json

    from ays_core import search

    toy, state = GridMixtureToy(), tmp_path / "s.json"
    settings = RunSettings(steps=6, samples=256, refine=0, validation_samples=64, patience=2)
    options = dict(progress=False, state_path=state)
    expected = optimize(toy, settings, **options)
    original, calls = search._Run._step, []

    def crash_once_in_the_second_descent(run):
        if run.state["start"] == "exponential" and not calls:
            calls.append(1)
            raise KeyboardInterrupt
        original(run)
    monkeypatch.setattr(search._Run, "_step", crash_once_in_the_second_descent)
    with pytest.raises(KeyboardInterrupt):
        optimize(toy, settings, **options)
    saved = json.loads(state.read_text())
    assert saved["start"] == "exponential" and [name for name, _ in saved["pending"]] == ["kl_optimal", "sd15"]
    resumed = optimize(toy, settings, resume=True, **options)
    assert np.array_equal(resumed.sigmas, expected.sigmas) and resumed.best_start == expected.best_start

    saved["pending"][0][1] = saved["pending"][0][1][:3]
    saved["checksum"] = search.state_checksum(saved)  # forged: only the structural check can catch it
    state.write_text(json.dumps(saved))
    with pytest.raises(AYSError, match="pending start"):
        optimize(toy, settings, resume=True, **options)
