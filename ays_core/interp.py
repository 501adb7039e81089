"""From a stored schedule to the sigmas a sampler runs: resampling, range, steps, denoise.

A *stored* schedule runs from sigma_max down to sigma_min (no trailing 0). A *sampling* schedule
for N steps holds N + 1 values and ends in 0.

Step conventions (CONVENTIONS):
- "ays" (default, ComfyUI's): resample the stored list to N + 1 points in log-sigma, then replace
  the last one by 0. At N = 10 a 10-step stored list comes back exactly as the paper publishes it
  (its final sigma_min swapped for 0), and the final step jumps from the smallest nonzero sigma to
  0 like every k-diffusion schedule. On the toy benchmarks it samples better than the alternative.
- "a1111": resample to N points, then append 0, as AUTOMATIC1111's built-in "Align Your Steps"
  does; offered so that images made with that scheduler can be reproduced (bit for bit: the
  interpolation below is the one the WebUI, ComfyUI and the paper's how-to compute).

Range: a requested sigma_min/sigma_max within ROUNDING of the stored end is that end. The paper
publishes SD's range [0.0291675, 14.614642] rounded to 0.029 / 14.615; rescaling the published list
onto the unrounded range would move every value, so the WebUI's own range leaves it as published
(the built-in scheduler ignores the range altogether). A real override (sigma min/max settings,
another model's range) rescales.
"""
import math

import numpy as np

from .errors import AYSError, SettingError

CONVENTIONS = ("ays", "a1111")
ROUNDING = 0.01  # relative: 0.029 vs 0.0291675 is 0.6%, 14.615 vs 14.614642 is 0.002%
MAX_STEPS = 10_000  # far above any sampler's use; keeps a typo from allocating gigabytes


def loglinear_interp(sigmas, num_points):
    """Resample a descending positive sigma list to `num_points` values evenly spaced in position,
    interpolating log(sigma) linearly. Both ends are kept; as many points as stored give the list
    itself, unchanged; one point gives the last (smallest) value, as in the WebUI."""
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if num_points == len(sigmas):
        return sigmas.copy()
    # over the ascending list, then reversed: the same floating-point steps as the WebUIs' code
    ascending = np.interp(np.linspace(0.0, 1.0, num_points), np.linspace(0.0, 1.0, len(sigmas)),
                          in_place(np.log, sigmas[::-1]))
    return in_place(np.exp, ascending)[::-1].copy()


def in_place(ufunc, values):
    """ufunc(values) (np.log, np.exp), computed in place in a contiguous float64 copy of `values`.
    numpy's vectorised loops (AVX-512 builds) switch to a scalar loop that can round the last bit
    the other way when a new output's memory touches the input's, as it does when the allocator
    puts the output right below a reversed view: the same schedule then resampled to different
    bits from one call to the next. In place, the same loop runs every time."""
    out = np.array(values, dtype=np.float64)
    return ufunc(out, out=out)


def snap(requested, stored_end):
    """`requested`, or the stored end when the two differ by no more than a rounding (ROUNDING)."""
    return float(stored_end) if abs(requested / stored_end - 1.0) <= ROUNDING else requested


def rescale(sigmas, sigma_min, sigma_max):
    """Map a descending schedule affinely in log-sigma so it runs from sigma_max to sigma_min.

    We rescale rather than clip: a schedule optimized for one range keeps its shape (where in the
    range its steps sit) on another range, and no two points collapse onto a clipped end."""
    sigmas = np.asarray(sigmas, dtype=np.float64)
    lo, hi = math.log(sigmas[-1]), math.log(sigmas[0])
    new_lo, new_hi = math.log(sigma_min), math.log(sigma_max)
    if hi == lo:
        return np.full_like(sigmas, sigma_max)
    return in_place(np.exp, new_lo + (in_place(np.log, sigmas) - lo) * (new_hi - new_lo) / (hi - lo))


def truncate(sigmas, denoise):
    """The tail of an N-step sampling schedule for img2img at strength `denoise` in (0, 1]:
    the last max(1, round(N * denoise)) steps. Strengths close to 0 still run one step."""
    check_denoise(denoise)
    steps = len(sigmas) - 1
    kept = max(1, round(steps * denoise))
    return sigmas[-(kept + 1):]


def resample(stored, steps, convention="ays", sigma_min=None, sigma_max=None, denoise=None, exact=None):
    """The N-step sampling schedule (N + 1 values ending in 0) for a stored schedule.

    sigma_min/sigma_max, when given and not a rounding away from the stored ends (see `snap`),
    rescale the stored range onto the requested one (see `rescale`); denoise keeps the img2img
    tail (see `truncate`). `exact`: the N nonzero sigmas of a schedule made for N steps, within the
    stored range; used instead of resampling (in either convention), mapped like the stored list."""
    stored = check_stored_sigmas(stored)
    check_steps(steps)
    if convention not in CONVENTIONS:
        raise AYSError(f"unknown step convention {convention!r}; choose one of {', '.join(CONVENTIONS)}")
    if exact is not None:
        # the stored ends define the map, so exact points keep their place relative to them
        stored_ends = stored[[0, -1]]
        stored = np.concatenate([stored_ends[:1], np.asarray(exact, dtype=np.float64)[1:], stored_ends[1:]])
    if sigma_min is not None or sigma_max is not None:
        lo = float(stored[-1] if sigma_min is None else sigma_min)
        hi = float(stored[0] if sigma_max is None else sigma_max)
        check_range(lo, hi)
        lo, hi = snap(lo, stored[-1]), snap(hi, stored[0])
        if (lo, hi) != (stored[-1], stored[0]):
            stored = rescale(stored, lo, hi)
    if exact is not None:
        sigmas = np.append(stored[:-1], 0.0)
        return sigmas if denoise is None else truncate(sigmas, denoise)
    if convention == "ays":
        sigmas = loglinear_interp(stored, steps + 1)
        sigmas[-1] = 0.0
    else:
        sigmas = np.append(loglinear_interp(stored, steps), 0.0)
    return sigmas if denoise is None else truncate(sigmas, denoise)


def check_steps(steps):
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= MAX_STEPS:
        raise SettingError(lambda n: f"{n} must be a whole number from 1 to {MAX_STEPS}, got {steps!r}", "steps")


def check_denoise(denoise):
    if not isinstance(denoise, (int, float)) or not 0.0 < denoise <= 1.0:
        raise SettingError(lambda n: f"{n} must be in (0, 1], got {denoise!r}", "denoise")


def check_range(sigma_min, sigma_max):
    if not (math.isfinite(sigma_min) and math.isfinite(sigma_max) and 0.0 < sigma_min < sigma_max):
        raise SettingError(lambda lo, hi: f"need 0 < {lo} < {hi} (finite), got {lo} {sigma_min!r}, {hi} {sigma_max!r}",
                           "sigma_min", "sigma_max")


def check_stored_sigmas(sigmas):
    """A stored schedule as a float64 array, or AYSError: at least 2 finite, positive, strictly
    descending values."""
    arr = np.asarray(sigmas, dtype=np.float64)
    if arr.ndim != 1 or len(arr) < 2:
        raise AYSError("a stored schedule needs at least 2 sigmas")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise AYSError("stored sigmas must be finite and positive (no trailing 0)")
    if np.any(np.diff(arr) >= 0):
        raise AYSError("stored sigmas must be strictly descending, from sigma_max to sigma_min")
    return arr
