"""Hand-made schedules: the ones AYS is compared against and starts from.

Every function takes (n, sigma_min, sigma_max, ...) and returns a descending float64 array of
n + 1 sigmas ending in 0, k-diffusion style (numpy only: no torch needed).
The discrete ones (time_uniform, sgm_uniform, simple) read a VP model's noise table: ascending
sigmas indexed by training timestep, SD's by default.
"""
import math
from dataclasses import dataclass

import numpy as np

from .errors import AYSError
from .interp import check_range, check_steps, truncate

SD_SIGMA_RANGE = (0.0291671582, 14.6146412293)  # what a baseline spans when no range is given


def _with_zero(sigmas):
    return np.append(np.asarray(sigmas, dtype=np.float64), 0.0)


# karras, exponential and polyexponential are k-diffusion's get_sigmas_* formulas, computed here in
# float64 with numpy (k-diffusion computes them in float32 torch): printing a schedule needs no torch.

def karras(n, sigma_min, sigma_max, rho=7.0):
    """EDM / Karras et al. 2022: evenly spaced in sigma^(1/rho)."""
    top, bottom = sigma_max ** (1.0 / rho), sigma_min ** (1.0 / rho)
    return _with_zero((top + np.linspace(0.0, 1.0, n) * (bottom - top)) ** rho)


def exponential(n, sigma_min, sigma_max):
    """Evenly spaced in log sigma (= uniform in logSNR)."""
    return _with_zero(np.exp(np.linspace(math.log(sigma_max), math.log(sigma_min), n)))


def polyexponential(n, sigma_min, sigma_max, rho=1.0):
    """Log sigma following a polynomial ramp of degree rho (rho = 1 is exponential)."""
    ramp = np.linspace(1.0, 0.0, n) ** rho
    return _with_zero(np.exp(math.log(sigma_min) + ramp * (math.log(sigma_max) - math.log(sigma_min))))


def kl_optimal(n, sigma_min, sigma_max):
    """The paper's closed-form KLUB optimum for Gaussian data with unit variance:
    evenly spaced in atan(sigma)."""
    ramp = np.linspace(0.0, 1.0, n)
    return _with_zero(np.tan((1.0 - ramp) * math.atan(sigma_max) + ramp * math.atan(sigma_min)))


def beta(n, sigma_min, sigma_max, alpha=0.6, beta=0.6):
    """Beta(alpha, beta) quantiles spread over [sigma_min, sigma_max] linearly in sigma
    (AUTOMATIC1111's variant of "Beta Sampling is All You Need", Lee et al. 2024)."""
    from scipy import stats

    quantiles = stats.beta.ppf(1.0 - np.linspace(0.0, 1.0, n), alpha, beta)
    return _with_zero(sigma_min + quantiles * (sigma_max - sigma_min))


def vp_sigma_table(beta_start=0.00085, beta_end=0.012, timesteps=1000):
    """The noise table of a discrete VP model with a "scaled_linear" beta schedule (SD 1.x, 2.x,
    XL): ascending sigma = sqrt((1 - alphabar) / alphabar), one per training timestep."""
    betas = np.linspace(math.sqrt(beta_start), math.sqrt(beta_end), timesteps, dtype=np.float64) ** 2
    alphas_cumprod = np.cumprod(1.0 - betas)
    return np.sqrt((1.0 - alphas_cumprod) / alphas_cumprod)


SD_SIGMA_TABLE = vp_sigma_table()


def sigma_to_t(sigma, table):
    """Fractional training timestep of `sigma` in an ascending noise table (log-sigma interpolation)."""
    return np.interp(np.log(sigma), np.log(table), np.arange(len(table), dtype=np.float64))


def t_to_sigma(t, table):
    """Sigma at fractional training timestep `t`, interpolating log sigma between table entries."""
    return np.exp(np.interp(t, np.arange(len(table), dtype=np.float64), np.log(table)))


def time_uniform(n, sigma_min, sigma_max, sigma_table=SD_SIGMA_TABLE):
    """Evenly spaced in model time from t(sigma_max) to t(sigma_min), both ends included
    (AUTOMATIC1111's "Uniform", ComfyUI's "normal"); the paper's start for discrete models."""
    t = np.linspace(sigma_to_t(sigma_max, sigma_table), sigma_to_t(sigma_min, sigma_table), n)
    return _with_zero(t_to_sigma(t, sigma_table))


def sgm_uniform(n, sigma_min, sigma_max, sigma_table=SD_SIGMA_TABLE):
    """Like time_uniform over n + 1 points with the last dropped (ComfyUI's "sgm_uniform")."""
    t = np.linspace(sigma_to_t(sigma_max, sigma_table), sigma_to_t(sigma_min, sigma_table), n + 1)[:-1]
    return _with_zero(t_to_sigma(t, sigma_table))


def simple(n, sigma_min, sigma_max, sigma_table=SD_SIGMA_TABLE):
    """Every (len(table) / n)-th table entry counted down from the top, as ComfyUI's "simple":
    a DDIM-like stride over the training timesteps within [sigma_min, sigma_max]."""
    table = sigma_table[(sigma_table >= sigma_min * (1 - 1e-9)) & (sigma_table <= sigma_max * (1 + 1e-9))]
    if len(table) == 0:
        raise AYSError("the sigma range holds no entry of the model's noise table")
    stride = len(table) / n
    return _with_zero([table[-(1 + int(i * stride))] for i in range(n)])


BASELINES = {
    "karras": karras,
    "exponential": exponential,
    "polyexponential": polyexponential,
    "kl_optimal": kl_optimal,
    "beta": beta,
    "time_uniform": time_uniform,
    "normal": time_uniform,
    "sgm_uniform": sgm_uniform,
    "simple": simple,
}


def baseline(name, n, sigma_min, sigma_max, **options):
    """The hand-made schedule `name` for n steps over [sigma_min, sigma_max]."""
    if name not in BASELINES:
        raise AYSError(f"unknown baseline schedule {name!r}; known: {', '.join(sorted(BASELINES))}")
    check_steps(n)
    check_range(float(sigma_min), float(sigma_max))
    return BASELINES[name](n, float(sigma_min), float(sigma_max), **options)


@dataclass(frozen=True)
class Baseline:
    """A hand-made schedule with the same interface as a registry Schedule, so callers can take
    either: `Baseline("karras").resample(10, sigma_min=0.002, sigma_max=80)`."""

    name: str
    version = None

    @property
    def id(self):
        return self.name

    @property
    def ref(self):
        return self.name

    def resample(self, steps, convention="ays", sigma_min=None, sigma_max=None, denoise=None):
        """The n-step schedule over [sigma_min, sigma_max] (SD's range by default). The step
        convention does not apply: a baseline defines its own n-step sigmas."""
        lo = SD_SIGMA_RANGE[0] if sigma_min is None else sigma_min
        hi = SD_SIGMA_RANGE[1] if sigma_max is None else sigma_max
        sigmas = baseline(self.name, steps, lo, hi)
        return sigmas if denoise is None else truncate(sigmas, denoise)
