"""Sample figures (ays_core.metrics) on inputs whose answer is known in closed form."""
import math

import numpy as np
import pytest
import torch
from scipy import linalg

from ays_core import metrics


def test_frechet_distance_identical_sets_is_zero():
    x = np.random.default_rng(0).standard_normal((500, 6))
    assert metrics.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_diagonal_gaussians_is_analytic():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert metrics.frechet_distance_from_moments(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected)


def test_frechet_distance_matches_the_sqrtm_formula_for_full_covariances():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    cov1, cov2 = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    mu1, mu2 = rng.standard_normal(4), rng.standard_normal(4)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(cov1 + cov2 - 2 * linalg.sqrtm(cov1 @ cov2).real)
    assert metrics.frechet_distance_from_moments(mu1, cov1, mu2, cov2) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_of_shifted_gaussian_samples():
    rng = np.random.default_rng(2)
    shift = np.array([3.0, 0.0, 4.0])  # ||shift||^2 = 25, same covariance
    x, y = rng.standard_normal((20000, 3)), rng.standard_normal((20000, 3)) + shift
    assert metrics.frechet_distance(x, y) == pytest.approx(25.0, rel=0.02)


def test_kid_is_about_zero_for_one_distribution_and_positive_for_shifted():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((800, 8)), rng.standard_normal((800, 8))
    same = metrics.kernel_inception_distance(x, y)
    shifted = metrics.kernel_inception_distance(x, y + 1.0)
    assert abs(same) < 0.05 * shifted and shifted > 0


def test_sliced_wasserstein_zero_for_identical_and_analytic_for_a_shift():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3000, 2))
    assert metrics.sliced_wasserstein(x, x) == pytest.approx(0.0, abs=1e-12)
    # A shift m moves every 1-D projection on direction u by m.u; E (m.u)^2 = |m|^2 / d.
    shift = np.array([0.6, 0.8])
    assert metrics.sliced_wasserstein(x, x + shift, projections=4000) == pytest.approx(1 / math.sqrt(2), rel=0.03)


def test_sliced_wasserstein_compares_unequal_sizes():
    rng = np.random.default_rng(5)
    assert metrics.sliced_wasserstein(rng.standard_normal((500, 2)), rng.standard_normal((2000, 2))) < 0.1


def test_reference_distance_is_rms_per_coordinate():
    x = torch.zeros(3, 4)
    assert metrics.reference_distance(x, x + 2.0) == pytest.approx(2.0)


def test_knn_divergence_known_answers():
    generator = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(3000, 2, generator=generator) for _ in range(3))
    assert abs(metrics.knn_divergence(a, b)) < 0.05                          # same law: KL = 0
    assert metrics.knn_divergence(a + torch.tensor([1.0, 0.0]), b) == pytest.approx(0.5, abs=0.08)  # N(m, I) vs N(0, I)
    assert metrics.knn_divergence(0.5 * a, c) == pytest.approx(np.log(4) + 0.25 - 1, abs=0.08)    # sharper than the data
    assert metrics.knn_divergence(a * 0, b) > 10                               # collapsed onto one point
    a[0, 0] = float("nan")
    assert metrics.knn_divergence(a, b) >= 1e300                               # a diverged solver


def test_references_give_the_one_shot_figures_for_every_set_size():
    # A bench scores hundreds of sets against one held-out set; the cached moments, root and
    # quantiles must give exactly what the one-shot functions give, for any sample count.
    # quantiles at the same levels and directions, the textbook way (np.quantile, linear).
    rng = np.random.default_rng(6)
    real = rng.standard_normal((700, 5)) @ rng.standard_normal((5, 5))
    fd, swd = metrics.FrechetReference(real), metrics.SlicedReference(real, projections=64, seed=3)
    directions = np.random.default_rng(3).standard_normal((5, 64))
    directions /= np.linalg.norm(directions, axis=0)
    for count in (300, 700, 1200, 300):
        samples = rng.standard_normal((count, 5)) + 0.3
        cov1, cov2 = np.cov(real, rowvar=False), np.cov(samples, rowvar=False)
        expected_fd = (np.sum((real.mean(0) - samples.mean(0)) ** 2)
                       + np.trace(cov1 + cov2 - 2 * linalg.sqrtm(cov1 @ cov2).real))
        assert fd.distance(samples) == pytest.approx(expected_fd, rel=1e-8)
        levels = (np.arange(max(count, 700)) + 0.5) / max(count, 700)
        qa, qb = (np.quantile(x @ directions, levels, axis=0) for x in (samples, real))
        assert swd.distance(samples) == pytest.approx(np.sqrt(np.mean((qa - qb) ** 2)), rel=1e-12)
