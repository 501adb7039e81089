"""Sampling sigmas computed by hand for the tests that check what a sampler receives: written out
point by point from the definitions in docs/ARCHITECTURE.md, sharing no code with ays_core.interp,
so that a bug there cannot hide behind an expected value made by the same bug."""
import math

# The paper's published 10-step lists (sigma, high to low), as printed to 3 decimals: what the
# shipped registry holds as sd15@v2 / sdxl@v2 (v1 holds SD's noise table read at the timesteps).
PUBLISHED_SD15 = (14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029)
PUBLISHED_SDXL = (14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029)
ROUNDING = 0.01  # a requested end this close (relatively) to the stored one is the stored one


def sampling_sigmas(stored, steps, sigma_min=None, sigma_max=None, convention="ays"):
    """N-step sigmas of a stored (descending) schedule: its log-sigmas mapped affinely onto the
    requested range (an end within ROUNDING of the stored one stays), read at evenly spaced
    positions by linear interpolation, then the final 0 ("ays": N + 1 points, the last replaced
    by 0; "a1111": N points, then 0, one point being the smallest, as the WebUI's built-in)."""
    logs = [math.log(s) for s in stored]
    old_lo, old_hi = logs[-1], logs[0]
    new_lo = old_lo if sigma_min is None or abs(sigma_min / stored[-1] - 1) <= ROUNDING else math.log(sigma_min)
    new_hi = old_hi if sigma_max is None or abs(sigma_max / stored[0] - 1) <= ROUNDING else math.log(sigma_max)
    logs = [new_lo + (v - old_lo) * (new_hi - new_lo) / (old_hi - old_lo) for v in logs]
    points = steps + 1 if convention == "ays" else steps
    sigmas = []
    for i in range(points):
        position = i * (len(logs) - 1) / (points - 1) if points > 1 else len(logs) - 1.0
        left = min(int(position), len(logs) - 2)
        weight = position - left
        sigmas.append(math.exp(logs[left] * (1 - weight) + logs[left + 1] * weight))
    if convention == "ays":
        sigmas[-1] = 0.0
    else:
        sigmas.append(0.0)
    return sigmas
