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

Metrics by model (the first one is the main metric, the one the verdict and the oracle use):
toys with a known density (the denoiser has `log_prob` and `sample_data`): NLL of the samples and
sliced Wasserstein-2 against true samples; checkpoints with a feature network (digits): Frechet
distance and KID in its feature space against held-out real digits, then Frechet distance and
sliced W2 on the pixels; photo-patch checkpoints: the pixel-space pair; every model: RMS distance
to a many-step reference run of the same sampler from the same noise.
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


# ---------------------------------------------------------------- what to score against

@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str = ""  # what the number measures, for plot axes


REF_METRIC = Metric("ref_dist", "dist. to ref", "RMS per coordinate, data units")


class Scorer:
    """Scores a batch of samples; subclasses compare against real data of their kind."""

    metrics = (REF_METRIC,)
    kind = "reference"

    def score(self, samples, reference):
        return {REF_METRIC.key: reference_distance(samples, reference)}


class DensityScorer(Scorer):
    """Toys with a known density: NLL under it and sliced Wasserstein to fresh true samples."""

    # Sliced W2 leads: NLL alone rewards collapsing onto the modes (a search on it finds that).
    metrics = (Metric("swd", "sliced W2", "data units"), Metric("nll", "NLL", "nats per sample"), REF_METRIC)
    kind = "density"

    def __init__(self, denoiser, count, seed):
        self.denoiser = denoiser
        # Fresh draws from a generator of their own: never the data a schedule was optimized on.
        generator = torch.Generator().manual_seed(10_000_019 + seed)
        self.real = denoiser.sample_data(max(count, 2000), generator=generator)

    def score(self, samples, reference):
        nll = -self.denoiser.log_prob(samples).double().mean().item()
        return {"nll": nll, "swd": sliced_wasserstein(samples, self.real), **super().score(samples, reference)}


class PixelScorer(Scorer):
    """Image checkpoints with held-out real images: Frechet distance and sliced Wasserstein-2
    computed on the pixels themselves (data space: no feature network to please)."""

    metrics = (Metric("pixel_fd", "pixel FD", "squared pixel units, pixels in [-1, 1]"),
               Metric("pixel_swd", "pixel sliced W2", "pixel units, pixels in [-1, 1]"), REF_METRIC)
    kind = "pixels"

    def __init__(self, real):
        self.real = real
        flat = _as_matrix(real.numpy())
        self.real_flat, self.real_mean, self.real_cov = flat, flat.mean(0), np.cov(flat, rowvar=False)

    def pixel_scores(self, samples):
        flat = _as_matrix(samples.numpy())
        return {"pixel_fd": frechet_distance_from_moments(self.real_mean, self.real_cov, flat.mean(0),
                                                          np.cov(flat, rowvar=False)),
                "pixel_swd": sliced_wasserstein(flat, self.real_flat)}

    def score(self, samples, reference):
        return {**self.pixel_scores(samples), **super().score(samples, reference)}


class FeatureScorer(PixelScorer):
    """Checkpoints with a feature network: Frechet distance and KID in its feature space to held-out
    data, and the pixel-space metrics beside them."""

    metrics = (Metric("fd", "Frechet dist.", "feature network units squared"),
               Metric("kid", "KID", "polynomial-kernel MMD^2"), *PixelScorer.metrics)
    kind = "features"

    def __init__(self, feature_network, real):
        super().__init__(real)
        self.feature_network = feature_network
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
    from .models.patches import PATCH, PATCHES_DATASET, patches_split

    if hasattr(denoiser, "log_prob") and hasattr(denoiser, "sample_data"):
        return DensityScorer(denoiser, samples, seed)
    info = getattr(denoiser, "model_info", None) or {}
    shape = tuple(data_shape(denoiser))
    if info.get("dataset") == DIGITS_DATASET and shape == (1, 8, 8):
        return FeatureScorer(load_feature_network(), digits_split("heldout")[0])
    if info.get("dataset") == PATCHES_DATASET and shape == (3, PATCH, PATCH):
        return PixelScorer(patches_split("heldout"))
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
        raise AYSError(f"--samples must be at least 2, got {samples!r}")
    if not isinstance(seeds, int) or seeds < 1:
        raise AYSError(f"--seeds must be at least 1, got {seeds!r}")


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


