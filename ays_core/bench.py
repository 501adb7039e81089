"""Benchmark schedules: sample with k-diffusion's own samplers at equal NFE, score, tabulate, plot.
The samplers and their NFE accounting live in samplers.py, the figures in metrics.py.

Fairness rules, kept by construction:
- NFE is counted honestly (samplers.py): `steps_for_nfe` picks the most steps that fit the
  budget; the denoiser calls actually made are counted and reported next to the budget.
- Every schedule sees the same noise: the same starting noise per seed, and for stochastic samplers
  the same Brownian path (a seeded Brownian tree over the model's sigma range, which any schedule
  queries consistently).
- Real data used for scoring is held out from what the model was trained on and what schedules
  are optimized on (the digits "heldout" half; fresh draws for the toys).

Metrics by model: toys with a known density (the denoiser has `log_prob` and `sample_data`): NLL
of the samples and sliced Wasserstein-2 against true samples; checkpoints with a feature network
(digits): Frechet distance and KID in its feature space against held-out real digits; every model:
RMS distance to a many-step reference run of the same sampler from the same noise.
"""
import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .baselines import BASELINES
from .errors import AYSError
from .fileio import atomic_write
from .lookup import schedule
from .metrics import frechet_distance, kernel_inception_distance, reference_distance, sliced_wasserstein
from .samplers import get_sampler, initial_noise, run_sampler, steps_for_nfe

CONVENTION_SUFFIXES = (":ays", ":a1111")


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


# ---------------------------------------------------------------- what to score against

@dataclass(frozen=True)
class Metric:
    key: str
    label: str


REF_METRIC = Metric("ref_dist", "dist. to ref")


class Scorer:
    """Scores a batch of samples; subclasses compare against real data of their kind."""

    metrics = (REF_METRIC,)
    kind = "reference"

    def score(self, samples, reference):
        return {REF_METRIC.key: reference_distance(samples, reference)}


class DensityScorer(Scorer):
    """Toys with a known density: NLL under it and sliced Wasserstein to fresh true samples."""

    metrics = (Metric("nll", "NLL"), Metric("swd", "sliced W2"), REF_METRIC)
    kind = "density"

    def __init__(self, denoiser, count, seed):
        self.denoiser = denoiser
        # Fresh draws from a generator of their own: never the data a schedule was optimized on.
        generator = torch.Generator().manual_seed(10_000_019 + seed)
        self.real = denoiser.sample_data(max(count, 2000), generator=generator)

    def score(self, samples, reference):
        nll = -self.denoiser.log_prob(samples).double().mean().item()
        return {"nll": nll, "swd": sliced_wasserstein(samples, self.real), **super().score(samples, reference)}


class FeatureScorer(Scorer):
    """Checkpoints with a feature network: Frechet distance and KID to held-out data."""

    metrics = (Metric("fd", "Frechet dist."), Metric("kid", "KID"), REF_METRIC)
    kind = "features"

    def __init__(self, feature_network, real):
        self.feature_network = feature_network
        self.real = real
        self.real_features = self.features(real)

    def features(self, samples):
        with torch.no_grad():
            return self.feature_network.features(samples.float()).double().numpy()

    def score(self, samples, reference):
        features = self.features(samples)
        return {
            "fd": frechet_distance(features, self.real_features),
            "kid": kernel_inception_distance(features, self.real_features),
            **super().score(samples, reference),
        }


def scorer_for(denoiser, samples, seed):
    """The richest scorer the model allows (see the module docstring)."""
    from .models.digits import DIGITS_DATASET, digits_split, load_feature_network

    if hasattr(denoiser, "log_prob") and hasattr(denoiser, "sample_data"):
        return DensityScorer(denoiser, samples, seed)
    info = getattr(denoiser, "model_info", None) or {}
    if info.get("dataset") == DIGITS_DATASET and tuple(data_shape(denoiser)) == (1, 8, 8):
        return FeatureScorer(load_feature_network(), digits_split("heldout")[0])
    return Scorer()


def data_shape(denoiser):
    """The shape of one sample: the model's `data_shape`, else that of one draw of its data."""
    shape = getattr(denoiser, "data_shape", None)
    if shape is None and hasattr(denoiser, "sample_data"):
        shape = denoiser.sample_data(1, generator=torch.Generator().manual_seed(0)).shape[1:]
    if shape is None:
        raise AYSError("the model does not say what shape its samples have (no data_shape or sample_data)")
    return tuple(int(s) for s in shape)


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
        raise AYSError(f"--samples must be at least 2, got {samples!r}")
    if not isinstance(seeds, int) or seeds < 1:
        raise AYSError(f"--seeds must be at least 1, got {seeds!r}")


