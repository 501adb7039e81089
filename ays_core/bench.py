"""Benchmark schedules: sample with k-diffusion's own samplers at equal NFE and score every cell.
The samplers and their NFE accounting live in samplers.py, the figures in metrics.py.

Fairness rules, kept by construction:
- NFE is counted honestly (samplers.py): `steps_for_nfe` picks the most steps that fit the
  budget; the denoiser calls actually made are counted and reported next to the budget.
- Every schedule sees the same noise: the same starting noise per seed, and for stochastic samplers
  the same Brownian path (a seeded Brownian tree over the model's sigma range, which any schedule
  queries consistently).
- Real data used for scoring is held out from what the model was trained on and what schedules
  are optimized on (the digits "heldout" half; fresh draws for the toys).

What the samples are scored against is in scoring.py (its first metric is the main one, the one the
verdict and the oracle use); tables, verdicts, headroom and plots in bench_report.py.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .baselines import BASELINES
from .errors import AYSError
from .lookup import schedule
from .samplers import get_sampler, initial_noise, run_sampler, steps_for_nfe
from .scoring import REF_METRIC, DensityScorer, data_shape, scorer_for

CONVENTION_SUFFIXES = (":ays", ":a1111")
COMPUTED_SCHEDULES = ("gits", "oracle")  # made for the model by the bench itself (ScheduleBook)


# ---------------------------------------------------------------- schedules

def split_convention(spec):
    """'karras:ays' -> ('karras', 'ays'); a spec without a suffix keeps its default convention."""
    for suffix in CONVENTION_SUFFIXES:
        if spec.endswith(suffix):
            return spec[: -len(suffix)], suffix[1:]
    return spec, None


def schedule_sigmas(spec, steps, sigma_min, sigma_max, registry=None):
    """Sampling sigmas (steps + 1 values ending in 0) on the model's range for a schedule spec:
    a baseline name, a registry id ('sd15', 'sd15@1') or a schedule file, optionally suffixed
    ':ays' or ':a1111' for the step convention. Stored schedules default to 'ays'; baselines
    default to k-diffusion's own form (n points, then 0), and ':ays' gives them the stored-schedule
    treatment (n + 1 points, the last replaced by 0) so both conventions can be compared.
    `registry`: a registry folder searched before the shipped one."""
    name, convention = split_convention(spec)
    if name in BASELINES:
        if convention == "ays":
            sigmas = schedule(name, steps + 1, sigma_min=sigma_min, sigma_max=sigma_max)[:-1].copy()
            sigmas[-1] = 0.0
            return sigmas
        return schedule(name, steps, sigma_min=sigma_min, sigma_max=sigma_max)
    return schedule(name, steps, convention=convention or "ays", sigma_min=sigma_min, sigma_max=sigma_max,
                    registry=registry)


def schedule_label(spec):
    """A short column label: file paths shrink to their file name."""
    name, convention = split_convention(spec)
    if name.endswith(".json") or "/" in name or "\\" in name:
        name = Path(name).stem
    return name if convention is None else f"{name}:{convention}"


def mean_and_interval(values, level=0.95):
    """Mean and the half-width of a Student-t confidence interval (nan for a single value)."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float(values.mean()), math.nan
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean()), float(half)


# ---------------------------------------------------------------- the benchmark

@dataclass
class BenchResult:
    config: dict
    metrics: tuple
    rows: list        # one per (seed, sampler, nfe, schedule): the raw numbers
    summary: list     # one per (sampler, nfe, schedule): mean and CI per metric
    schedules: dict   # label -> sigmas at the largest step count
    examples: dict    # (sampler, schedule label or 'reference') -> samples of the first seed, lowest NFE
    real: object      # real samples for the scatter plot (toys) or None
    reference_rows: list = ()  # one per (seed, sampler): the scores of the many-step reference run


def validate_request(schedules, samplers, nfes, samples, seeds):
    if not schedules:
        raise AYSError("give at least one schedule")
    labels = [schedule_label(spec) for spec in schedules]
    if len(set(labels)) != len(labels):
        raise AYSError(f"schedules must have distinct names, got {', '.join(labels)}")
    for name in samplers:
        get_sampler(name)
    for nfe in nfes:
        steps_for_nfe(samplers[0], nfe)
    if not isinstance(samples, int) or samples < 2:
        raise AYSError(f"samples per cell must be at least 2, got {samples!r}")
    if not isinstance(seeds, int) or seeds < 1:
        raise AYSError(f"seeds must be at least 1, got {seeds!r}")


@dataclass(frozen=True)
class PeerSettings:
    """How the computed schedules are made: "gits" (GITS-style DP, ays_core/gits.py) and "oracle"
    (a direct search on the main metric, ays_core/oracle.py)."""
    gits: object = None    # gits.GitsSettings; None: its defaults
    oracle: object = None  # oracle.OracleSettings; None: its defaults


