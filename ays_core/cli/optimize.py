"""`ays optimize`: optimize a schedule for a model, write it as a schedule file, optionally publish it."""
import json
import sys
from pathlib import Path

from ..errors import AYSError
from . import latent_options

SETTINGS_KEYS = ("mode", "seed", "steps", "refine", "early_stop", "patience", "validation_samples", "reference_steps")


def add_parser(subparsers, common):
    from ..bench import SAMPLERS
    from ..search import MODES

    p = subparsers.add_parser(
        "optimize", parents=[common], help="optimize a schedule for a model (KLUB, early stopping)",
        description="Optimize a sampling schedule for a model with the KLUB objective of Align Your Steps: "
                    "coordinate search at --steps steps, run from the EDM start and from each hand-made "
                    "schedule (exponential, kl_optimal, the SD1.5 AYS list), keeping the iterate whose samples "
                    "with --solver score best (k-NN KL estimate against x0 draws of the model's data; a "
                    "many-step reference where the data carry prompts), then refined --refine times by inserting "
                    "log-midpoints (10 -> 20 -> 40). Writes a schedule file (the finest schedule; any step "
                    "count is resampled from it, --steps exactly). Runs on several processes with "
                    "`torchrun --nproc_per_node=K -m ays_core optimize ...`.")
    p.add_argument("--model", required=True, metavar="SPEC",
                   help="model spec: toy:gaussian (N(0, c^2 I_d); options ?c=0.5&d=2), toy:gmm8x8 (8x8 grid "
                        "of Gaussians; ?std=0.03), both with ?sigma_min=..&sigma_max=..; a checkpoint file; "
                        "diffusers:PATH (a diffusers pipeline, see below); arch:sd15|sd2|sdxl (shape only, --dry-run)")
    p.add_argument("--steps", type=int, default=10, metavar="N", help="steps of the early-stopped stage (>= 2, default 10)")
    p.add_argument("--refine", type=int, default=2, metavar="R",
                   help="subdivisions after it, each doubling the steps (default 2: 10 -> 20 -> 40)")
    p.add_argument("--solver", default="dpmpp_2m", choices=sorted(SAMPLERS),
                   help="k-diffusion sampler the schedule is for; early stopping looks at its samples (default dpmpp_2m)")
    p.add_argument("--mode", choices=MODES, default="fast",
                   help="fast (default): one table of denoiser values along noising paths serves every KLUB "
                        "evaluation; paper: a fresh Monte Carlo estimate for each of 11 candidates per point")
    p.add_argument("--samples", type=int, default=4096, metavar="N", help="x0 samples for the KLUB (default 4096)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0); same seed, same schedule")
    p.add_argument("--no-early-stop", dest="early_stop", action="store_false",
                   help="run the first stage to KLUB convergence instead of stopping at the best samples")
    p.add_argument("--patience", type=int, default=5, metavar="K",
                   help="early stopping: iterations without a better validation figure before stopping (default 5)")
    p.add_argument("--validation-samples", type=int, metavar="N",
                   help="samples drawn for the validation figure (default 1024 against the model's data, "
                        "256 against a many-step reference where the data carry prompts)")
    p.add_argument("--max-iterations", type=int, default=300, metavar="N", help="cap per stage (default 300)")
    p.add_argument("--sigma-min", type=float, metavar="S", help="lower end of the schedule (default: the model's)")
    p.add_argument("--sigma-max", type=float, metavar="S", help="upper end of the schedule (default: the model's)")
    p.add_argument("--id", metavar="ID", help="schedule id (default: the model's family)")
    p.add_argument("--out", metavar="FILE", help="schedule file to write (default: ID.json)")
    p.add_argument("--publish", action="store_true", help="also add the schedule to the registry as its next version")
    p.add_argument("--state", metavar="FILE",
                   help="state file written after every iteration (default: the --out file with .state.json)")
    p.add_argument("--resume", action="store_true", help="continue from the state file of an interrupted run")
    p.add_argument("--log", metavar="FILE",
                   help="KLUB and validation curves as JSON (default: the --out file with .log.json)")
    p.add_argument("--device", metavar="DEV", help="torch device (default: cuda if available, else cpu)")
    latent_options.add_arguments(p)
    p.set_defaults(run=run)


def _paths(args, schedule_id):
    out = Path(args.out or f"{schedule_id}.json")
    state = Path(args.state) if args.state else out.with_suffix(".state.json")
    log = Path(args.log) if args.log else out.with_suffix(".log.json")
    for path in (out, state, log):
        if not path.parent.is_dir():
            raise AYSError(f"{path}: folder {path.parent} does not exist")
    return out, state, log


def run(args):
    from .. import distributed
    from ..models import load_denoiser
    from ..fileio import atomic_write
    from ..registry import Registry, RegistrySet, check_id, default_registry, dump_schedule, new_schedule_doc
    from ..search import optimize

    device = distributed.init_from_env()
    if args.device:
        import torch

        try:
            device = torch.device(args.device)
        except RuntimeError:
            raise AYSError(f"--device {args.device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if args.dry_run:
        return latent_options.dry_run(args, device)
    model = load_denoiser(args.model, device=device)
    latent = latent_options.prepare(args, model, device)  # x0 bank, batch sizes; {} for other models
    info = dict(getattr(model, "model_info", None) or {})
    schedule_id = check_id(args.id or info.get("family", "custom"))
    out, state, log = _paths(args, schedule_id)
    if distributed.is_main() and state.exists() != args.resume:
        print(f"ays: no state file {state}; starting a new run" if args.resume else
              f"ays: starting over; {state} from an earlier run is replaced (--resume continues it)")
    try:
        result = optimize(model, args.steps, mode=args.mode, solver=args.solver, samples=args.samples,
                          seed=args.seed, early_stop=args.early_stop, patience=args.patience, refine=args.refine,
                          max_iterations=args.max_iterations, sigma_min=args.sigma_min, sigma_max=args.sigma_max,
                          validation_samples=args.validation_samples, state_path=state, resume=args.resume,
                          device=device, **latent)
    except KeyboardInterrupt:
        if distributed.is_main() and state.exists():
            print(f"ays: progress saved in {state}; run the same command with --resume to continue", file=sys.stderr)
        raise
    if not distributed.is_main():
        return 0
    settings = {key: result.settings[key] for key in SETTINGS_KEYS}
    settings.update(model_spec=args.model, best_iteration=result.best_iteration, klub=result.klub,
                    denoiser_evaluations=result.evaluations)
    doc = new_schedule_doc(schedule_id, result.sigmas, family=info.get("family", schedule_id),
                           prediction=info.get("prediction", "eps"), source="optimized", solver=args.solver,
                           samples=args.samples, data=info.get("data", f"samples of {args.model}"),
                           sha256=info.get("sha256"), name=info.get("name"), settings=settings)
    atomic_write(out, dump_schedule(doc))
    atomic_write(log, (json.dumps({"settings": result.settings, "history": result.history}, indent=1) + "\n").encode())
    stopped = (f"early-stopped at iteration {result.best_iteration} of the descent from {result.best_start}"
               if args.early_stop else "run to convergence")
    print(f"wrote {out} ({len(result.sigmas) - 1} steps; {args.steps}-step stage {stopped}; KLUB {result.klub:.6g}; "
          f"{result.evaluations['klub']} denoiser evaluations for the KLUB); curves in {log}")
    if args.publish:
        published = RegistrySet([args.registry or default_registry(), Registry()]).publish(doc)
        print(f"published {published.ref} to {published.path}")
    return 0