def run_bench(denoiser, schedules, samplers=("euler", "dpmpp_2m"), nfes=(6, 8, 10), samples=1000, seeds=3,
              seed=0, reference_steps=100, registry=None, progress=True):
    """Sample every (seed, sampler, NFE, schedule) cell from the same noise and score it."""
    from tqdm import tqdm

    samplers, nfes = list(samplers), sorted(set(nfes))
    validate_request(schedules, samplers, nfes, samples, seeds)
    sigma_min, sigma_max = float(denoiser.sigma_min), float(denoiser.sigma_max)
    labels = [schedule_label(spec) for spec in schedules]
    max_steps = max(nfes)
    # Resolve every schedule before any sampling, so a bad id fails at once.
    plotted = {label: schedule_sigmas(spec, max_steps, sigma_min, sigma_max, registry)
               for spec, label in zip(schedules, labels)}
    shape = data_shape(denoiser)
    scorer = scorer_for(denoiser, samples, seed)
    rows, examples = [], {}
    cells = tqdm(total=seeds * len(samplers) * len(nfes) * len(schedules), desc="bench", unit="cell",
                 disable=not progress)
    for seed_index in range(seeds):
        run_seed = seed + seed_index
        x_start = initial_noise(shape, samples, sigma_max, run_seed)
        for sampler in samplers:
            reference_sigmas = schedule_sigmas("karras", reference_steps, sigma_min, sigma_max)
            reference, _ = run_sampler(denoiser, sampler, reference_sigmas, x_start, run_seed, (sigma_min, sigma_max))
            if seed_index == 0:
                examples[(sampler, "reference")] = reference
            for nfe in nfes:
                steps = steps_for_nfe(sampler, nfe)
                for spec, label in zip(schedules, labels):
                    sigmas = schedule_sigmas(spec, steps, sigma_min, sigma_max, registry)
                    result, calls = run_sampler(denoiser, sampler, sigmas, x_start, run_seed, (sigma_min, sigma_max))
                    if seed_index == 0 and nfe == nfes[0]:
                        examples[(sampler, label)] = result
                    rows.append({"seed": run_seed, "sampler": sampler, "nfe": nfe, "steps": steps, "nfe_used": calls,
                                 "schedule": label, **scorer.score(result, reference)})
                    cells.update()
    cells.close()
    config = {"model": dict(getattr(denoiser, "model_info", None) or {}), "sigma_min": sigma_min,
              "sigma_max": sigma_max, "schedules": list(schedules), "samplers": samplers, "nfe": nfes,
              "samples": samples, "seeds": [seed + i for i in range(seeds)], "reference_steps": reference_steps,
              "scorer": scorer.kind}
    real = scorer.real if isinstance(scorer, DensityScorer) else None
    return BenchResult(config, scorer.metrics, rows, summarize(rows, scorer.metrics), plotted, examples, real)


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


# ---------------------------------------------------------------- reporting

def _cell(mean, half, best):
    text = f"{mean:.4g}" if math.isnan(half) else f"{mean:.4g} ± {half:.2g}"
    return f"**{text}**" if best else text


def markdown_table(result):
    """One row per (sampler, NFE, schedule); the best mean of each (sampler, NFE) is bold."""
    header = ["sampler", "NFE", "steps", "schedule"] + [m.label for m in result.metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    best = {}
    for entry in result.summary:
        for metric in result.metrics:
            key = (entry["sampler"], entry["nfe"], metric.key)
            best[key] = min(best.get(key, math.inf), entry[metric.key])
    for entry in result.summary:
        cells = [entry["sampler"], str(entry["nfe_used"]), str(entry["steps"]), entry["schedule"]]
        cells += [_cell(entry[m.key], entry[f"{m.key}_ci"], entry[m.key] == best[(entry["sampler"], entry["nfe"], m.key)])
                  for m in result.metrics]
        lines.append("| " + " | ".join(cells) + " |")
    seeds = len(result.config["seeds"])
    lines.append("")
    lines.append(f"Mean ± 95% CI over {seeds} seed(s) of {result.config['samples']} samples; lower is better; "
                 f"NFE = denoiser calls made; reference = same sampler, {result.config['reference_steps']} karras "
                 "steps, same noise.")
    return "\n".join(lines) + "\n"


def csv_text(result):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(result.rows[0]))
    writer.writeheader()
    writer.writerows(result.rows)
    return buffer.getvalue()


