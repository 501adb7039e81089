"""The KLUB estimators against the closed form for Gaussian data (notes section 1)."""
import numpy as np
import pytest
from scipy import integrate

from ays_core.baselines import exponential, karras
from ays_core.klub import ImportanceKLUB, PathKLUB
from ays_core.models.toy import GaussianToy

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0


def quad_klub(sigmas, c, d):
    """KLUB of Gaussian data by numerical integration of the notes' integrand (independent of toy.py)."""
    t = np.sort(sigmas)
    total = 0.0
    for lo, hi in zip(t[:-1], t[1:]):
        def integrand(log_s):
            s = np.exp(log_s)
            return s ** -2 * d * c ** 4 * (1 / (s ** 2 + c ** 2) - 1 / (hi ** 2 + c ** 2))
        total += integrate.quad(integrand, np.log(lo), np.log(hi), epsabs=0, epsrel=1e-10, limit=200)[0]
    return total


def stored(fn, steps):
    """A baseline as an ascending stored schedule of steps + 1 points."""
    return fn(steps + 1, SIGMA_MIN, SIGMA_MAX)[:-1][::-1].copy()


SCHEDULES = {
    "karras10": stored(karras, 10),
    "exponential10": stored(exponential, 10),
    "exponential3": stored(exponential, 3),
    "lumpy": np.array([0.002, 0.01, 0.011, 0.5, 3.0, 80.0]),
}


@pytest.mark.parametrize("c", [0.5, 1.5])
def test_closed_form_matches_quadrature(c):
    toy = GaussianToy(c=c, d=3)
    for sigmas in SCHEDULES.values():
        assert toy.exact_klub(sigmas) == pytest.approx(quad_klub(sigmas, c, 3), rel=1e-8)


@pytest.mark.parametrize("c", [0.5, 1.5])
def test_importance_estimate_within_its_standard_error(c):
    toy = GaussianToy(c=c, d=2)
    estimator = ImportanceKLUB(toy, toy.sample_data, 4096, 7, 1024, "cpu", 1 << 16)
    values, errors = estimator(np.stack([SCHEDULES["karras10"], SCHEDULES["exponential10"]]))
    for value, error, sigmas in zip(values, errors, [SCHEDULES["karras10"], SCHEDULES["exponential10"]]):
        exact = toy.exact_klub(sigmas)
        assert 0 < error < 0.05 * exact
        assert abs(value - exact) < 3 * error
    for name in ("exponential3", "lumpy"):
        (value,), (error,) = estimator(SCHEDULES[name])
        assert abs(value - toy.exact_klub(SCHEDULES[name])) < 3 * error


def test_importance_estimate_uses_common_random_numbers():
    toy = GaussianToy(c=0.8, d=2)
    estimator = ImportanceKLUB(toy, toy.sample_data, 512, 0, 128, "cpu", 1 << 16)
    a = SCHEDULES["karras10"]
    alone, _ = estimator(a)
    batch, _ = estimator(np.stack([SCHEDULES["exponential10"], a, a]))
    assert batch[1] == batch[2] == alone[0]  # a row's estimate does not depend on the other rows
    assert estimator.evaluations == 2 * 512 * 4  # two denoiser calls per sample and row


def test_path_table_estimate_close_to_closed_form():
    toy = GaussianToy(c=1.5, d=4)  # not the proposal's c, so the interpolated ratio is not constant
    estimator = PathKLUB(toy, toy.sample_data, 1024, 3, 256, "cpu", 1 << 16, SIGMA_MIN, SIGMA_MAX, grid_size=64)
    assert estimator.evaluations == 1024 * 64
    for sigmas in SCHEDULES.values():
        (value,), _ = estimator(sigmas)
        assert value == pytest.approx(toy.exact_klub(sigmas), rel=0.04)
    assert estimator.evaluations == 1024 * 64  # the table answers every later query


def test_data_tensor_as_x0_source():
    toy = GaussianToy(c=0.5, d=2)
    data = toy.sample_data(4000)
    estimator = ImportanceKLUB(toy, data, 2048, 0, 512, "cpu", 1 << 16)
    (value,), (error,) = estimator(SCHEDULES["exponential10"])
    assert abs(value - toy.exact_klub(SCHEDULES["exponential10"])) < 4 * error
