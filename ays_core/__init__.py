"""AYS: sampling schedules optimized for your diffusion model ("Align Your Steps", ICML 2024).

The common case is one call:

    >>> import ays_core
    >>> ays_core.schedule("sdxl", steps=20)        # 21 sigmas ending in 0, from the registry
"""
__version__ = "0.1.0"

from pathlib import Path

from .baselines import BASELINES, Baseline, baseline
from .errors import AYSError
from .interp import CONVENTIONS, resample
from .registry import SHIPPED_REGISTRY, Registry, RegistrySet, Schedule, default_registry, load_schedule, parse_ref


def resolve(name, registry=None, version=None):
    """What `name` means: a Baseline ('karras', ...), or a stored Schedule from a schedule file
    path or a registry id ('sdxl', 'sdxl@2') looked up in `registry` (default: $AYS_REGISTRY or
    the shipped one) and then in the shipped registry. Both have .id, .version, .resample()."""
    if name in BASELINES:
        return Baseline(name)
    if name.endswith(".json") or "/" in name or "\\" in name:
        if version is not None:
            raise AYSError("--version applies to registry ids, not to a schedule file")
        return load_schedule(Path(name))
    schedule_id, ref_version = parse_ref(name)
    if version is not None and ref_version is not None and version != ref_version:
        raise AYSError(f"{name!r} names version {ref_version} but version {version} was asked for")
    registries = RegistrySet([registry or default_registry(), Registry(SHIPPED_REGISTRY)])
    return registries.get(schedule_id, version or ref_version)


def schedule(name, steps, denoise=None, version=None, registry=None, convention="ays",
             sigma_min=None, sigma_max=None):
    """The N-step sampling sigmas (numpy float64, N + 1 values ending in 0) for `name`:
    a baseline ('karras', 'exponential', ...), a registry id or a schedule file.

    A stored schedule is rescaled to sigma_min/sigma_max when given; a baseline spans them
    (SD's range when not given). `denoise` keeps the img2img tail."""
    source = resolve(name, registry=registry, version=version)
    return source.resample(steps, convention=convention, sigma_min=sigma_min, sigma_max=sigma_max, denoise=denoise)


__all__ = ["AYSError", "BASELINES", "Baseline", "CONVENTIONS", "Registry", "RegistrySet", "Schedule",
           "baseline", "load_schedule", "resample", "resolve", "schedule"]


def __getattr__(name):
    # The optimizer needs torch; load it on first use so the sigma path stays light.
    if name in ("optimize", "OptimizeResult"):
        from . import search

        return getattr(search, name)
    raise AttributeError(f"module 'ays_core' has no attribute {name!r}")


__all__ += ["optimize", "OptimizeResult"]
