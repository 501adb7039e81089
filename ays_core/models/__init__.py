"""Denoiser adapters. `load_denoiser(spec)` turns a model spec from the command line into a
denoiser following the contract in docs/ARCHITECTURE.md.

Specs are `SCHEME:NAME[?key=value&...]`, e.g. `toy:gaussian`, `toy:gaussian?c=1&d=16`,
`toy:gmm8x8?std=0.05&sigma_max=40`. Each scheme has one loader in LOADERS. A path to a
checkpoint file (`*.safetensors`, e.g. the bundled ays_core/assets/digits_denoiser.safetensors)
loads through ays_core.models.digits.
"""
import math
from urllib.parse import parse_qsl

from ..errors import AYSError
from ..interp import check_range


def _number(options, key, default, kind=float):
    """options[key] parsed as `kind` (finite, > 0), or `default` when absent."""
    if key not in options:
        return default
    raw = options.pop(key)
    try:
        value = kind(raw)
    except ValueError:
        raise AYSError(f"model option {key}={raw!r} is not a {'whole ' if kind is int else ''}number") from None
    if not math.isfinite(value) or value <= 0:
        raise AYSError(f"model option {key} must be a finite number > 0, got {raw!r}")
    return value


def _load_toy(name, options, device):
    from .toy import DEFAULT_SIGMA_MAX, DEFAULT_SIGMA_MIN, GaussianToy, GridMixtureToy

    sigma_min = _number(options, "sigma_min", DEFAULT_SIGMA_MIN)
    sigma_max = _number(options, "sigma_max", DEFAULT_SIGMA_MAX)
    try:
        check_range(sigma_min, sigma_max)
    except AYSError as exc:  # options of the model spec, not settings of a run
        raise AYSError(f"model options: {exc}") from None
    if name == "gaussian":
        d = _number(options, "d", 2, int)
        if d > 65536:
            raise AYSError(f"toy:gaussian takes d <= 65536, got {d}")
        return GaussianToy(c=_number(options, "c", 0.5), d=d, sigma_min=sigma_min, sigma_max=sigma_max)
    if name == "gmm8x8":
        return GridMixtureToy(k=8, std=_number(options, "std", 0.03), sigma_min=sigma_min, sigma_max=sigma_max)
    raise AYSError(f"unknown toy model {name!r}; known: toy:gaussian, toy:gmm8x8")


LOADERS = {"toy": _load_toy}


def parse_spec(spec):
    """'toy:gaussian?c=1' -> ('toy', 'gaussian', {'c': '1'})."""
    head, _, query = str(spec).partition("?")
    scheme, sep, name = head.partition(":")
    if not sep or not name:
        raise AYSError(f"model spec {spec!r} is neither an existing checkpoint file nor SCHEME:NAME "
                       f"(known schemes: {', '.join(sorted(LOADERS))})")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise AYSError(f"model spec {spec!r}: options must look like ?key=value&key=value") from None
    options = dict(pairs)
    if len(options) != len(pairs):
        raise AYSError(f"model spec {spec!r} repeats an option")
    return scheme, name, options


def is_checkpoint_file(spec):
    """A spec naming an ays checkpoint file (a *.safetensors path, or any existing file) rather
    than SCHEME:NAME with a known scheme."""
    import os

    spec = str(spec)
    if spec.partition(":")[0] in LOADERS:
        return False
    return spec.lower().endswith(".safetensors") or os.path.isfile(spec)


def load_denoiser(spec, device=None):
    """The denoiser a model spec names, on `device` (CPU by default)."""
    if is_checkpoint_file(spec):
        from .digits import load_denoiser_file

        return load_denoiser_file(str(spec), device=device)
    scheme, name, options = parse_spec(spec)
    if scheme not in LOADERS:
        raise AYSError(f"unknown model scheme {scheme!r} in {spec!r}; known: {', '.join(sorted(LOADERS))}")
    model = LOADERS[scheme](name, options, device)
    if options:
        raise AYSError(f"model {scheme}:{name} has no option(s) {', '.join(sorted(options))}")
    return model


def architecture_of(spec):
    """(Architecture, dtype option) of an arch: or diffusers: spec, read from configs without
    loading weights; (None, None) for other models."""
    from pathlib import Path

    from .architectures import Architecture, architecture
    from .diffusers_adapter import PREDICTION_TYPES, read_config

    if is_checkpoint_file(spec):
        return None, None
    scheme, name, options = parse_spec(spec)
    if scheme == "arch":
        return architecture(name), options.get("dtype")
    if scheme != "diffusers":
        return None, None
    folder = Path(name).expanduser()
    if folder.is_file():
        folder = Path(options.get("config") or "")
        if not (folder / "model_index.json").is_file():
            raise AYSError("a dry run of a single-file checkpoint needs ?config=DIR (its pipeline folder of configs)")
    unet_dir = folder / "unet" if (folder / "unet").is_dir() else folder
    config = read_config(unet_dir / "config.json", "UNet")
    scheduler_path = folder / "scheduler" / "scheduler_config.json"
    scheduler = read_config(scheduler_path, "scheduler") if scheduler_path.is_file() else {}
    prediction = PREDICTION_TYPES.get(scheduler.get("prediction_type", "epsilon"), "eps")
    return Architecture.from_unet_config(config, "custom", prediction), options.get("dtype")


def _load_diffusers(name, options, device):
    from .diffusers_adapter import load_diffusers_denoiser

    return load_diffusers_denoiser(name, options, device)


def _load_architecture(name, options, device):
    from .architectures import architecture

    architecture(name)  # unknown names get the list of known ones
    raise AYSError(f"arch:{name} is a model's shape without weights: use it with --dry-run")


LOADERS.update({"diffusers": _load_diffusers, "arch": _load_architecture})
