"""`ays plot`: draw schedules on a log-sigma axis to a PNG."""
from .. import resolve
from ..baselines import SD_SIGMA_RANGE
from ..interp import MAX_STEPS
from ..plots import plot_schedules
from . import setting_flags

SUMMARY = "plot schedules (registry ids, files, baselines) to a PNG"  # the line `ays --help` shows


def add_parser(subparsers, common):
    p = subparsers.add_parser(
        "plot", parents=[common], help=SUMMARY,
        description="Plot the N-step sigmas of one or more schedules on a log-sigma axis. Baselines span "
                    "the range of the first stored schedule named (SD's range if none is).")
    p.add_argument("ids", metavar="ID", nargs="+", help="registry id (sd15, sdxl@v1), schedule file or baseline name")
    p.add_argument("--steps", type=int, default=10, metavar="N", help=f"number of steps (1 to {MAX_STEPS}, default 10)")
    p.add_argument("--out", required=True, metavar="FILE.png", help="where to write the PNG")
    p.add_argument("--title", help="title (default: the step count, the model(s) the schedules are for and the sigma range)")
    p.set_defaults(run=run, setting_flags=setting_flags(p))


def run(args):
    sources = [resolve(name, registry=args.registry) for name in args.ids]
    stored = [s for s in sources if s.version is not None]
    sigma_range = {"sigma_min": stored[0].sigmas[-1], "sigma_max": stored[0].sigmas[0]} if stored else {}
    curves = {}
    for source in sources:
        options = {} if source.version is not None else sigma_range
        curves[source.ref] = source.resample(args.steps, **options)
    print(f"wrote {plot_schedules(curves, args.out, args.title or default_title(stored, args.steps, baselines=len(stored) < len(sources)))}")
    return 0


def default_title(stored, steps, baselines=True):
    """'10 steps for sd15, sdxl; baselines over sigma 0.0292 to 14.6 (sd15@v1's range)'."""
    if not stored:
        lo, hi = SD_SIGMA_RANGE
        return f"{steps} steps over SD's sigma range, {lo:.3g} to {hi:.3g}"
    models = list(dict.fromkeys(s.model.get("name") or s.model["family"] for s in stored))
    first = stored[0]
    if not baselines:
        return f"{steps} steps for {', '.join(models)}"
    return (f"{steps} steps for {', '.join(models)}; baselines over sigma {first.sigmas[-1]:.3g} to "
            f"{first.sigmas[0]:.3g} ({first.ref}'s range)")
