"""Pictures of schedules. matplotlib is imported on use and drawn off-screen (Agg)."""
from pathlib import Path

import numpy as np

from .fileio import atomic_write


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
