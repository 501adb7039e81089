"""The oracle of a bench cell: a direct search of the N-step schedule on the bench's own main metric,
with noise seeds of its own (never the evaluation seeds). It shows how much any schedule could gain
in that cell; it is not a usable method (it needs samples scored against held-out data).

Search: start from the best of the given schedules, then coordinate search on the log-sigma of
each free point (every sigma except sigma_max and the final 0): try moving it a fraction `width` of
the log-gap towards each neighbour, keep a move that lowers the metric, halve `width` after a pass
that moves nothing; stop when the evaluation budget is spent or `width` falls below 1/64.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OracleSettings:
    samples: int = 512
    seed: int = 9_000_000  # never one of the bench's evaluation seeds
    evaluations: int = 40  # metric evaluations after the starts
    start_width: float = 0.5


def moved(sigmas, index, fraction, sigma_min):
    """`sigmas` with point `index` moved `fraction` (-1..1) of the log-gap towards its upper
    neighbour (fraction > 0) or its lower one (fraction < 0); the lower neighbour of the last
    positive point is sigma_min, so the schedule stays within the model's range."""
    out = np.array(sigmas, dtype=np.float64)
    lower = out[index + 1] if out[index + 1] > 0 else sigma_min
    neighbour = out[index - 1] if fraction > 0 else lower
    log_s = np.log(out[index])
    out[index] = np.exp(log_s + abs(fraction) * (np.log(neighbour) - log_s))
    return out


def search(evaluate, starts, sigma_min, settings=OracleSettings()):
    """(best sigmas, best value, evaluations used): coordinate search from the best start.
    `evaluate(sigmas) -> float` (lower is better); `starts`: sampling schedules (N + 1 values,
    ending in 0) of one step count, within [sigma_min, sigma_max]."""
    scored = [(evaluate(np.asarray(s, dtype=np.float64)), np.asarray(s, dtype=np.float64)) for s in starts]
    best_value, best = min(scored, key=lambda item: item[0])
    used, width = 0, settings.start_width
    while used < settings.evaluations and width >= 1 / 64:
        improved = False
        for index in range(1, len(best) - 1):
            for direction in (1, -1):
                candidate = moved(best, index, direction * width, sigma_min)
                if used >= settings.evaluations or np.allclose(candidate, best, rtol=1e-12, atol=0):
                    continue
                value = evaluate(candidate)
                used += 1
                if value < best_value:
                    best_value, best, improved = value, candidate, True
                    break
        if not improved:
            width /= 2
    return best, best_value, used
