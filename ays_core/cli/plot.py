"""`ays plot`: draw schedules on a log-sigma axis to a PNG."""
from .. import resolve
from ..plots import plot_schedules


def add_parser(subparsers, common):
    p = subparsers.add_parser(
        "plot", parents=[common], help="plot schedules (registry ids, files, baselines) to a PNG",
        description="Plot the N-step sigmas of one or more schedules on a log-sigma axis. Baselines span "
                    "the range of the first stored schedule named (SD's range if none is).")
    p.add_argument("ids", metavar="ID", nargs="+", help="registry id (sd15, sdxl@v1), schedule file or baseline name")
    p.add_argument("--steps", type=int, default=10, metavar="N", help="number of steps (default 10)")
    p.add_argument("--out", required=True, metavar="FILE.png", help="where to write the PNG")
    p.add_argument("--title", default="Sampling schedules")
    p.set_defaults(run=run)


def run(args):
    sources = [resolve(name, registry=args.registry) for name in args.ids]
    stored = [s for s in sources if s.version is not None]
    sigma_range = {"sigma_min": stored[0].sigmas[-1], "sigma_max": stored[0].sigmas[0]} if stored else {}
    curves = {}
    for source in sources:
        options = {} if source.version is not None else sigma_range
        curves[source.ref] = source.resample(args.steps, **options)
    print(f"wrote {plot_schedules(curves, args.out, args.title)}")
    return 0
