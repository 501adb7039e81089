"""GITS-style dynamic programming (ays_core/gits.py): known optimal paths, and a brute-force check."""
import itertools

import numpy as np
import pytest
import torch

from ays_core.errors import AYSError
from ays_core.gits import Gits, GitsSettings, best_path, cost_matrix, teacher_grid


def squared_jump_cost(points):
    """C[i, j] = (j - i)^2: with coeff 1 the best N-step path is the evenly spaced one."""
    index = np.arange(points)
    cost = (index[None, :] - index[:, None]).astype(float) ** 2
    cost[np.tril_indices(points)] = np.inf
    return cost


def brute_force(cost, steps, coeff):
    last = len(cost) - 1
    best, best_value = None, np.inf
    for middle in itertools.combinations(range(1, last), steps - 1):
        path = (0, *middle, last)
        value = 0.0
        for k in reversed(range(steps)):  # C[p0,p1] + coeff * (C[p1,p2] + coeff * (...))
            value = cost[path[k], path[k + 1]] + coeff * value
        if value < best_value:
            best, best_value = list(path), value
    return best


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 6, 12])
def test_even_spacing_is_optimal_for_convex_uniform_cost(steps):
    assert best_path(squared_jump_cost(13), steps) == list(range(0, 13, 12 // steps))


def test_a_cheap_detour_is_found():
    cost = squared_jump_cost(5)
    cost[0, 3] = 0.1  # one cheap long jump, then 3 -> 4
    assert best_path(cost, 2) == [0, 3, 4]
    assert best_path(cost, 4) == [0, 1, 2, 3, 4]  # four steps over five points leave no choice


@pytest.mark.parametrize("coeff", [1.0, 1.15, 1.5])
def test_matches_brute_force_on_random_costs(coeff):
    rng = np.random.default_rng(3)
    for _ in range(20):
        cost = rng.uniform(0.1, 2.0, (9, 9))
        cost[np.tril_indices(9)] = np.inf
        for steps in (2, 3, 5):
            assert best_path(cost, steps, coeff) == brute_force(cost, steps, coeff)


def test_coefficient_shifts_cost_towards_the_end():
    """With coeff > 1 later jumps weigh more, so the path spends its short jumps at the end."""
    cost = squared_jump_cost(11)
    path = best_path(cost, 3, coeff=3.0)
    jumps = np.diff(path)
    assert jumps[0] > jumps[-1]


def test_bad_step_counts_are_refused():
    with pytest.raises(AYSError, match="1 to 4"):
        best_path(squared_jump_cost(5), 5)


def test_teacher_grid_ends():
    grid = teacher_grid(0.002, 80.0, 60)
    assert len(grid) == 62 and grid[0] == pytest.approx(80.0) and grid[-2] == pytest.approx(0.002) and grid[-1] == 0
    assert np.all(np.diff(grid) < 0)


def test_cost_of_exact_straight_trajectories_is_zero():
    """Trajectories that are straight lines (constant direction) cost nothing for any jump."""
    grid = np.array([4.0, 2.0, 1.0, 0.0])
    direction = torch.randn(1, 5, 3)
    states = torch.stack([torch.ones(5, 3) + s * direction[0] for s in grid])
    directions = direction.expand(4, 5, 3).clone()
    cost = cost_matrix(grid, states, directions)
    assert np.allclose(cost[np.triu_indices(4, 1)], 0.0, atol=1e-6)  # float32 states


def test_gits_schedule_on_the_gaussian_toy():
    from ays_core.models import load_denoiser

    model = load_denoiser("toy:gaussian")
    gits = Gits(model, (2,), GitsSettings(trajectories=64, grid_steps=30))
    sigmas = gits.sigmas(5)
    assert len(sigmas) == 6 and sigmas[0] == pytest.approx(80.0) and sigmas[-1] == 0
    assert np.all(np.diff(sigmas) < 0)
    assert set(sigmas) <= set(gits.grid)


class Counting:
    """toy:gaussian's denoiser, recording the conditioning each call got."""

    def __init__(self, model):
        self.model, self.seen = model, []
        self.sigma_min, self.sigma_max = model.sigma_min, model.sigma_max

    def __call__(self, x, sigma, **cond):
        self.seen.append(sorted(cond))
        return self.model(x, sigma)


def test_teacher_noise_in_batches_gives_the_one_batch_cost_and_counts_its_evaluations():
    from ays_core.models import load_denoiser
    from ays_core.samplers import initial_noise

    model = Counting(load_denoiser("toy:gaussian"))
    settings = GitsSettings(grid_steps=12)
    x = initial_noise((2,), 8, 80.0, 3)
    whole = Gits(model, (2,), settings, starts=[(x, None)])
    ticks = []

    class Bar:
        def update(self, n):
            ticks.append(n)

    halves = Gits(model, (2,), settings, starts=[(x[:4], {"cond_index": torch.zeros(4)}), (x[4:], None)], bar=Bar())
    assert np.allclose(halves.cost, whole.cost, rtol=1e-12)
    assert halves.evaluations == whole.evaluations == 8 * (2 * 12 + 1) == sum(ticks) and len(ticks) == 2
    assert ["cond_index"] in model.seen  # the conditioning of a batch reaches the denoiser
    assert halves.sigmas(4)[0] == pytest.approx(80.0)


def test_the_grid_spans_the_range_it_is_given():
    from ays_core.models import load_denoiser

    gits = Gits(load_denoiser("toy:gaussian"), (2,), GitsSettings(trajectories=8, grid_steps=10), sigma_range=(0.1, 20.0))
    assert (gits.grid[0], gits.grid[-2], gits.grid[-1]) == (20.0, 0.1, 0.0)  # exactly the range
