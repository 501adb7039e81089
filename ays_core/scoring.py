"""What a bench scores samples against, by model kind; the first metric of each scorer is the main
one (the verdict's and the oracle's).

- toys with a known density (the denoiser has `log_prob` and `sample_data`): sliced Wasserstein-2
  against fresh true samples, then the NLL under the true density (which alone rewards collapsing
  onto the modes);
- checkpoints with a feature network (digits): Frechet distance and KID in its feature space against
  held-out real digits, then Frechet distance and sliced W2 on the pixels;
- photo-patch checkpoints: the pixel-space pair against held-out patches;
- every model: RMS distance to a many-step reference run of the same sampler from the same noise.
"""
from dataclasses import dataclass

import torch

from .errors import AYSError
from .metrics import FrechetReference, SlicedReference, kernel_inception_distance, reference_distance


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str = ""  # what the number measures, for plot axes


REF_METRIC = Metric("ref_dist", "dist. to ref", "RMS per coordinate, data units")


class Scorer:
    """Scores a batch of samples; subclasses compare against real data of their kind."""

    metrics = (REF_METRIC,)
    kind = "reference"

    def score(self, samples, reference):
        return {REF_METRIC.key: reference_distance(samples, reference)}


class DensityScorer(Scorer):
    """Toys with a known density: NLL under it and sliced Wasserstein to fresh true samples."""

    # Sliced W2 leads: NLL alone rewards collapsing onto the modes (a search on it finds that).
    metrics = (Metric("swd", "sliced W2", "data units"), Metric("nll", "NLL", "nats per sample"), REF_METRIC)
    kind = "density"

    def __init__(self, denoiser, count, seed):
        self.denoiser = denoiser
        # Fresh draws from a generator of their own: never the data a schedule was optimized on.
        generator = torch.Generator().manual_seed(10_000_019 + seed)
        self.real = denoiser.sample_data(max(count, 2000), generator=generator)
        self.real_swd = SlicedReference(self.real)

    def score(self, samples, reference):
        nll = -self.denoiser.log_prob(samples).double().mean().item()
        return {"nll": nll, "swd": self.real_swd.distance(samples), **super().score(samples, reference)}


def _flat(samples):
    return samples.double().numpy().reshape(len(samples), -1)


class PixelScorer(Scorer):
    """Image checkpoints with held-out real images: Frechet distance and sliced Wasserstein-2
    computed on the pixels themselves (data space: no feature network to please)."""

    metrics = (Metric("pixel_fd", "pixel FD", "squared pixel units, pixels in [-1, 1]"),
               Metric("pixel_swd", "pixel sliced W2", "pixel units, pixels in [-1, 1]"), REF_METRIC)
    kind = "pixels"

    def __init__(self, real):
        self.real = real
        flat = _flat(real)
        self.real_pixel_fd, self.real_pixel_swd = FrechetReference(flat), SlicedReference(flat)

    def pixel_scores(self, samples):
        flat = _flat(samples)
        return {"pixel_fd": self.real_pixel_fd.distance(flat), "pixel_swd": self.real_pixel_swd.distance(flat)}

    def score(self, samples, reference):
        return {**self.pixel_scores(samples), **super().score(samples, reference)}


class FeatureScorer(PixelScorer):
    """Checkpoints with a feature network: Frechet distance and KID in its feature space to held-out
    data, and the pixel-space metrics beside them."""

    metrics = (Metric("fd", "Frechet dist.", "feature network units squared"),
               Metric("kid", "KID", "polynomial-kernel MMD^2"), *PixelScorer.metrics)
    kind = "features"

    def __init__(self, feature_network, real):
        super().__init__(real)
        self.feature_network = feature_network
        self.real_features = self.features(real)
        self.real_fd = FrechetReference(self.real_features)

    def features(self, samples):
        with torch.no_grad():
            return self.feature_network.features(samples.float()).double().numpy()

    def score(self, samples, reference):
        features = self.features(samples)
        return {
            "fd": self.real_fd.distance(features),
            "kid": kernel_inception_distance(features, self.real_features),
            **super().score(samples, reference),
        }


def scorer_for(denoiser, samples, seed):
    """The richest scorer the model allows (see the module docstring)."""
    from .models.digits import DIGITS_DATASET, digits_split, load_feature_network
    from .models.patches import PATCH, PATCHES_DATASET, patches_split

    if hasattr(denoiser, "log_prob") and hasattr(denoiser, "sample_data"):
        return DensityScorer(denoiser, samples, seed)
    info = getattr(denoiser, "model_info", None) or {}
    shape = tuple(data_shape(denoiser))
    if info.get("dataset") == DIGITS_DATASET and shape == (1, 8, 8):
        return FeatureScorer(load_feature_network(), digits_split("heldout")[0])
    if info.get("dataset") == PATCHES_DATASET and shape == (3, PATCH, PATCH):
        return PixelScorer(patches_split("heldout"))
    return Scorer()


def data_shape(denoiser):
    """The shape of one sample: the model's `data_shape`, else that of one draw of its data."""
    shape = getattr(denoiser, "data_shape", None)
    if shape is None and hasattr(denoiser, "sample_data"):
        shape = denoiser.sample_data(1, generator=torch.Generator().manual_seed(0)).shape[1:]
    if shape is None:
        raise AYSError("the model does not say what shape its samples have (no data_shape or sample_data)")
    return tuple(int(s) for s in shape)
