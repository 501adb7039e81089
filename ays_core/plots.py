"""Pictures of schedules. matplotlib is imported on use and drawn off-screen (Agg)."""
from pathlib import Path

import numpy as np

from .baselines import karras
from .fileio import atomic_write
from .interp import resample
from .registry import RegistrySet

SIGMA_AXIS = "sigma: noise std. dev. in the model's data units (log scale)"


def schedule_figure(schedules, title):
    """A matplotlib figure of {label: sampling sigmas} on a log-sigma axis against step index.

    The final 0 of each schedule is left out (it has no logarithm). The legend sits right of the
    axes, so it never covers a curve or a label."""
    import logging

    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # "findfont: ..." is no news to the user
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.4, 4.4), dpi=110)
    ax = fig.subplots()
    for label, sigmas in schedules.items():
        sigmas = np.asarray(sigmas, dtype=np.float64)
        sigmas = sigmas[sigmas > 0]
        ax.plot(np.arange(len(sigmas)), sigmas, marker="o", markersize=3.5, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step (the final step, to sigma = 0, is not drawn)")
    ax.set_ylabel(SIGMA_AXIS, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return fig


def plot_schedules(schedules, path, title="Sampling schedules"):
    """Draw {label: sampling sigmas} (see schedule_figure) and save it as a PNG at `path`."""
    import io

    buffer = io.BytesIO()
    schedule_figure(schedules, title).savefig(buffer, format="png", bbox_inches="tight")
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
