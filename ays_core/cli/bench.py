"""`ays bench`: sample with k-diffusion's samplers at equal NFE and score schedules against each other."""
from ..errors import AYSError

DEFAULT_SCHEDULES = "karras,exponential,kl_optimal"
DEFAULT_SAMPLERS = "euler,dpmpp_2m,dpmpp_2m_sde"

SUMMARY = "compare schedules: sample, score, tabulate, plot"  # the line `ays --help` shows


def add_parser(subparsers, common):
    from ..samplers import SAMPLERS

    p = subparsers.add_parser(
        "bench", parents=[common], help=SUMMARY,
        description="Sample the model with k-diffusion's own samplers for every schedule, sampler and NFE "
                    "budget, from the same noise, and score the samples: NLL and sliced Wasserstein for toys "
                    "with a known density, Frechet distance and KID in a feature network's space for digits "
                    "checkpoints, and for every model the distance to a many-step run from the same noise. "
                    "Prints a Markdown table (mean and 95% confidence interval over seeds), then the verdict "
                    "of the FIRST schedule against all others in each (sampler, NFE) cell: wins (better than "
                    "every other beyond the paired 95% CI), ties, or loses to X by d ± ci, and a summary "
                    "line per sampler; writes all of it with CSV, JSON and PNG plots to --out. Two schedules "
                    "are computed for the model: 'gits' (GITS-style dynamic programming over a 60-step teacher, "
                    "data-free) and 'oracle' (a direct search of each cell's schedule on the main metric with "
                    "seeds of its own: how much any schedule could gain; never part of the verdict).")
    p.add_argument("--model", required=True, metavar="SPEC",
                   help="toy:gaussian, toy:gmm8x8[?std=..], or a checkpoint file such as "
                        "ays_core/assets/digits_denoiser.safetensors")
    p.add_argument("--schedules", default=DEFAULT_SCHEDULES, metavar="ID[,ID...]",
                   help="baselines (karras, exponential, kl_optimal, ...), registry ids (sd15, sd15@1; rescaled to "
                        "the model's sigma range), schedule files, gits or oracle; suffix ':ays' or ':a1111' picks "
                        "the step convention; the first one is judged against the rest "
                        f"(default: {DEFAULT_SCHEDULES})")
    p.add_argument("--samplers", default=DEFAULT_SAMPLERS, metavar="NAME[,NAME...]",
                   help=f"k-diffusion samplers: {', '.join(SAMPLERS)} (default: {DEFAULT_SAMPLERS})")
    p.add_argument("--nfe", default="6,8,10", metavar="N[,N...]",
                   help="denoiser-call budgets; second-order samplers (heun, dpm_2) take "
                        "(N + 1) // 2 steps, 2 calls each except the last (default: 6,8,10)")
    p.add_argument("--samples", type=int, default=1000, metavar="N", help="samples per cell and seed (default 1000)")
    p.add_argument("--seeds", type=int, default=3, metavar="K",
                   help="independent noise seeds, for the confidence interval (default 3)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="first seed (default 0); same seed, same numbers")
    p.add_argument("--reference-steps", type=int, default=100, metavar="N",
                   help="steps of the reference run each sample is compared with (default 100)")
    p.add_argument("--oracle-samples", type=int, default=512, metavar="N",
                   help="samples per evaluation of the oracle's search (default 512)")
    p.add_argument("--oracle-evaluations", type=int, default=40, metavar="N",
                   help="metric evaluations of the oracle's search per cell, after its starts (default 40; "
                        "0: the best start)")
    p.add_argument("--out", default="out/bench", metavar="DIR", help="output folder (default: out/bench)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(run=run)


def parse_list(text, option):
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise AYSError(f"{option} takes a comma-separated list without empty entries, got {text!r}")
    return items


def parse_nfe(text):
    values = []
    for item in parse_list(text, "--nfe"):
        try:
            values.append(int(item))
        except ValueError:
            raise AYSError(f"--nfe takes whole numbers, got {item!r}") from None
        if values[-1] < 2:
            raise AYSError(f"--nfe values must be >= 2, got {values[-1]}")
    return values


def run(args):
    from pathlib import Path

    from ..bench import COMPUTED_SCHEDULES, PeerSettings, run_bench, schedule_sigmas, validate_request
    from ..bench_report import headroom_lines, markdown_table, verdict_table, write_report
    from ..models import load_denoiser
    from ..oracle import OracleSettings

    if args.reference_steps < 2:
        raise AYSError(f"--reference-steps must be at least 2, got {args.reference_steps}")
    schedules = parse_list(args.schedules, "--schedules")
    samplers = parse_list(args.samplers, "--samplers")
    nfes = parse_nfe(args.nfe)
    validate_request(schedules, samplers, nfes, args.samples, args.seeds)
    for option, least in (("oracle_samples", 2), ("oracle_evaluations", 0)):
        if getattr(args, option) < least:
            raise AYSError(f"--{option.replace('_', '-')} must be at least {least}, got {getattr(args, option)}")
    model = load_denoiser(args.model)
    for spec in set(schedules) - set(COMPUTED_SCHEDULES):  # unknown ids fail here, before anything is written
        schedule_sigmas(spec, max(nfes), float(model.sigma_min), float(model.sigma_max), args.registry)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise AYSError(f"--out {out} exists and is not a folder")
    try:  # before sampling, so an unwritable place fails at once
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise AYSError(f"cannot create output folder {out}: {error.strerror or error}") from None
    result = run_bench(model, schedules, samplers, nfes, samples=args.samples, seeds=args.seeds, seed=args.seed,
                       reference_steps=args.reference_steps, registry=args.registry, progress=args.progress,
                       peers=PeerSettings(oracle=OracleSettings(samples=args.oracle_samples,
                                                                evaluations=args.oracle_evaluations)))
    written = write_report(result, args.out)
    print(markdown_table(result))
    print(verdict_table(result))
    for line in headroom_lines(result):
        print(line)
    print(f"table: {written['table']}")
    print(f"numbers: {written['csv']}, {written['json']}")
    plots = [str(path) for key, path in written.items() if str(path).endswith(".png")]
    print(f"plots: {', '.join(plots)}" + ("" if len(plots) > 1 else " (the others need matplotlib, which cannot be imported)"))
    return 0
