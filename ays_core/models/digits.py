"""Small networks for small images, rebuilt from a config stored in a safetensors file.

Two kinds of checkpoint share the format (tensors + a JSON config in the metadata under "ays"):
- a denoiser ("kind": "denoiser"): a network conditioned on the noise level, wrapped in EDM
  preconditioning (Karras et al. 2022) in k-diffusion convention, x = x0 + sigma * eps; the
  network is a residual MLP ("arch": "mlp", the default) or a small UNet ("arch": "unet",
  ays_core/models/unet.py);
- a feature network ("kind": "classifier"): an MLP classifier whose penultimate layer is the
  feature space of the Frechet distance and KID in `ays bench`.
The bundled checkpoints (ays_core/assets/: the digits MLP and the photo-patch UNet) are such files;
any file of this format loads the same way. benchmarks/train_digits.py and
benchmarks/train_patches.py train them from a seed. A denoiser whose config names a dataset this
package knows (digits, ays_core/models/patches.py) gets draws of that dataset's train half as x0.

Data: scikit-learn's 8x8 digits (pixel values 0..16) scaled to [-1, 1]. A fixed permutation
(DIGITS_SPLIT_SEED) splits it in two halves: "train" (denoiser training and schedule
optimization) and "heldout" (feature network training and the real set every metric compares
against), so samples used to fit or optimize are never used to score.
"""
import json
import math
import os

import numpy as np
import torch
from torch import nn

from ..errors import AYSError
from ..fileio import atomic_write, file_sha256
from .noise_embedding import fourier_embedding
from .patches import PATCH, PATCHES_DATASET, train_sampler

ASSETS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
BUNDLED_DENOISER = os.path.join(ASSETS_DIR, "digits_denoiser.safetensors")
BUNDLED_FEATURES = os.path.join(ASSETS_DIR, "digits_features.safetensors")
BUNDLED_PATCHES_DENOISER = os.path.join(ASSETS_DIR, "patches_unet.safetensors")

DIGITS_DATASET = "sklearn-digits-8x8"
DIGITS_SPLIT_SEED = 0
METADATA_KEY = "ays"
_MAX_WIDTH = 4096
_MAX_DEPTH = 32
_MAX_DIM = 1 << 20
_MAX_CHANNELS = 1024


def digits_split(part):
    """The digits as a float32 tensor [n, 1, 8, 8] in [-1, 1] plus labels, for part "train",
    "heldout" or "all". The split is fixed: it never depends on any user seed."""
    from sklearn.datasets import load_digits

    if part not in ("train", "heldout", "all"):
        raise AYSError(f"unknown digits split {part!r}: use train, heldout or all")
    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 8.0 - 1.0).unsqueeze(1)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    if part == "all":
        return images, labels
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(images))
    half = (len(images) + 1) // 2
    chosen = torch.from_numpy(order[:half] if part == "train" else order[half:])
    return images[chosen], labels[chosen]


class ResidualBlock(nn.Module):
    """LayerNorm -> scale/shift from the noise embedding -> SiLU -> Linear, added back."""

    def __init__(self, width, emb_dim):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.film = nn.Linear(emb_dim, 2 * width)
        self.linear = nn.Linear(width, width)

    def forward(self, h, emb):
        scale, shift = self.film(emb).chunk(2, dim=1)
        return h + self.linear(nn.functional.silu(self.norm(h) * (1 + scale) + shift))


class NoiseConditionedMLP(nn.Module):
    """F(c_in * x, c_noise) of EDM: flat input, residual blocks, flat output."""

    def __init__(self, dim, width, depth, emb_dim):
        super().__init__()
        self.emb_dim = emb_dim
        self.embed = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU())
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(ResidualBlock(width, emb_dim) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, dim))

    def forward(self, x, c_noise):
        emb = self.embed(fourier_embedding(c_noise, self.emb_dim))
        h = self.inp(x.flatten(1))
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h).view_as(x)


def _noise_conditioned_network(config):
    """The network F a denoiser config describes: "arch" "mlp" (the default) or "unet"."""
    if config.get("arch", "mlp") == "unet":
        from .unet import NoiseConditionedUNet

        return NoiseConditionedUNet(config["data_shape"], config["channels"], config["emb_dim"])
    return NoiseConditionedMLP(math.prod(config["data_shape"]), config["width"], config["depth"], config["emb_dim"])


