"""Pictures of schedules. matplotlib is imported on use and drawn off-screen (Agg)."""
from pathlib import Path

import numpy as np

from .baselines import karras
from .fileio import atomic_write
from .interp import resample
from .registry import RegistrySet


def plot_schedules(schedules, path, title="Sampling schedules"):
    """Draw {label: sampling sigmas} on a log-sigma axis against step index and save a PNG.

    The final 0 of each schedule is left out (it has no logarithm)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, sigmas in schedules.items():
        sigmas = np.asarray(sigmas, dtype=np.float64)
        sigmas = sigmas[sigmas > 0]
        ax.plot(np.arange(len(sigmas)), sigmas, marker="o", markersize=3.5, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("sigma (log scale)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write(Path(path), buffer.getvalue())
    return Path(path)


def plot_against_baselines(doc, steps, registry_roots, path):
    """The new schedule at `steps` steps beside the family's stored schedule and karras (rho 7),
    all over the model's range; returns the PNG path (None when matplotlib cannot draw)."""
    model = doc["model"]
    lo, hi = model["sigma_min"], model["sigma_max"]
    curves = {f"new ({doc['id']})": resample(doc["sigmas"], steps)}
    family = RegistrySet(registry_roots).find(family=model["family"])
    if family is not None:
        curves[f"family ({family.ref})"] = family.resample(steps, sigma_min=lo, sigma_max=hi)
    curves["karras (rho 7)"] = karras(steps, lo, hi)
    try:
        return plot_schedules(curves, path, title=f"{steps}-step schedules for {model.get('name', model['family'])}")
    except Exception as exc:  # a plot is a nicety; the schedule is already made
        print(f"AYS: could not draw the schedule plot ({type(exc).__name__}: {exc})")
        return None
