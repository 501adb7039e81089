"""AYS: sampling schedules optimized for your diffusion model ("Align Your Steps", ICML 2024).

The common case is one call:

    >>> import ays_core
    >>> ays_core.schedule("sdxl", steps=20)        # 21 sigmas ending in 0, from the registry
"""
from .baselines import BASELINES, Baseline, baseline
from .errors import AYSError
from .interp import CONVENTIONS, resample
from .lookup import resolve, schedule
from .registry import Registry, RegistrySet, Schedule, load_schedule
from .version import __version__


__all__ = ["AYSError", "BASELINES", "Baseline", "CONVENTIONS", "Registry", "RegistrySet", "Schedule",
           "baseline", "load_schedule", "resample", "resolve", "schedule"]


def __getattr__(name):
    # The optimizer needs torch; load it on first use so the sigma path stays light.
    if name in ("optimize", "OptimizeResult"):
        from . import search

        return getattr(search, name)
    raise AttributeError(f"module 'ays_core' has no attribute {name!r}")


__all__ += ["optimize", "OptimizeResult"]