class EDMDenoiser(nn.Module):
    """D(x, sigma) = c_skip x + c_out F(c_in x, ln(sigma) / 4): the ays denoiser contract."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.sigma_data = float(config["sigma_data"])
        self.sigma_min = float(config["sigma_min"])
        self.sigma_max = float(config["sigma_max"])
        self.data_shape = tuple(config["data_shape"])
        self.net = _noise_conditioned_network(config)
        self.model_info = {"name": config.get("name", "mlp-denoiser"), "dataset": config.get("dataset", "")}

    def preconditioning(self, sigma, ndim):
        """c_skip, c_out, c_in shaped to broadcast over a batch of ndim dims, and c_noise [batch]."""
        sd2 = self.sigma_data**2
        s = sigma.reshape(-1, *([1] * (ndim - 1)))
        c_skip = sd2 / (s**2 + sd2)
        c_out = s * self.sigma_data / (s**2 + sd2).sqrt()
        c_in = 1 / (s**2 + sd2).sqrt()
        return c_skip, c_out, c_in, sigma.log() / 4

    def loss(self, x0, sigma, noise):
        """EDM training loss (its lambda(sigma) weighting folded into the regression target)."""
        c_skip, c_out, c_in, c_noise = self.preconditioning(sigma, x0.ndim)
        x = x0 + noise * sigma.reshape(c_skip.shape)
        target = (x0 - c_skip * x) / c_out
        return (self.net(x * c_in, c_noise) - target).square().mean()

    def forward(self, x, sigma, **cond):
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(len(x))
        c_skip, c_out, c_in, c_noise = self.preconditioning(sigma, x.ndim)
        return c_skip * x + c_out * self.net(x * c_in, c_noise)


class FeatureClassifier(nn.Module):
    """MLP classifier; `features(x)` is its penultimate layer, the space metrics are computed in."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.data_shape = tuple(config["data_shape"])
        width, feature_dim = config["width"], config["feature_dim"]
        self.body = nn.Sequential(
            nn.Linear(math.prod(self.data_shape), width), nn.SiLU(),
            nn.Linear(width, feature_dim), nn.SiLU(),
        )
        self.head = nn.Linear(feature_dim, config["classes"])

    def features(self, x):
        return self.body(x.flatten(1))

    def forward(self, x):
        return self.head(self.features(x))


_BUILDERS = {"denoiser": EDMDenoiser, "classifier": FeatureClassifier}


def _positive_int(config, key, limit):
    value = config.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
        raise AYSError(f"checkpoint config: {key!r} must be an integer in [1, {limit}], got {value!r}")
    return value


def _positive_float(config, key):
    value = config.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < math.inf:
        raise AYSError(f"checkpoint config: {key!r} must be a positive number, got {value!r}")
    return float(value)


def _validate_architecture(config):
    arch = config.get("arch", "mlp")
    if arch == "mlp":
        _positive_int(config, "width", _MAX_WIDTH)
        _positive_int(config, "depth", _MAX_DEPTH)
        return
    if arch != "unet":
        raise AYSError(f"checkpoint config: 'arch' must be 'mlp' or 'unet', got {arch!r}")
    channels, shape = config.get("channels"), config["data_shape"]
    if (not isinstance(channels, list) or not 1 <= len(channels) <= 5
            or not all(isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= _MAX_CHANNELS for c in channels)):
        raise AYSError(f"checkpoint config: 'channels' must be a list of 1 to 5 integers in [1, {_MAX_CHANNELS}], "
                       f"got {channels!r}")
    if len(shape) != 3 or shape[0] > 4:
        raise AYSError(f"checkpoint config: a unet takes images [channels <= 4, height, width], got {shape!r}")


