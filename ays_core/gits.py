"""GITS-style schedules (Chen et al., "A Geometric Perspective on Optimal Timestep Selection",
ICML 2024), written from the paper's description: data-free dynamic programming over a teacher's
fine time grid.

1. Teacher: `trajectories` noise draws are integrated with Heun's method on a fine grid (EDM
   polynomial spacing, rho = 7, `grid_steps` steps from sigma_max to sigma_min, then one Euler
   step to 0), storing every state x_i and its ODE direction d_i = (x_i - D(x_i, s_i)) / s_i.
2. Cost: C[i, j] (i before j on the grid) = the mean over trajectories of the RMS error of one
   Euler jump from the teacher's x_i to s_j, x_i + (s_j - s_i) d_i, against the teacher's x_j.
3. DP: the N-step path from sigma_max to 0 minimising C[i0, i1] + coeff * (C[i1, i2] + coeff *
   (...)), i.e. V[i, k] = min over j > i of C[i, j] + coeff * V[j, k - 1], V[i, 1] = C[i, end].
   coeff > 1 weighs later jumps more (their error is left uncorrected); the paper uses 1.15.
The teacher runs once per model; every step count then costs only the DP. `ays bench` runs it as
a peer ("gits", 256 trajectories of its own seed); the optimizer's solver stage (refine.py) races its
schedule as one candidate, computed from the stage's own teacher noise.
"""
from dataclasses import dataclass

import numpy as np
import torch

from .errors import AYSError
from .samplers import initial_noise


@dataclass(frozen=True)
class GitsSettings:
    trajectories: int = 256
    grid_steps: int = 60
    coeff: float = 1.15
    seed: int = 7_000_000  # teacher noise: never one of the bench's evaluation seeds
    batch: int = 256


def teacher_grid(sigma_min, sigma_max, grid_steps, rho=7.0):
    """grid_steps + 2 sigmas, descending: EDM polynomial spacing from sigma_max to sigma_min, then 0."""
    ramp = np.linspace(0.0, 1.0, grid_steps + 1)
    sigmas = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    sigmas[0], sigmas[-1] = sigma_max, sigma_min  # exact ends: the power rounds 80 to 79.99999999999999
    return np.append(sigmas, 0.0)


def teacher_states(denoiser, grid, x_start, cond=None):
    """(states, directions) along the grid for a batch of starting points: [len(grid), batch, ...]
    each (the direction at sigma = 0 is never used and left 0). `cond`: per-row conditioning
    handed to the denoiser (latent models)."""
    sigmas = torch.as_tensor(grid, dtype=x_start.dtype, device=x_start.device)
    ones = x_start.new_ones(len(x_start))
    cond = cond or {}
    states, directions = [x_start], []
    x = x_start
    with torch.no_grad():
        for i in range(len(grid) - 1):
            s, s_next = sigmas[i], sigmas[i + 1]
            d = (x - denoiser(x, s * ones, **cond)) / s
            directions.append(d)
            x_euler = x + (s_next - s) * d
            if s_next > 0:  # Heun's correction, except on the last step to 0
                d_next = (x_euler - denoiser(x_euler, s_next * ones, **cond)) / s_next
                x = x + (s_next - s) * (d + d_next) / 2
            else:
                x = x_euler
            states.append(x)
    directions.append(torch.zeros_like(x))
    return torch.stack(states), torch.stack(directions)


def cost_matrix(grid, states, directions):
    """C[i, j] for i < j: mean over trajectories of the RMS error of one Euler jump from x_i to s_j
    against x_j; +inf on and below the diagonal."""
    points = len(grid)
    flat_states = states.reshape(points, states.shape[1], -1).double()
    flat_directions = directions.reshape(points, directions.shape[1], -1).double()
    sigmas = torch.as_tensor(grid, dtype=torch.float64, device=flat_states.device)
    cost = np.full((points, points), np.inf)
    for i in range(points - 1):
        steps = (sigmas[i + 1:] - sigmas[i])[:, None, None]
        jumps = flat_states[i][None] + steps * flat_directions[i][None]
        errors = (jumps - flat_states[i + 1:]).square().mean(-1).sqrt().mean(-1)
        cost[i, i + 1:] = errors.cpu().numpy()
    return cost


def best_path(cost, steps, coeff=1.0):
    """Indices i_0 = 0 < i_1 < ... < i_steps = last of the path minimising
    C[i_0, i_1] + coeff * (C[i_1, i_2] + coeff * (...)) over a cost matrix (inf = not allowed)."""
    cost = np.asarray(cost, dtype=np.float64)
    points = len(cost)
    if not 1 <= steps <= points - 1:
        raise AYSError(f"a path over {points} grid points has 1 to {points - 1} steps, not {steps}")
    last = points - 1
    value = np.full((steps + 1, points), np.inf)  # value[k, i]: cost-to-go from i in k steps
    choice = np.zeros((steps + 1, points), dtype=int)
    value[1] = cost[:, last]
    value[1, last] = np.inf
    for k in range(2, steps + 1):
        for i in range(points - 1):
            totals = cost[i, i + 1:] + coeff * value[k - 1, i + 1:]
            j = int(np.argmin(totals))
            value[k, i], choice[k, i] = totals[j], i + 1 + j
    path, i = [0], 0
    for k in range(steps, 1, -1):
        i = choice[k, i]
        path.append(int(i))
    path.append(last)
    return path


def grid_run_evaluations(trajectories, grid_steps):
    """Denoiser evaluations of the fine-grid run: Heun on every grid step but the last (Euler to 0)."""
    return trajectories * (2 * grid_steps + 1)


class Gits:
    """The teacher run and cost matrix of one model; `sigmas(steps)` gives the DP schedule.

    starts: the teacher's noise as (x_start at sigma_max, conditioning or None) batches, e.g. the
    solver stage's own teacher noise; by default `settings.trajectories` draws of its own seed
    (with `starts`, `shape` and the settings' trajectories, seed and batch are not used).
    sigma_range: (sigma_min, sigma_max) of the grid; by default the model's.
    bar: a tqdm bar counting denoiser evaluations, or None."""

    def __init__(self, denoiser, shape, settings=GitsSettings(), starts=None, sigma_range=None, bar=None):
        self.settings = settings
        sigma_min, sigma_max = sigma_range or (float(denoiser.sigma_min), float(denoiser.sigma_max))
        self.grid = teacher_grid(sigma_min, sigma_max, settings.grid_steps)
        if starts is None:
            x_start = initial_noise(shape, settings.trajectories, sigma_max, settings.seed)
            starts = [(chunk, None) for chunk in x_start.split(settings.batch)]
        # the cost is a mean over trajectories: batches are weighed by their size
        rows, total = 0, 0.0
        for x_start, cond in starts:
            total = total + len(x_start) * cost_matrix(self.grid, *teacher_states(denoiser, self.grid, x_start, cond))
            rows += len(x_start)
            if bar is not None:
                bar.update(grid_run_evaluations(len(x_start), settings.grid_steps))
        self.cost = total / rows
        self.evaluations = grid_run_evaluations(rows, settings.grid_steps)

    def sigmas(self, steps):
        """Sampling sigmas for `steps` steps: steps + 1 grid values from sigma_max down to 0."""
        return self.grid[best_path(self.cost, steps, self.settings.coeff)].copy()