# ---------------------------------------------------------------- reporting

def _cell(mean, half, best):
    text = f"{mean:.4g}" if math.isnan(half) else f"{mean:.4g} ± {half:.2g}"
    return f"**{text}**" if best else text


def markdown_table(result):
    """One row per (sampler, NFE, schedule). Bold: the schedule of a (sampler, NFE) that beats every
    other one (the oracle aside) beyond the paired CI on that metric; no bold where none does."""
    from .verdict import per_seed, significant_best

    header = ["sampler", "NFE", "steps", "schedule"] + [m.label for m in result.metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    best = {(cell, metric.key): significant_best(values)
            for metric in result.metrics for cell, values in per_seed(result.rows, metric.key).items()}
    for entry in result.summary:
        cell = (entry["sampler"], entry["nfe"])
        cells = [entry["sampler"], str(entry["nfe_used"]), str(entry["steps"]), entry["schedule"]]
        cells += [_cell(entry[m.key], entry[f"{m.key}_ci"], best[(cell, m.key)] == entry["schedule"])
                  for m in result.metrics]
        lines.append("| " + " | ".join(cells) + " |")
    seeds = len(result.config["seeds"])
    lines.append("")
    lines.append(f"Mean ± 95% CI over {seeds} seed(s) of {result.config['samples']} samples; lower is better; "
                 f"NFE = denoiser calls made; reference = same sampler, {result.config['reference_steps']} karras "
                 "steps, same noise. Bold: better than every other schedule (oracle aside) beyond the paired "
                 "95% CI.")
    return "\n".join(lines) + "\n"


def cell_verdicts(result):
    """{metric key: {(sampler, nfe): CellVerdict}} of the candidate against the other schedules."""
    from .verdict import verdicts

    return {m.key: verdicts(result.rows, m.key, result.config["candidate"]) for m in result.metrics}


def _oracle_gain(result, cell, metric):
    """Main metric: the oracle's mean minus the best non-oracle mean of the cell ('' without an oracle)."""
    entries = {e["schedule"]: e[metric.key] for e in result.summary if (e["sampler"], e["nfe"]) == cell}
    if "oracle" not in entries:
        return ""
    return f"{entries['oracle'] - min(v for k, v in entries.items() if k != 'oracle'):+.3g}"


def verdict_table(result):
    """Markdown: the candidate's verdict per (sampler, NFE) on every metric, then the summary lines
    (main metric) per sampler and overall. Bold marks outcomes beyond the paired CI."""
    candidate, main = result.config["candidate"], result.metrics[0]
    by_metric = cell_verdicts(result)
    header = ["sampler", "NFE"] + [m.label for m in result.metrics] + [f"oracle gain ({main.label})"]
    lines = [f"Verdict for {candidate} against every other schedule (oracle aside), paired 95% CI over "
             f"{len(result.config['seeds'])} seeds:", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cell in by_metric[main.key]:
        words = [by_metric[m.key][cell] for m in result.metrics]
        cells = [w.words() if w.outcome == "ties" else f"**{w.words()}**" for w in words]
        lines.append("| " + " | ".join([cell[0], str(cell[1]), *cells, _oracle_gain(result, cell, main)]) + " |")
    lines.append("")
    lines.extend(summary_lines(result))
    return "\n".join(lines) + "\n"


def summary_lines(result):
    """`AYS: W wins, T ties, L losses of C cells` on the main metric, per sampler and overall."""
    from .verdict import summary_line

    candidate, main = result.config["candidate"], result.metrics[0]
    main_verdicts = cell_verdicts(result)[main.key]
    lines = []
    for sampler in result.config["samplers"]:
        subset = {cell: v for cell, v in main_verdicts.items() if cell[0] == sampler}
        lines.append(f"{sampler} ({main.label}): {summary_line(subset, candidate)}")
    lines.append(f"all samplers ({main.label}): {summary_line(main_verdicts, candidate)}")
    return lines


def headroom(result, schedule="karras", nfes=(6, 10)):
    """{(sampler, nfe): (d, ci)}: how much worse `schedule` at `nfe` is than the many-step reference
    run from the same noise on the main metric (paired over seeds)."""
    from .verdict import paired_difference

    main = result.metrics[0].key
    out = {}
    for sampler in result.config["samplers"]:
        reference = [r[main] for r in sorted(result.reference_rows, key=lambda r: r["seed"]) if r["sampler"] == sampler]
        for nfe in nfes:
            few = [r[main] for r in sorted(result.rows, key=lambda r: r["seed"])
                   if (r["sampler"], r["nfe"], r["schedule"]) == (sampler, nfe, schedule)]
            if few and len(few) == len(reference):
                out[(sampler, nfe)] = paired_difference(few, reference)
    return out


def verdict_words(result):
    """The main-metric verdict of every cell as plain sentences (for `make demo`)."""
    candidate, main = result.config["candidate"], result.metrics[0]
    sentences = []
    for (sampler, nfe), verdict in cell_verdicts(result)[main.key].items():
        if verdict.outcome == "wins":
            text = "beats every baseline by more than the 95% confidence interval"
        elif verdict.outcome == "ties":
            text = "ties: no baseline is better by more than the 95% confidence interval, but not all are worse"
        else:
            text = (f"loses: {verdict.against} is better by {verdict.difference:.3g} ± {verdict.interval:.2g} "
                    f"{main.label}")
        sentences.append(f"{sampler} at {nfe} NFE: {candidate} {text}.")
    return sentences


def csv_text(result):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(result.rows[0]))
    writer.writeheader()
    writer.writerows(result.rows)
    return buffer.getvalue()


def json_text(result):
    doc = {"config": result.config, "metrics": [{"key": m.key, "label": m.label, "unit": m.unit} for m in result.metrics],
           "summary": result.summary, "rows": result.rows, "reference_rows": list(result.reference_rows),
           "schedules": {label: [float(s) for s in sigmas] for label, sigmas in result.schedules.items()}}
    return json.dumps(_finite(doc), indent=2, allow_nan=False) + "\n"


def read_result(path):
    """The tables' part of a BenchResult back from the results.json a bench wrote (no plots)."""
    doc = json.loads(Path(path).read_text())
    metrics = tuple(Metric(m["key"], m["label"], m.get("unit", "")) for m in doc["metrics"])
    for entry in doc["summary"]:  # JSON wrote single-seed intervals as null
        for metric in metrics:
            entry[f"{metric.key}_ci"] = math.nan if entry[f"{metric.key}_ci"] is None else entry[f"{metric.key}_ci"]
    return BenchResult(doc["config"], metrics, doc["rows"], doc["summary"], doc["schedules"], {}, None,
                       doc["reference_rows"])


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
    """results.md (tables and verdict), results.csv (every raw number), results.json and the PNG plots
    (skipped when matplotlib cannot be imported); returns paths."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise AYSError(f"cannot create output folder {out}: {error.strerror or error}") from None
    written = {"table": out / "results.md", "csv": out / "results.csv", "json": out / "results.json"}
    atomic_write(written["table"], (markdown_table(result) + "\n" + verdict_table(result)).encode())
    atomic_write(written["csv"], csv_text(result).encode())
    atomic_write(written["json"], json_text(result).encode())
    try:
        import matplotlib  # noqa: F401  (a declared dependency; a broken install still keeps the numbers)
    except ImportError:
        return written
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


def model_name(result):
    info = result.config.get("model") or {}
    return info.get("name") or info.get("family") or "model"


def _legend_outside(figure, axis, count):
    """One legend right of the axes (never over the curves), in as many columns as it needs."""
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0,
                ncol=1 if count <= 16 else 2)


def _styles(labels):
    """A distinct colour and line style per schedule (tab20 has 20 colours)."""
    import matplotlib

    colours = matplotlib.colormaps["tab20"].colors
    dashes = ("-", "--", ":", "-.")
    return {label: {"color": colours[i % 20], "linestyle": dashes[(i // 20) % 4]} for i, label in enumerate(labels)}


def plot_schedules(result, path):
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 4))
    styles = _styles(result.schedules)
    for label, sigmas in result.schedules.items():
        positive = np.asarray(sigmas)[:-1]
        axis.plot(np.arange(len(positive)), positive, marker="o", markersize=3, label=label, **styles[label])
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("sigma (log scale; the final step goes to 0)")
    steps = len(next(iter(result.schedules.values()))) - 1
    axis.set_title(f"{model_name(result)}: schedules at {steps} steps ({result.config['samplers'][0]})", fontsize=10)
    _legend_outside(figure, axis, len(result.schedules))
    return _save_figure(figure, path)


def plot_metric(result, metric, path):
    plt = _pyplot()
    samplers = result.config["samplers"]
    figure, axes = plt.subplots(1, len(samplers), figsize=(4.5 * len(samplers), 3.8), squeeze=False)
    styles = _styles(result.schedules)
    for axis, sampler in zip(axes[0], samplers):
        for label in result.schedules:
            entries = [e for e in result.summary if e["sampler"] == sampler and e["schedule"] == label]
            errors = [0.0 if math.isnan(e[f"{metric.key}_ci"]) else e[f"{metric.key}_ci"] for e in entries]
            axis.errorbar([e["nfe"] for e in entries], [e[metric.key] for e in entries], yerr=errors,
                          marker="o", markersize=3, capsize=3, label=label, **styles[label])
        axis.set_title(sampler, fontsize=10)
        axis.set_xlabel("NFE (denoiser calls)")
        axis.set_xticks(result.config["nfe"])
        axis.set_ylabel(f"{metric.label} ({metric.unit})" if metric.unit else metric.label, fontsize=9)
    figure.suptitle(f"{model_name(result)}: {metric.label} vs NFE, mean ± 95% CI over "
                    f"{len(result.config['seeds'])} seeds (lower is better)", fontsize=10)
    figure.tight_layout()
    _legend_outside(figure, axes[0][-1], len(result.schedules))
    return _save_figure(figure, path)


def plot_examples(result, sampler, path):
    """Image grid (rows: schedules, then the reference) or, for 2-D data, scatter panels."""
    plt = _pyplot()
    labels = list(result.schedules) + ["reference"]
    panels = [result.examples[(sampler, label)].numpy() for label in labels]
    nfe = result.config["nfe"][0]
    if panels[0][0].size == 2:
        columns = min(len(labels), 5)
        rows = -(-len(labels) // columns)
        figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.6 * rows), squeeze=False)
        for axis in axes.flat[len(labels):]:
            axis.axis("off")
        for axis, label, points in zip(axes.flat, labels, panels):
            if result.real is not None:
                axis.scatter(*result.real.numpy().reshape(-1, 2).T, s=1, c="lightgray")
            axis.scatter(*points.reshape(-1, 2).T, s=1)
            axis.set_title(label, fontsize=9)
            axis.tick_params(labelsize=7)
    else:
        columns = min(16, len(panels[0]))
        figure, axes = plt.subplots(len(labels), columns, figsize=(columns * 0.6 + 1.6, len(labels) * 0.65),
                                    squeeze=False)
        for row, (label, images) in enumerate(zip(labels, panels)):
            for column in range(columns):
                picture = _as_image(images[column])
                gray = {} if picture.ndim == 3 else {"cmap": "gray", "vmin": -1, "vmax": 1}
                axes[row][column].imshow(picture, **gray)
                axes[row][column].set_xticks([])
                axes[row][column].set_yticks([])
            axes[row][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    figure.suptitle(f"{model_name(result)}: {sampler}, {nfe} NFE (same noise per column; reference = "
                    f"{result.config['reference_steps']} karras steps)", fontsize=9)
    figure.tight_layout()
    return _save_figure(figure, path)


def _as_image(sample):
    """A [C, H, W] sample as something imshow takes: RGB in [0, 1] for three channels, else the first
    channel (or the flat vector as a row)."""
    sample = np.asarray(sample)
    if sample.ndim == 3 and sample.shape[0] == 3:
        return ((sample.transpose(1, 2, 0) + 1) / 2).clip(0, 1)
    return sample[0] if sample.ndim == 3 else np.atleast_2d(sample.reshape(-1))


def write_plots(result, out):
    paths = {"schedules_plot": plot_schedules(result, out / "schedules.png")}
    for metric in result.metrics:
        paths[f"{metric.key}_plot"] = plot_metric(result, metric, out / f"{metric.key}_vs_nfe.png")
    for sampler in result.config["samplers"]:
        paths[f"samples_{sampler}"] = plot_examples(result, sampler, out / f"samples_{sampler}.png")
    return paths
