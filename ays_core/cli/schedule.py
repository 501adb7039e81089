"""`ays schedule`: print the sigmas of a schedule for N steps."""
import json

from .. import BASELINES, CONVENTIONS, resolve
from ..interp import MAX_STEPS
from . import setting_flags

SUMMARY = "print the N-step sigmas of a schedule"  # the line `ays --help` shows


def add_parser(subparsers, common):
    p = subparsers.add_parser(
        "schedule", parents=[common], help=SUMMARY,
        description="Print the sigmas (N + 1 values ending in 0) that N sampling steps use. ID is a "
                    "registry id (sdxl, sd15@v1, ...), a path to a schedule file, or a hand-made "
                    f"baseline ({', '.join(sorted(BASELINES))}).")
    p.add_argument("id", metavar="ID")
    p.add_argument("--steps", type=int, required=True, metavar="N", help=f"number of sampling steps (1 to {MAX_STEPS})")
    p.add_argument("--denoise", type=float, metavar="D",
                   help="img2img denoising strength in (0, 1]: keep the last round(N*D) steps (at least 1)")
    p.add_argument("--version", type=int, metavar="V", help="registry version (default: latest)")
    p.add_argument("--convention", choices=CONVENTIONS, default="ays",
                   help="ays: resample to N+1 points and end in 0 (default, reproduces the paper's lists); "
                        "a1111: resample to N points and append 0, as AUTOMATIC1111's built-in Align Your Steps")
    p.add_argument("--sigma-min", type=float, metavar="S",
                   help="rescale a stored schedule (log-affinely) to end here (within 1%% of the stored end, a "
                        "rounding such as SD's 0.0291675 vs the published 0.029, it stays as stored); for a "
                        "baseline: its lower end (default SD's 0.0292)")
    p.add_argument("--sigma-max", type=float, metavar="S",
                   help="rescale a stored schedule to start here; for a baseline: its upper end (default SD's 14.6146)")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text: one sigma per line (default); json: {id, version, steps, sigmas}")
    p.set_defaults(run=run, setting_flags=setting_flags(p))


def run(args):
    source = resolve(args.id, registry=args.registry, version=args.version)
    sigmas = source.resample(args.steps, convention=args.convention, sigma_min=args.sigma_min,
                             sigma_max=args.sigma_max, denoise=args.denoise)
    values = [float(s) for s in sigmas]
    if args.format == "json":
        print(json.dumps({"id": source.id, "version": source.version, "steps": args.steps, "sigmas": values}))
    else:
        print("\n".join(f"{s:.10g}" for s in values))
    return 0
