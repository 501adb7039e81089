"""The early-stopping figure of the search: how well samples of the solver a schedule is for
match the model's data (or a many-step reference run where the data carry prompts)."""
import numpy as np
import torch

from . import distributed
from .baselines import karras
from .interp import resample
from .klub import x0_sampler
from .metrics import KNN_NEIGHBOURS, knn_divergence, reference_distance
from .samplers import initial_noise, run_sampler

# Default validation samples: a distribution figure needs a thousand samples to rank schedules
# (256 picked by noise on toy:gmm8x8); the pathwise reference figure is far less noisy per sample.
VALIDATION_SAMPLES = {"data": 1024, "reference": 256}


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
        self.denoiser, self.solver, self.steps, self.seed = denoiser, solver, steps, seed
        self.range = (sigma_min, sigma_max)
        self.evaluations = 0
        self.real = None
        if distributed.is_main():
            self.x_start = initial_noise(shape, samples, sigma_max, seed).to(device)
            if samples > KNN_NEIGHBOURS + 1:  # the k-NN figure needs k + 2 samples
                self.real = _data_draws(x0_source, samples, seed + 1)
            if self.real is None:
                reference_sigmas = karras(reference_steps, sigma_min, sigma_max)
                self.reference, calls = run_sampler(denoiser, solver, reference_sigmas, self.x_start, seed, self.range)
                self.evaluations += calls * samples

    def __call__(self, ascending):
        """The figure of a stored schedule (ascending here) sampled at `steps` steps, "ays" convention."""
        figure = None
        if distributed.is_main():
            sampling = resample(np.asarray(ascending)[::-1], self.steps)
            samples, calls = run_sampler(self.denoiser, self.solver, sampling, self.x_start, self.seed, self.range)
            self.evaluations += calls * len(self.x_start)
            if self.real is not None:
                figure = knn_divergence(samples.cpu(), self.real)
            else:
                figure = reference_distance(samples.cpu(), self.reference.cpu())
        return distributed.broadcast_object(figure)


def _data_draws(source, count, seed):
    """`count` x0 draws to compare samples with, or None when there is no plain data source
    (none given, or one that returns per-sample conditioning)."""
    if source is None:
        return None
    draws = x0_sampler(source)(count, torch.Generator().manual_seed(seed))
    return None if isinstance(draws, (tuple, list)) else torch.as_tensor(draws).cpu()


def has_plain_data(source):
    """Whether x0 draws come without per-sample conditioning (then the validation figure compares
    samples with them rather than with a many-step reference run)."""
    return not isinstance(x0_sampler(source)(1, torch.Generator().manual_seed(0)), (tuple, list))
