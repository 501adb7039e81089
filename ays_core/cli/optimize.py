"""`ays optimize`: optimize a schedule for a model, write it as a schedule file, optionally publish it.
Parses the flags into a RunSettings and prints what ays_core.pipeline reports."""
import sys

from ..errors import AYSError
from ..settings import MODES, RunSettings
from . import latent_options, setting_flags

DEFAULTS = RunSettings()
# RunSettings fields whose flag is named otherwise ({field: argparse dest}; settings_from maps them)
FIELD_DESTS = {"image_folder": "data", "prompts": "prompt", "max_memory_gb": "max_memory", "schedule_id": "id"}
DESCRIPTION = ("Optimize a sampling schedule for a model and a solver. Fast mode (default): KLUB "
               "coordinate search (Align Your Steps' objective) from the EDM start and from each hand-made "
               "schedule; then, for --step-counts and --steps steps, a race of the hand-made schedules (both "
               "step conventions, the stock SD1.5 AYS list) and KLUB iterates on --solver's error (a stochastic "
               "solver's ODE counterpart's) "
               "against a many-step teacher from the same noise, and a coordinate search on that error from "
               "the winner, kept only if --solver's samples then lie closer to the data (when x0 are data, "
               "not the model's own draws); with data, a search on the data itself follows "
               "(--data-search-passes), kept only if fresh samples confirm it; the --steps result is then refined --refine times by inserting log-midpoints "
               "(10 -> 20 -> 40). Writes a schedule file (--out) and/or publishes it to your registry (--publish): the finest schedule (other step counts are "
               "resampled from it) plus the exact schedule of each tuned step count. --mode paper: the "
               "paper's search (Monte Carlo KLUB per candidate, early stopping on a validation figure). Runs "
               "on several processes with `torchrun --nproc_per_node=K -m ays_core optimize ...`.")

SUMMARY = "optimize a schedule for a model (KLUB, early stopping)"  # the line `ays --help` shows


def add_parser(subparsers, common):
    from ..samplers import SAMPLERS

    p = subparsers.add_parser("optimize", parents=[common], description=DESCRIPTION, help=SUMMARY)
    p.add_argument("--model", required=True, metavar="SPEC",
                   help="model spec: toy:gaussian (N(0, c^2 I_d); options ?c=0.5&d=2), toy:gmm8x8 (8x8 grid "
                        "of Gaussians; ?std=0.03), both with ?sigma_min=..&sigma_max=..; a checkpoint file; "
                        "diffusers:PATH (a diffusers pipeline, see below); arch:sd15|sd2|sdxl (shape only, --dry-run)")
    p.add_argument("--steps", type=int, default=DEFAULTS.steps, metavar="N",
                   help=f"steps of the KLUB stage, also tuned for the solver (>= 2, default {DEFAULTS.steps})")
    p.add_argument("--refine", type=int, default=DEFAULTS.refine, metavar="R",
                   help=f"subdivisions after it, each doubling the steps (default {DEFAULTS.refine}: 10 -> 20 -> 40)")
    p.add_argument("--solver", default=DEFAULTS.solver, choices=sorted(SAMPLERS),
                   help=f"k-diffusion sampler the schedule is for; early stopping looks at its samples "
                        f"(default {DEFAULTS.solver})")
    p.add_argument("--mode", choices=MODES, default=DEFAULTS.mode,
                   help="fast (default): one table of denoiser values along noising paths serves every KLUB "
                        "evaluation; paper: a fresh Monte Carlo estimate for each of 11 candidates per point")
    p.add_argument("--samples", type=int, default=DEFAULTS.samples, metavar="N",
                   help=f"x0 samples for the KLUB (default {DEFAULTS.samples})")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed,
                   help="random seed, 0 to 4294967295 (default 0); same seed, same schedule")
    p.add_argument("--no-early-stop", dest="early_stop", action="store_false",
                   help="pure KLUB: run the first stage to KLUB convergence from the paper's start; no race, "
                        "refinement or validation on samples")
    p.add_argument("--step-counts", default=DEFAULTS.step_counts, metavar="N,N,...",
                   help=f"step counts that get a schedule of their own, raced and refined for --solver beside "
                        f"--steps (fast mode; default {DEFAULTS.step_counts}; '' for --steps only)")
    p.add_argument("--teacher-samples", type=int, default=DEFAULTS.teacher_samples, metavar="N",
                   help=f"samples of the teacher the race and refinement compare with (default {DEFAULTS.teacher_samples})")
    p.add_argument("--data-search-passes", type=int, default=DEFAULTS.data_search_passes, metavar="N",
                   help=f"when the x0 are data (--data, or a model with data of its own): passes of the search on "
                        f"the data after the race (three searches; fresh samples pick among their lists: each pass "
                        f"moves every point up or down and pushes a kept move on while it helps; one search also tries "
                        f"half the width where the full width fails, one halves the width after every pass and runs "
                        f"one pass more, at most 3; 512 x0-sized samples per trial); 0 skips it "
                        f"(default {DEFAULTS.data_search_passes})")
    p.add_argument("--patience", type=int, default=DEFAULTS.patience, metavar="K",
                   help=f"paper mode's early stopping: iterations without a better validation figure before stopping "
                        f"(default {DEFAULTS.patience})")
    p.add_argument("--validation-samples", type=int, metavar="N",
                   help="paper mode: samples drawn for the validation figure (default 1024 against the model's data, "
                        "256 against a many-step reference where the data carry prompts)")
    p.add_argument("--max-iterations", type=int, default=DEFAULTS.max_iterations, metavar="N",
                   help=f"cap per stage (default {DEFAULTS.max_iterations})")
    p.add_argument("--sigma-min", type=float, metavar="S", help="lower end of the schedule (default: the model's)")
    p.add_argument("--sigma-max", type=float, metavar="S", help="upper end of the schedule (default: the model's)")
    p.add_argument("--id", metavar="ID",
                   help="schedule id (default: <family>-<first 10 hex of the sha256> for a latent diffusion "
                        "checkpoint, else the model's family)")
    p.add_argument("--out", metavar="FILE",
                   help="schedule file to write; give it, or --publish, or both (nothing is written to the "
                        "current folder unasked)")
    p.add_argument("--publish", action="store_true",
                   help="add the schedule to your registry (--registry) as the next version of its id")
    p.add_argument("--state", metavar="FILE",
                   help="state file written after every iteration (default: the --out file with .state.json; "
                        "without --out: ays/optimize/ID.state.json in your per-user cache folder)")
    p.add_argument("--resume", action="store_true", help="continue from the state file of an interrupted run")
    p.add_argument("--log", metavar="FILE",
                   help="KLUB and validation curves as JSON (default: beside the --out file, or the state file "
                        "in the cache folder, .log.json)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--device", metavar="DEV", help="torch device (default: cuda if available, else cpu)")
    latent_options.add_arguments(p, DEFAULTS)
    p.set_defaults(run=run, setting_flags=setting_flags(p, FIELD_DESTS))