def json_text(result):
    doc = {"config": result.config, "summary": result.summary, "rows": result.rows,
           "schedules": {label: [float(s) for s in sigmas] for label, sigmas in result.schedules.items()}}
    return json.dumps(_finite(doc), indent=2, allow_nan=False) + "\n"


def _finite(value):
    """JSON has no NaN: single-seed intervals are written as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def write_report(result, out_dir):
    """results.md, results.csv (every raw number), results.json and the PNG plots; returns paths."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise AYSError(f"cannot create output folder {out}: {error.strerror or error}") from None
    written = {"table": out / "results.md", "csv": out / "results.csv", "json": out / "results.json"}
    atomic_write(written["table"], markdown_table(result).encode())
    atomic_write(written["csv"], csv_text(result).encode())
    atomic_write(written["json"], json_text(result).encode())
    written.update(write_plots(result, out))
    return written


# ---------------------------------------------------------------- plots

def _save_figure(figure, path):
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    atomic_write(path, buffer.getvalue())
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_schedules(result, path):
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    for label, sigmas in result.schedules.items():
        positive = np.asarray(sigmas)[:-1]
        axis.plot(np.arange(len(positive)), positive, marker="o", label=label)
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("sigma (log scale; final step goes to 0)")
    axis.set_title(f"schedules at {len(next(iter(result.schedules.values()))) - 1} steps")
    axis.legend(fontsize=8)
    return _save_figure(figure, path)


def plot_metric(result, metric, path):
    plt = _pyplot()
    samplers = result.config["samplers"]
    figure, axes = plt.subplots(1, len(samplers), figsize=(4 * len(samplers), 3.5), squeeze=False)
    for axis, sampler in zip(axes[0], samplers):
        for label in result.schedules:
            entries = [e for e in result.summary if e["sampler"] == sampler and e["schedule"] == label]
            errors = [0.0 if math.isnan(e[f"{metric.key}_ci"]) else e[f"{metric.key}_ci"] for e in entries]
            axis.errorbar([e["nfe"] for e in entries], [e[metric.key] for e in entries], yerr=errors,
                          marker="o", capsize=3, label=label)
        axis.set_title(sampler)
        axis.set_xlabel("NFE")
        axis.set_ylabel(metric.label)
    axes[0][0].legend(fontsize=8)
    return _save_figure(figure, path)


def plot_examples(result, sampler, path):
    """Image grid (rows: schedules, then the reference) or, for 2-D data, scatter panels."""
    plt = _pyplot()
    labels = list(result.schedules) + ["reference"]
    panels = [result.examples[(sampler, label)].numpy() for label in labels]
    nfe = result.config["nfe"][0]
    if panels[0][0].size == 2:
        figure, axes = plt.subplots(1, len(labels), figsize=(3 * len(labels), 3), squeeze=False)
        for axis, label, points in zip(axes[0], labels, panels):
            if result.real is not None:
                axis.scatter(*result.real.numpy().reshape(-1, 2).T, s=1, c="lightgray")
            axis.scatter(*points.reshape(-1, 2).T, s=1)
            axis.set_title(label, fontsize=9)
    else:
        columns = min(16, len(panels[0]))
        figure, axes = plt.subplots(len(labels), columns, figsize=(columns * 0.6, len(labels) * 0.7), squeeze=False)
        for row, (label, images) in enumerate(zip(labels, panels)):
            for column in range(columns):
                axes[row][column].imshow(_as_image(images[column]), cmap="gray", vmin=-1, vmax=1)
                axes[row][column].axis("off")
            axes[row][0].text(-1, 3.5, label, ha="right", va="center", fontsize=7)
    figure.suptitle(f"{sampler}, {nfe} NFE (same noise per column)", fontsize=9)
    return _save_figure(figure, path)


def _as_image(sample):
    """A [C, H, W] sample as something imshow takes (first channel, or the flat vector as a row)."""
    sample = np.asarray(sample)
    return sample[0] if sample.ndim == 3 else np.atleast_2d(sample.reshape(-1))


def write_plots(result, out):
    paths = {"schedules_plot": plot_schedules(result, out / "schedules.png")}
    for metric in result.metrics:
        paths[f"{metric.key}_plot"] = plot_metric(result, metric, out / f"{metric.key}_vs_nfe.png")
    for sampler in result.config["samplers"]:
        paths[f"samples_{sampler}"] = plot_examples(result, sampler, out / f"samples_{sampler}.png")
    return paths
