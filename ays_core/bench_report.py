"""Reporting a bench: Markdown tables (bold only beyond the paired CI), the verdict per cell in a
table and in words, headroom figures, CSV/JSON of every raw number (and reading it back), plots."""
import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from .errors import AYSError
from .fileio import atomic_write
from .plots import COLOURS, plot_schedules as draw_schedules
from .scoring import Metric


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


def _against_oracle(values, candidate):
    """The candidate minus the oracle, paired over seeds, in words ('' without an oracle);
    `values`: schedule label -> per-seed values of one cell."""
    from .verdict import beyond, paired_difference

    if "oracle" not in values or candidate not in values:
        return ""
    mean, half = paired_difference(values[candidate], values["oracle"])
    side = beyond(mean, half)
    if side == 0:
        return f"within CI: {mean:+.3g} ± {half:.2g}"
    return f"**{'oracle better' if side > 0 else 'better than the oracle'} by {abs(mean):.3g} ± {half:.2g}**"


def verdict_table(result):
    """Markdown: the candidate's verdict per (sampler, NFE) on every metric, then the summary lines
    (main metric) per sampler and overall. Bold marks outcomes beyond the paired CI."""
    from .verdict import per_seed

    candidate, main = result.config["candidate"], result.metrics[0]
    by_metric = cell_verdicts(result)
    main_values = per_seed(result.rows, main.key)
    header = (["sampler", "NFE"] + [m.label for m in result.metrics]
              + [f"oracle gain ({main.label})", f"{candidate} vs oracle ({main.label})"])
    lines = [f"Verdict for {candidate} against every other schedule (oracle aside), paired 95% CI over "
             f"{len(result.config['seeds'])} seeds:", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cell in by_metric[main.key]:
        words = [by_metric[m.key][cell] for m in result.metrics]
        cells = [w.words() if w.outcome == "ties" else f"**{w.words()}**" for w in words]
        lines.append("| " + " | ".join([cell[0], str(cell[1]), *cells, _oracle_gain(result, cell, main),
                                        _against_oracle(main_values[cell], candidate)]) + " |")
    lines.append("")
    lines.extend(summary_lines(result))
    return "\n".join(lines) + "\n"


def summary_lines(result):
    """`AYS: W wins, T ties, L losses of C cells` on the main metric, per sampler and (for more than
    one sampler) overall."""
    from .verdict import summary_line

    candidate, main = result.config["candidate"], result.metrics[0]
    main_verdicts = cell_verdicts(result)[main.key]
    lines = []
    for sampler in result.config["samplers"]:
        subset = {cell: v for cell, v in main_verdicts.items() if cell[0] == sampler}
        lines.append(f"{sampler} ({main.label}): {summary_line(subset, candidate)}")
    if len(result.config["samplers"]) > 1:
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


def headroom_lines(result, schedule="karras"):
    """One line per sampler: how far `schedule` at few NFE is from the many-step run (empty without it)."""
    main = result.metrics[0]
    room = headroom(result, schedule, nfes=tuple(result.config["nfe"]))
    lines = []
    for sampler in result.config["samplers"]:
        parts = [f"{nfe} NFE {d:+.3g} ± {ci:.2g} ({d / ci:.1f}x CI)" if ci > 0 else f"{nfe} NFE {d:+.3g}"
                 for (name, nfe), (d, ci) in room.items() if name == sampler]
        if parts:
            lines.append(f"headroom, {sampler} ({main.label}, {schedule} minus its own "
                         f"{result.config['reference_steps']}-step run from the same noise): " + "; ".join(parts))
    return lines


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
        sentence = f"{sampler} at {nfe} NFE: {candidate} {text}"
        sentences.append(sentence if sentence.endswith(".") else sentence + ".")  # labels like "Frechet dist." end in one
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
    from .bench import BenchResult

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
    (the schedule chart always; the others skipped when matplotlib cannot be imported); returns paths."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise AYSError(f"cannot create output folder {out}: {error.strerror or error}") from None
    written = {"table": out / "results.md", "csv": out / "results.csv", "json": out / "results.json"}
    atomic_write(written["table"], (markdown_table(result) + "\n" + verdict_table(result)).encode())
    atomic_write(written["csv"], csv_text(result).encode())
    atomic_write(written["json"], json_text(result).encode())
    written["schedules_plot"] = plot_schedules(result, out / "schedules.png")  # drawn with Pillow
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
    """A distinct colour and line style per schedule: the colours of the schedule chart (plots.py)."""
    dashes = ("-", "--", ":", "-.")
    count = len(COLOURS)
    return {label: {"color": COLOURS[i % count], "linestyle": dashes[(i // count) % 4]} for i, label in enumerate(labels)}


def plot_schedules(result, path):
    steps = len(next(iter(result.schedules.values()))) - 1
    title = f"{model_name(result)}: schedules at {steps} steps ({result.config['samplers'][0]})"
    return draw_schedules(result.schedules, path, title)


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
        values = [e[metric.key] for e in result.summary if e["sampler"] == sampler]
        if min(values) > 0 and max(values) > 20 * min(values):  # one bad schedule would flatten the rest
            axis.set_yscale("log")
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
    """The matplotlib charts: each metric against NFE, and sample grids per sampler."""
    paths = {}
    for metric in result.metrics:
        paths[f"{metric.key}_plot"] = plot_metric(result, metric, out / f"{metric.key}_vs_nfe.png")
    for sampler in result.config["samplers"]:
        paths[f"samples_{sampler}"] = plot_examples(result, sampler, out / f"samples_{sampler}.png")
    return paths