class ScheduleBook:
    """The sampling sigmas of every schedule spec for each (sampler, steps). Stored and hand-made
    schedules resolve by name; "gits" runs its teacher once per model; "oracle" is searched per
    (sampler, steps) by `search_oracles` before the bench samples."""

    def __init__(self, denoiser, specs, shape, registry, peers):
        self.denoiser, self.specs, self.shape, self.registry, self.peers = denoiser, specs, shape, registry, peers
        self.range = (float(denoiser.sigma_min), float(denoiser.sigma_max))
        self._gits, self.oracles = None, {}

    def sigmas(self, spec, sampler, steps):
        if spec == "gits":
            if self._gits is None:
                from .gits import Gits, GitsSettings

                self._gits = Gits(self.denoiser, self.shape, self.peers.gits or GitsSettings())
            return self._gits.sigmas(steps)
        if spec == "oracle":
            return self.oracles[(sampler, steps)]
        return schedule_sigmas(spec, steps, *self.range, self.registry)

    def search_oracles(self, scorer, samplers, step_counts, progress):
        """One oracle per (sampler, steps), started from every other schedule of the bench."""
        from tqdm import tqdm

        from .oracle import OracleSettings, search

        settings = self.peers.oracle or OracleSettings()
        main = scorer.metrics[0].key
        x_start = initial_noise(self.shape, settings.samples, self.range[1], settings.seed)
        others = [spec for spec in self.specs if spec != "oracle"]
        for sampler in tqdm(samplers, desc="oracle", unit="sampler", disable=not progress):
            reference = None
            if main == REF_METRIC.key:
                reference_sigmas = schedule_sigmas("karras", 100, *self.range)
                reference, _ = run_sampler(self.denoiser, sampler, reference_sigmas, x_start, settings.seed, self.range)

            def evaluate(sigmas, sampler=sampler, reference=reference):
                samples, _ = run_sampler(self.denoiser, sampler, sigmas, x_start, settings.seed, self.range)
                value = scorer.score(samples, samples if reference is None else reference)[main]
                return value if math.isfinite(value) else math.inf

            for steps in step_counts:
                starts = [self.sigmas(spec, sampler, steps) for spec in others]
                self.oracles[(sampler, steps)] = search(evaluate, starts, self.range[0], settings)[0]


def run_bench(denoiser, schedules, samplers=("euler", "dpmpp_2m"), nfes=(6, 8, 10), samples=1000, seeds=3,
              seed=0, reference_steps=100, registry=None, progress=True, peers=PeerSettings()):
    """Sample every (seed, sampler, NFE, schedule) cell from the same noise and score it. The first
    schedule is the candidate the verdict judges against the others (the oracle excepted)."""
    from tqdm import tqdm

    samplers, nfes = list(samplers), sorted(set(nfes))
    validate_request(schedules, samplers, nfes, samples, seeds)
    sigma_min, sigma_max = float(denoiser.sigma_min), float(denoiser.sigma_max)
    labels = [schedule_label(spec) for spec in schedules]
    shape = data_shape(denoiser)
    book = ScheduleBook(denoiser, schedules, shape, registry, peers)
    # Resolve every named schedule before any sampling, so a bad id fails at once.
    for spec in schedules:
        if spec not in COMPUTED_SCHEDULES:
            book.sigmas(spec, samplers[0], max(nfes))
    scorer = scorer_for(denoiser, samples, seed)
    if "oracle" in schedules:
        book.search_oracles(scorer, samplers, sorted({steps_for_nfe(s, n) for s in samplers for n in nfes}), progress)
    plotted = {label: book.sigmas(spec, samplers[0], steps_for_nfe(samplers[0], max(nfes)))
               for spec, label in zip(schedules, labels)}
    rows, reference_rows, examples = [], [], {}
    cells = tqdm(total=seeds * len(samplers) * len(nfes) * len(schedules), desc="bench", unit="cell",
                 disable=not progress)
    for seed_index in range(seeds):
        run_seed = seed + seed_index
        x_start = initial_noise(shape, samples, sigma_max, run_seed)
        for sampler in samplers:
            reference_sigmas = schedule_sigmas("karras", reference_steps, sigma_min, sigma_max)
            reference, calls = run_sampler(denoiser, sampler, reference_sigmas, x_start, run_seed, (sigma_min, sigma_max))
            reference_rows.append({"seed": run_seed, "sampler": sampler, "nfe": calls, "steps": reference_steps,
                                   "schedule": "karras", **scorer.score(reference, reference)})
            if seed_index == 0:
                examples[(sampler, "reference")] = reference
            for nfe in nfes:
                steps = steps_for_nfe(sampler, nfe)
                for spec, label in zip(schedules, labels):
                    sigmas = book.sigmas(spec, sampler, steps)
                    result, calls = run_sampler(denoiser, sampler, sigmas, x_start, run_seed, (sigma_min, sigma_max))
                    if seed_index == 0 and nfe == nfes[0]:
                        examples[(sampler, label)] = result
                    rows.append({"seed": run_seed, "sampler": sampler, "nfe": nfe, "steps": steps, "nfe_used": calls,
                                 "schedule": label, **scorer.score(result, reference)})
                    cells.update()
    cells.close()
    config = {"model": dict(getattr(denoiser, "model_info", None) or {}), "sigma_min": sigma_min,
              "sigma_max": sigma_max, "schedules": list(schedules), "candidate": labels[0], "samplers": samplers,
              "nfe": nfes, "samples": samples, "seeds": [seed + i for i in range(seeds)],
              "reference_steps": reference_steps, "scorer": scorer.kind,
              "oracle": {f"{sampler}@{steps}": [float(s) for s in sigmas] for (sampler, steps), sigmas in book.oracles.items()}}
    real = scorer.real if isinstance(scorer, DensityScorer) else None
    return BenchResult(config, scorer.metrics, rows, summarize(rows, scorer.metrics), plotted, examples, real,
                       reference_rows)


def summarize(rows, metrics):
    """Mean and CI half-width over seeds for each (sampler, nfe, schedule), in first-seen order."""
    groups = {}
    for row in rows:
        groups.setdefault((row["sampler"], row["nfe"], row["schedule"]), []).append(row)
    summary = []
    for (sampler, nfe, label), members in groups.items():
        entry = {"sampler": sampler, "nfe": nfe, "steps": members[0]["steps"], "nfe_used": members[0]["nfe_used"],
                 "schedule": label, "seeds": len(members)}
        for metric in metrics:
            entry[metric.key], entry[f"{metric.key}_ci"] = mean_and_interval([m[metric.key] for m in members])
        summary.append(entry)
    return summary
