"""Toy data sets with exact denoisers: test oracles for the estimator and the search.

Both follow the denoiser contract of docs/ARCHITECTURE.md (k-diffusion convention,
x = x0 + sigma * eps), draw x0 from their exact data distribution (`sample_data`) and know its
density (`log_prob`), which the optimizer and `ays bench` use as data source and metric.
"""
import numpy as np
import torch

DEFAULT_SIGMA_MIN = 0.002
DEFAULT_SIGMA_MAX = 80.0


class GaussianToy:
    """Data N(0, c^2 I_d); the exact denoiser is D(x, s) = c^2 / (c^2 + s^2) * x."""

    def __init__(self, c=0.5, d=2, sigma_min=DEFAULT_SIGMA_MIN, sigma_max=DEFAULT_SIGMA_MAX):
        self.c, self.d = float(c), int(d)
        self.data_shape = (self.d,)
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.model_info = {"family": "toy-gaussian", "prediction": "x0",
                           "sigma_min": self.sigma_min, "sigma_max": self.sigma_max}

    def __call__(self, x, sigma, **cond):
        s2 = _per_sample(sigma, x).double() ** 2
        return (self.c ** 2 / (self.c ** 2 + s2) * x.double()).to(x.dtype)

    def sample_data(self, n, generator=None):
        return self.c * torch.randn(n, self.d, generator=generator, dtype=torch.float64).float()

    def log_prob(self, x):
        """Exact log density of the data distribution (for the NLL metric of `ays bench`)."""
        xd = x.double().flatten(1)
        return -0.5 * (xd ** 2).sum(1) / self.c ** 2 - 0.5 * self.d * np.log(2 * np.pi * self.c ** 2)

    def exact_klub(self, sigmas):
        """Closed-form KLUB of a schedule (any order, no trailing 0), in the estimator's units."""
        t = np.sort(np.asarray(sigmas, dtype=np.float64))
        lo, hi = t[:-1], t[1:]
        c2 = self.c ** 2

        def antiderivative(s):  # of 1 / (s^3 (s^2 + c^2))
            return -1.0 / (2 * c2 * s ** 2) - np.log(s ** 2 / (s ** 2 + c2)) / (2 * c2 ** 2)

        head = antiderivative(hi) - antiderivative(lo)
        tail = (0.5 / lo ** 2 - 0.5 / hi ** 2) / (hi ** 2 + c2)
        return float(self.d * c2 ** 2 * np.sum(head - tail))


class GridMixtureToy:
    """Equal-weight isotropic Gaussians (std `std`) centred on a k x k grid spanning [-1, 1]^2."""

    def __init__(self, k=8, std=0.03, sigma_min=DEFAULT_SIGMA_MIN, sigma_max=DEFAULT_SIGMA_MAX):
        axis = torch.linspace(-1.0, 1.0, int(k), dtype=torch.float64)
        self.means = torch.cartesian_prod(axis, axis)
        self.std = float(std)
        self.data_shape = (2,)
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.model_info = {"family": f"toy-gmm{int(k)}x{int(k)}", "prediction": "x0",
                           "sigma_min": self.sigma_min, "sigma_max": self.sigma_max}

    def __call__(self, x, sigma, **cond):
        xd = x.double()
        means = self.means.to(xd.device)
        var = self.std ** 2 + _per_sample(sigma, x).double() ** 2          # [B, 1]
        # ||x - mu||^2 expanded (in float64, so no precision is lost at small sigma).
        sq_dist = (xd ** 2).sum(1, keepdim=True) - 2 * xd @ means.T + (means ** 2).sum(1)  # [B, K]
        resp = torch.softmax(-sq_dist / (2 * var), dim=1)
        # Posterior mean of each component, mixed by responsibility.
        mean_mu = resp @ means
        return ((self.std ** 2 * xd + (var - self.std ** 2) * mean_mu) / var).to(x.dtype)

    def sample_data(self, n, generator=None):
        idx = torch.randint(len(self.means), (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return (self.means[idx] + self.std * noise).float()

    def log_prob(self, x):
        """Exact log density of the mixture (for the NLL metric of `ays bench`)."""
        sq_dist = torch.cdist(x.double().flatten(1), self.means.to(x.device)) ** 2
        log_components = -sq_dist / (2 * self.std ** 2) - np.log(2 * np.pi * self.std ** 2)
        return torch.logsumexp(log_components, dim=1) - np.log(len(self.means))


def _per_sample(sigma, x):
    """sigma as a [B, 1, ...] column broadcastable against x."""
    sigma = torch.as_tensor(sigma, device=x.device)
    if sigma.ndim == 0:
        sigma = sigma.expand(x.shape[0])
    return sigma.reshape(-1, *([1] * (x.ndim - 1)))

