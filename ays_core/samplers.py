"""k-diffusion samplers as the optimizer and the benchmark run them: the table of samplers and
their cost in denoiser calls (NFE), the starting noise and Brownian path shared by every schedule,
and one run of a sampler on given sigmas with its calls counted.

NFE is counted honestly: a second-order step costs two denoiser calls, except the final step to
sigma = 0, which k-diffusion takes as a plain Euler step.
The table imports no torch, so that `ays --help` can list the samplers; the runs import it.
"""
from dataclasses import dataclass

import numpy as np

from .errors import AYSError


@dataclass(frozen=True)
class Sampler:
    name: str
    evals_per_step: int  # denoiser calls of a step that does not end at sigma = 0
    stochastic: bool


SAMPLERS = {s.name: s for s in (
    Sampler("euler", 1, False),
    Sampler("euler_ancestral", 1, True),
    Sampler("heun", 2, False),
    Sampler("dpm_2", 2, False),
    Sampler("lms", 1, False),
    Sampler("dpmpp_2m", 1, False),
    Sampler("dpmpp_2m_sde", 1, True),
    Sampler("dpmpp_3m_sde", 1, True),
)}


def get_sampler(name):
    if name not in SAMPLERS:
        raise AYSError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")
    return SAMPLERS[name]


def sampler_nfe(name, steps):
    """Denoiser calls of `steps` steps: second-order samplers take one call on the last step
    (it goes to sigma = 0, where k-diffusion takes a plain Euler step)."""
    per_step = get_sampler(name).evals_per_step
    return per_step * (steps - 1) + 1


def steps_for_nfe(name, nfe):
    """The most steps whose NFE fits the budget: NFE for first-order samplers, (NFE + 1) // 2 for
    second-order ones (an even budget then leaves one call unused)."""
    # k-diffusion's SDE multistep samplers fail on a single step, so every budget buys at least 2 calls.
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 2:
        raise AYSError(f"NFE must be a whole number >= 2, got {nfe!r}")
    per_step = get_sampler(name).evals_per_step
    return (nfe - 1) // per_step + 1


class CountingDenoiser:
    """Counts batched denoiser calls (one call = one NFE for the whole batch)."""

    def __init__(self, denoiser):
        self.denoiser = denoiser
        self.calls = 0

    def __call__(self, x, sigma, **cond):
        self.calls += 1
        return self.denoiser(x, sigma, **cond)


def initial_noise(shape, count, sigma_max, seed):
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randn((count, *shape), generator=generator) * sigma_max


def brownian_noise(x, sigma_min, sigma_max, seed):
    """One Brownian path per seed over the model's sigma range: every schedule and step count
    reads increments of the same path. The range is widened a hair so float32 sigmas at its
    ends stay inside."""
    from k_diffusion.sampling import BrownianTreeNoiseSampler

    return BrownianTreeNoiseSampler(x, sigma_min * 0.999, sigma_max * 1.001, seed=seed)


def run_sampler(denoiser, name, sigmas, x_start, seed, sigma_range, cond=None):
    """(samples, denoiser calls) of one k-diffusion sampler on `sigmas` from `x_start`;
    `cond`: per-row conditioning handed to the denoiser (latent models: {"cond_index": ...})."""
    import torch
    from k_diffusion import sampling

    sampler = get_sampler(name)
    counter = CountingDenoiser(denoiser)
    sigmas = torch.as_tensor(np.asarray(sigmas), dtype=x_start.dtype)
    options = {"extra_args": cond} if cond else {}
    if sampler.stochastic:
        lo, hi = sigma_range
        options["noise_sampler"] = brownian_noise(x_start, lo, hi, seed)
    with torch.no_grad():
        samples = getattr(sampling, f"sample_{name}")(counter, x_start.clone(), sigmas, disable=True, **options)
    return samples, counter.calls
