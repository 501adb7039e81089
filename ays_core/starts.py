"""The schedules stage 0 of the search descends from: the paper's start (EDM rho = 7 for
continuous models, time-uniform for discrete ones) and, with early stopping, the hand-made ones
a descent from a poor start might never reach."""
import math

import numpy as np
import torch

from .baselines import exponential, karras, kl_optimal, time_uniform
from .errors import AYSError, SettingError
from .interp import check_range
from .lookup import resolve

START_BASELINES = ("exponential", "kl_optimal", "sd15")  # descended from after the paper's start


def schedule_range(denoiser, settings):
    """The (sigma_min, sigma_max) the schedule spans: the settings', else the model's. An error
    names as settings only the ends the user set."""
    lo = float(denoiser.sigma_min if settings.sigma_min is None else settings.sigma_min)
    hi = float(denoiser.sigma_max if settings.sigma_max is None else settings.sigma_max)
    given = [field for field in ("sigma_min", "sigma_max") if getattr(settings, field) is not None]
    if len(given) == 1 and math.isfinite(lo) and math.isfinite(hi) and not 0.0 < lo < hi:
        field, other = given[0], ("sigma_max" if given[0] == "sigma_min" else "sigma_min")
        model_end = getattr(denoiser, other)
        raise SettingError(lambda n: f"{n} {getattr(settings, field)!r} leaves no range with the model's {other} "
                                     f"{model_end:.4g} (need 0 < sigma_min < sigma_max)", field)
    check_range(lo, hi)
    return lo, hi


def initial_schedule(denoiser, steps, sigma_min, sigma_max):
    """Ascending start: EDM rho = 7 for continuous models, time-uniform for discrete ones."""
    table = getattr(denoiser, "sigma_table", None)
    if table is None:
        start = karras(steps + 1, sigma_min, sigma_max)
    else:
        start = time_uniform(steps + 1, sigma_min, sigma_max, sigma_table=np.asarray(torch.as_tensor(table).cpu(), dtype=np.float64))
    return _exact_ends(start[:-1][::-1], sigma_min, sigma_max)


def start_schedules(denoiser, steps, sigma_min, sigma_max):
    """{name: ascending schedule} for the stage-0 descents, in order: the paper's start, then
    START_BASELINES (the published SD1.5 AYS list rescaled to the range), all in the
    stored-schedule form (steps + 1 points). Early stopping picks among the iterates of a
    descent, so one descent from a poor start can end worse than a hand-made schedule: on the
    digits model no iterate of the descent from karras reached kl_optimal (docs/BENCHMARKS.md)."""
    starts = {"paper": initial_schedule(denoiser, steps, sigma_min, sigma_max)}
    for name, make in (("exponential", exponential), ("kl_optimal", kl_optimal)):
        starts[name] = _exact_ends(make(steps + 1, sigma_min, sigma_max)[:-1][::-1], sigma_min, sigma_max)
    try:
        published = resolve("sd15", version=1).resample(steps + 1, convention="a1111", sigma_min=sigma_min, sigma_max=sigma_max)
        starts["sd15"] = _exact_ends(published[:-1][::-1], sigma_min, sigma_max)
    except AYSError:  # no shipped registry next to the library: the other starts serve
        pass
    return starts


def _exact_ends(ascending, sigma_min, sigma_max):
    start = np.array(ascending, dtype=np.float64)
    start[0], start[-1] = sigma_min, sigma_max  # exact ends (k-diffusion computes in float32)
    return start
