"""Who won a bench cell, in words, from paired per-seed results.

Every schedule in a cell (model, sampler, NFE) is scored on the same seeds from the same noise, so
schedules are compared through per-seed differences: mean difference and the half-width of its
95% Student-t interval ("paired CI"). For the schedule under test (the candidate, "AYS") against
every baseline, on one metric where lower is better:
- "wins": better than every baseline beyond the paired CI;
- "loses to X by d ± ci": some baseline is better beyond it (X: the one it loses to by most);
- "ties": neither (no baseline better beyond the CI, not all worse beyond it).
With a single seed there is no interval, so nothing is "beyond" it: every such cell ties.
"""
import math
from dataclasses import dataclass

import numpy as np


def paired_difference(candidate, baseline, level=0.95):
    """(mean, CI half-width) of candidate - baseline over paired per-seed values (nan CI for one seed)."""
    from scipy import stats

    differences = np.asarray(candidate, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if len(differences) < 2:
        return float(differences.mean()), math.nan
    half = stats.t.ppf(0.5 + level / 2, len(differences) - 1) * differences.std(ddof=1) / math.sqrt(len(differences))
    return float(differences.mean()), float(half)


def beyond(mean, half):
    """-1 if the difference is below 0 beyond its CI, +1 if above, 0 otherwise (or without a CI)."""
    if math.isnan(half):
        return 0
    if mean + half < 0:
        return -1
    if mean - half > 0:
        return 1
    return 0


@dataclass(frozen=True)
class CellVerdict:
    outcome: str        # "wins", "ties" or "loses"
    against: str = ""   # the baseline it loses to most (outcome "loses")
    difference: float = math.nan
    interval: float = math.nan

    def words(self, digits=3):
        if self.outcome != "loses":
            return self.outcome
        return f"loses to {self.against} by {self.difference:.{digits}g} ± {self.interval:.2g}"


def cell_verdict(values, candidate, baselines):
    """`values`: schedule label -> per-seed metric values (same seed order for every label)."""
    comparisons = {name: paired_difference(values[candidate], values[name]) for name in baselines}
    losses = {name: c for name, c in comparisons.items() if beyond(*c) > 0}
    if losses:
        name = max(losses, key=lambda n: losses[n][0])
        return CellVerdict("loses", name, *losses[name])
    if comparisons and all(beyond(*c) < 0 for c in comparisons.values()):
        return CellVerdict("wins")
    return CellVerdict("ties")


def per_seed(rows, metric):
    """{(sampler, nfe): {schedule: [values in seed order]}} from the bench's raw rows."""
    cells = {}
    for row in sorted(rows, key=lambda r: r["seed"]):
        cells.setdefault((row["sampler"], row["nfe"]), {}).setdefault(row["schedule"], []).append(row[metric])
    return cells


def verdicts(rows, metric, candidate, exclude=("oracle",)):
    """{(sampler, nfe): CellVerdict} of `candidate` against every other schedule except `exclude`."""
    result = {}
    for cell, values in per_seed(rows, metric).items():
        baselines = [name for name in values if name != candidate and name not in exclude]
        result[cell] = cell_verdict(values, candidate, baselines)
    return result


def summary_line(cell_verdicts, name="AYS"):
    counts = {outcome: sum(v.outcome == outcome for v in cell_verdicts.values()) for outcome in ("wins", "ties", "loses")}
    return (f"{name}: {counts['wins']} wins, {counts['ties']} ties, {counts['loses']} losses "
            f"of {len(cell_verdicts)} cells")


def significant_best(values, exclude=("oracle",)):
    """The schedule of a cell that beats every other one beyond the paired CI, else None."""
    names = [name for name in values if name not in exclude]
    for name in names:
        if all(beyond(*paired_difference(values[name], values[other])) < 0 for other in names if other != name):
            return name
    return None