def validate_config(config):
    """Check a config read from an (untrusted) checkpoint before building anything from it."""
    if not isinstance(config, dict) or config.get("kind") not in _BUILDERS:
        raise AYSError(f"checkpoint config: 'kind' must be one of {sorted(_BUILDERS)}")
    shape = config.get("data_shape")
    if (not isinstance(shape, list) or not 1 <= len(shape) <= 4
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape)
            or math.prod(shape) > _MAX_DIM):
        raise AYSError(f"checkpoint config: 'data_shape' must be a list of 1 to 4 positive integers, got {shape!r}")
    if config["kind"] == "denoiser":
        _validate_architecture(config)
        if _positive_int(config, "emb_dim", _MAX_WIDTH) % 2:
            raise AYSError("checkpoint config: 'emb_dim' must be even")
        _positive_float(config, "sigma_data")
        if not _positive_float(config, "sigma_min") < _positive_float(config, "sigma_max"):
            raise AYSError("checkpoint config: 'sigma_min' must be below 'sigma_max'")
    else:
        _positive_int(config, "width", _MAX_WIDTH)
        _positive_int(config, "feature_dim", _MAX_WIDTH)
        _positive_int(config, "classes", _MAX_WIDTH)
    return config


def read_checkpoint(path):
    """(config, tensors) of a checkpoint file, or AYSError saying what is wrong with it."""
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    if not os.path.isfile(path):
        raise AYSError(f"checkpoint not found: {path}")
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise AYSError(f"{path} is not a readable safetensors file ({error})") from None
    if METADATA_KEY not in metadata:
        raise AYSError(f"{path} has no '{METADATA_KEY}' config in its metadata: not an ays checkpoint")
    try:
        config = json.loads(metadata[METADATA_KEY])
    except json.JSONDecodeError as error:
        raise AYSError(f"{path}: the '{METADATA_KEY}' metadata is not valid JSON ({error})") from None
    return validate_config(config), tensors


def load_network(path, kind):
    """Build the network a checkpoint file describes, load its weights, return it in eval mode."""
    config, tensors = read_checkpoint(path)
    if config["kind"] != kind:
        raise AYSError(f"{path} holds a {config['kind']}, not a {kind}")
    network = _BUILDERS[kind](config)
    try:
        network.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise AYSError(f"{path}: weights do not match the config ({first_line})") from None
    network.float().eval().requires_grad_(False)
    return network


def load_denoiser_file(path, device=None):
    """The denoiser of a checkpoint file: D(x, sigma) with sigma_min, sigma_max, data_shape and
    model_info (family = the config's name, the file's sha256). A checkpoint whose config names a
    dataset this module knows also gets `sample_data` (draws from that dataset's "train" half),
    the x0 source `ays optimize` uses by default."""
    denoiser = load_network(path, "denoiser").to(device or "cpu")
    config = denoiser.config
    denoiser.model_info = {
        "family": _family_id(config.get("name", "")), "prediction": "edm", "name": os.path.basename(path),
        "sha256": file_sha256(path), "sigma_min": denoiser.sigma_min, "sigma_max": denoiser.sigma_max,
        "dataset": config.get("dataset", ""),
    }
    if config.get("dataset") == DIGITS_DATASET and tuple(config["data_shape"]) == (1, 8, 8):
        denoiser.model_info["data"] = f"{DIGITS_DATASET}, train half (split seed {DIGITS_SPLIT_SEED})"
        denoiser.sample_data = rows_sampler(digits_split("train")[0])
    elif config.get("dataset") == PATCHES_DATASET and tuple(config["data_shape"]) == (3, PATCH, PATCH):
        denoiser.model_info["data"] = f"{PATCHES_DATASET}, train blocks"
        denoiser.sample_data = train_sampler()
    return denoiser


def rows_sampler(data):
    """f(n, generator) drawing n rows of `data` with replacement."""

    def sample_data(n, generator=None):
        return data[torch.randint(len(data), (n,), generator=generator)]

    return sample_data


def _family_id(name):
    """A registry-safe id from a free-form model name ('digits-8x8-mlp' stays as it is)."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower()).strip("-_")
    return cleaned[:64] or "checkpoint"


def load_feature_network(path=BUNDLED_FEATURES):
    return load_network(path, "classifier")


def save_network(network, path):
    """Write weights + config atomically."""
    from safetensors.torch import save

    tensors = {key: value.detach().contiguous() for key, value in network.state_dict().items()}
    atomic_write(path, save(tensors, metadata={METADATA_KEY: json.dumps(network.config, sort_keys=True)}))