def settings_from(args):
    """The RunSettings the flags describe."""
    return RunSettings(
        steps=args.steps, refine=args.refine, mode=args.mode, solver=args.solver, samples=args.samples,
        seed=args.seed, early_stop=args.early_stop, patience=args.patience, step_counts=args.step_counts,
        teacher_samples=args.teacher_samples, data_search_passes=args.data_search_passes,
        validation_samples=args.validation_samples, max_iterations=args.max_iterations,
        sigma_min=args.sigma_min, sigma_max=args.sigma_max, image_folder=args.data or "",
        prompts="\n".join(args.prompt or []), prompts_file=args.prompts_file or "",
        default_caption=args.default_caption, data_samples=args.data_samples, data_steps=args.data_steps,
        cfg_scale=args.cfg_scale, negative_prompt=args.negative_prompt, resolution=args.resolution or 0,
        max_memory_gb=args.max_memory, batch_size=args.batch_size, cache_dir=args.cache_dir or "",
        schedule_id=args.id or "", publish=args.publish)


def usable_device(name):
    """The torch device `name`, checked by placing a tensor on it (a GPU absent here fails now, not mid-run)."""
    import torch

    try:
        device = torch.device(name)
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as exc:  # torch built without CUDA raises AssertionError
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AYSError(f"--device {name!r} cannot be used on this machine ({reason}); try cpu, cuda or cuda:1") from None
    return device


def run(args):
    settings = settings_from(args)
    settings.check()  # before torch loads: a mistyped flag is told at once
    from .. import distributed

    with distributed.process_group() as device:  # left before exit, on every rank (see process_group)
        return _run(args, settings, usable_device(args.device) if args.device else device)


def _run(args, settings, device):
    from .. import distributed, pipeline
    from ..models import load_denoiser
    from ..registry import publish_message, search_order

    if args.dry_run:
        print("\n".join(pipeline.dry_run(args.model, settings, device)))
        return 0
    if not (args.out or args.publish):
        raise AYSError("say where the schedule goes: --out FILE, --publish (your registry), or both")
    model = load_denoiser(args.model, device=device)
    # without --out: the schedule only to the registry (--publish), state and curves to the cache folder
    outputs = (pipeline.Outputs.beside(args.out, args.state, args.log) if args.out else
               pipeline.Outputs.in_cache(pipeline.schedule_id_for(model, settings), args.state, args.log))
    try:
        outcome = pipeline.run(model, settings, outputs, registry_roots=search_order(args.registry).registries,
                               resume=args.resume, device=device, hooks=pipeline.Hooks(report=print, progress=args.progress),
                               provenance={"model_spec": args.model})
    except KeyboardInterrupt:
        if distributed.is_main() and outputs.state.exists():
            print(f"ays: progress saved in {outputs.state}; run the same command with --resume to continue", file=sys.stderr)
        raise
    if outcome is None:  # not the main process
        return 0
    result = outcome.result
    if result.tuned:
        refined = any(t.get("refined", t["moves"] > 0) for t in result.tuned.values())
        stopped = f"selected{' and refined' if refined else ''} for {settings.solver} on samples"
        for tuned in result.tuned.values():
            print(f"  {tuned['summary']}")
    elif settings.early_stop:
        stopped = f"early-stopped at iteration {result.best_iteration} of the descent from {result.best_start}"
    else:
        stopped = "run to convergence"
    print(f"{f'wrote {outputs.schedule}' if outputs.schedule else 'optimized'} ({len(result.sigmas) - 1} steps; "
          f"{settings.steps}-step stage {stopped}; KLUB {result.klub:.6g}; {result.evaluations['klub']} denoiser "
          f"evaluations for the KLUB); curves in {outputs.log}")
    if outcome.published is not None:
        print(publish_message(outcome.published))
    return 0
