import numpy as np
import pytest

from ays_core import AYSError, BASELINES, Baseline, baseline
from ays_core.baselines import SD_SIGMA_TABLE, kl_optimal, sigma_to_t, t_to_sigma, vp_sigma_table

LO, HI = 0.0291671582, 14.6146412293


@pytest.mark.parametrize("name", sorted(BASELINES))
@pytest.mark.parametrize("n", [1, 2, 10, 37])
def test_every_baseline_is_descending_and_ends_in_zero(name, n):
    sigmas = baseline(name, n, LO, HI)
    assert isinstance(sigmas, np.ndarray) and sigmas.dtype == np.float64 and sigmas.ndim == 1
    assert len(sigmas) == n + 1 and sigmas[-1] == 0.0
    assert np.all(np.diff(sigmas) < 0)
    assert sigmas[0] == pytest.approx(HI, rel=1e-3)


@pytest.mark.parametrize("name", ["karras", "exponential", "kl_optimal", "beta", "time_uniform", "polyexponential"])
def test_continuous_baselines_span_the_range(name):
    sigmas = baseline(name, 10, LO, HI)
    assert sigmas[-2] == pytest.approx(LO, rel=1e-5)


def test_karras_matches_formula():
    n, rho = 10, 7.0
    ramp = np.linspace(0, 1, n)
    expected = (HI ** (1 / rho) + ramp * (LO ** (1 / rho) - HI ** (1 / rho))) ** rho
    np.testing.assert_allclose(baseline("karras", n, LO, HI)[:-1], expected, rtol=1e-12)
    np.testing.assert_allclose(baseline("karras", n, LO, HI, rho=3.0)[:-1],
                               (HI ** (1 / 3) + ramp * (LO ** (1 / 3) - HI ** (1 / 3))) ** 3, rtol=1e-12)


@pytest.mark.parametrize("name, options", [("karras", {}), ("karras", {"rho": 3.0}), ("exponential", {}),
                                           ("polyexponential", {"rho": 2.0})])
@pytest.mark.parametrize("n", [1, 2, 10, 37])
def test_agrees_with_k_diffusion(name, options, n):
    # k-diffusion computes in float32; ours is the same formula in float64
    from k_diffusion import sampling

    theirs = getattr(sampling, f"get_sigmas_{name}")(n, 0.002, 80.0, **options).double().numpy()
    np.testing.assert_allclose(baseline(name, n, 0.002, 80.0, **options), theirs, rtol=1e-5)


def test_exponential_is_log_uniform():
    np.testing.assert_allclose(np.diff(np.log(baseline("exponential", 8, 0.002, 80.0)[:-1])),
                               np.full(7, np.log(0.002 / 80) / 7), rtol=1e-4)


def test_kl_optimal_is_atan_uniform():
    sigmas = kl_optimal(6, 0.002, 80.0)[:-1]
    np.testing.assert_allclose(np.diff(np.arctan(sigmas)), np.full(5, (np.arctan(0.002) - np.arctan(80.0)) / 5))


def test_sd_table_matches_published_values():
    assert SD_SIGMA_TABLE[999] == pytest.approx(14.6146412293, rel=1e-8)
    assert SD_SIGMA_TABLE[0] == pytest.approx(0.0291671582, rel=1e-8)
    assert SD_SIGMA_TABLE[850] == pytest.approx(6.4745760956, rel=1e-8)
    assert len(vp_sigma_table(timesteps=500)) == 500


def test_time_conversion_round_trips():
    t = np.array([0.0, 12.5, 500.0, 999.0])
    np.testing.assert_allclose(sigma_to_t(t_to_sigma(t, SD_SIGMA_TABLE), SD_SIGMA_TABLE), t, atol=1e-9)


def test_time_uniform_is_uniform_in_model_time():
    sigmas = baseline("time_uniform", 4, LO, HI)[:-1]
    np.testing.assert_allclose(sigma_to_t(sigmas, SD_SIGMA_TABLE), [999, 666, 333, 0], atol=1e-6)
    np.testing.assert_array_equal(baseline("normal", 4, LO, HI), baseline("time_uniform", 4, LO, HI))


def test_simple_reads_table_entries():
    sigmas = baseline("simple", 10, LO, HI)[:-1]
    assert all(np.isclose(SD_SIGMA_TABLE, s).any() for s in sigmas)


def test_baseline_object_resamples_like_a_schedule():
    b = Baseline("karras")
    assert (b.id, b.version) == ("karras", None)
    np.testing.assert_allclose(b.resample(10, denoise=0.3), baseline("karras", 10, LO, HI)[-4:], rtol=1e-6)


@pytest.mark.parametrize("args", [("nope", 5, LO, HI), ("karras", 0, LO, HI), ("karras", 5, HI, LO),
                                  ("karras", 5, 0.0, HI)])
def test_bad_baseline_arguments(args):
    with pytest.raises(AYSError):
        baseline(*args)
