"""Figures of merit for samples: how far a set of samples is from real data or from a reference.

Pure functions of arrays (numpy, or torch tensors for the k-NN estimate); the benchmark
(bench.py) and the search's early stopping (search.py) both score samples with them.
"""
import math

import numpy as np
import torch

KNN_NEIGHBOURS = 5         # k of the k-NN divergence estimate (the search's validation figure)
DIVERGED = 1e300           # the k-NN figure of samples that are not finite


def _as_matrix(features):
    features = np.asarray(features, dtype=np.float64)
    return features.reshape(len(features), -1)


def _sqrt_psd(matrix):
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(values.clip(min=0))) @ vectors.T


def frechet_distance_from_moments(mu1, cov1, mu2, cov2):
    """||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2): the squared W2 distance
    between two Gaussians, computed with symmetric eigendecompositions (no complex sqrtm)."""
    return _frechet(mu1, cov1, _sqrt_psd(np.atleast_2d(cov1)), mu2, cov2)


def _frechet(mu1, cov1, root1, mu2, cov2):
    cross = np.linalg.eigvalsh(root1 @ np.atleast_2d(cov2) @ root1).clip(min=0)
    value = np.sum((np.asarray(mu1) - np.asarray(mu2)) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * np.sqrt(cross).sum()
    return float(max(value, 0.0))


def frechet_distance(features1, features2):
    return FrechetReference(features1).distance(features2)


class FrechetReference:
    """The Frechet distance of sample sets to one fixed set, whose moments and covariance root are
    computed once (a bench scores hundreds of sets against the same held-out data)."""

    def __init__(self, features):
        a = _as_matrix(features)
        self.mean, self.cov = a.mean(0), np.cov(a, rowvar=False)
        self.root = _sqrt_psd(np.atleast_2d(self.cov))

    def distance(self, features):
        b = _as_matrix(features)
        return _frechet(self.mean, self.cov, self.root, b.mean(0), np.cov(b, rowvar=False))


def kernel_inception_distance(features1, features2):
    """Unbiased MMD^2 with the cubic polynomial kernel (x.y / d + 1)^3 (Binkowski et al. 2018)."""
    a, b = _as_matrix(features1), _as_matrix(features2)
    dim = a.shape[1]
    k_aa, k_bb, k_ab = ((x @ y.T / dim + 1) ** 3 for x, y in ((a, a), (b, b), (a, b)))
    m, n = len(a), len(b)
    within_a = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    within_b = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    return float(within_a + within_b - 2 * k_ab.mean())


def sliced_wasserstein(samples1, samples2, projections=256, seed=0):
    """Sliced Wasserstein-2: W2 of the 1-D projections on random directions, root mean square over
    directions. Unequal set sizes are compared through matching quantiles."""
    return SlicedReference(samples2, projections, seed).distance(samples1)


def sliced_directions(dims, projections=256, seed=0):
    """The unit directions (dims x projections) sliced W2 projects on."""
    directions = np.random.default_rng(seed).standard_normal((dims, projections))
    return directions / np.linalg.norm(directions, axis=0, keepdims=True)


class SlicedReference:
    """Sliced W2 of sample sets to one fixed set, whose projected quantiles are computed once per
    set size (sorting the reference's projections dominates the cost). `projected` = True: both
    the set and the samples come already projected on the same directions."""

    def __init__(self, data, projections=256, seed=0, projected=False):
        data = _as_matrix(data)
        self.directions = None if projected else sliced_directions(data.shape[1], projections, seed)
        self.projected = data if projected else data @ self.directions
        self._quantiles = {}  # number of levels -> the reference's quantiles at them

    def distance(self, samples):
        a = _as_matrix(samples)
        count = max(len(a), len(self.projected))
        levels = (np.arange(count) + 0.5) / count
        if count not in self._quantiles:
            self._quantiles[count] = _quantiles(self.projected, levels)
        qa = _quantiles(a if self.directions is None else a @ self.directions, levels)
        return float(np.sqrt(np.mean((qa - self._quantiles[count]) ** 2)))


def _quantiles(values, levels):
    """Column-wise linear-interpolated quantiles from one sort (np.quantile with thousands of
    levels partitions once per level, which is far slower)."""
    ordered = np.sort(values, axis=0)
    position = levels * (len(ordered) - 1)
    below = np.floor(position).astype(int)
    above = np.minimum(below + 1, len(ordered) - 1)
    weight = (position - below)[:, None]
    return ordered[below] * (1 - weight) + ordered[above] * weight


def reference_distance(samples, reference):
    """Mean over samples of the RMS (per coordinate) distance to the reference sample made from
    the same noise: how far the few-step solution lands from the converged one."""
    a, b = _as_matrix(samples), _as_matrix(reference)
    return float(np.sqrt(((a - b) ** 2).mean(1)).mean())


def knn_divergence(samples, data, k=None):
    """k-nearest-neighbour estimate of KL(samples || data) (Wang, Kulkarni and Verdu, 2009):
    d * mean log(nu_k / rho_k) + log(m / (n - 1)), rho_k the distance of each sample to its k-th
    neighbour among the samples, nu_k to its k-th neighbour among the m data draws. Samples
    stranded between the data's modes raise it, as they raise the NLL under the true density (a
    sliced Wasserstein distance of a thousand samples barely sees them); collapsing onto the modes
    raises it too (rho_k shrinks), where the NLL would reward it. Exact ties are clamped so the
    figure stays finite."""
    from scipy.spatial import cKDTree

    k = KNN_NEIGHBOURS if k is None else k
    a = np.asarray(torch.as_tensor(samples).reshape(len(samples), -1).double())
    b = np.asarray(torch.as_tensor(data).reshape(len(data), -1).double())
    if not np.all(np.isfinite(a)):  # a diverged solver: worst possible, and still valid JSON in the state
        return DIVERGED
    rho = cKDTree(a).query(a, [k + 1])[0][:, 0]  # [k]: only the k-th neighbour, any k
    nu = cKDTree(b).query(a, [k])[0][:, 0]
    tiny = 1e-12 * (1.0 + float(np.abs(b).max()))
    return float(a.shape[1] * np.mean(np.log(np.maximum(nu, tiny) / np.maximum(rho, tiny))) + math.log(len(b) / (len(a) - 1)))
