"""`ays optimize` options for latent diffusion models (x0 data, guidance, memory) and --dry-run.

Kept apart from cli/optimize.py, which stays about the search: it calls add_arguments() when
building its parser, dry_run() before loading anything, and prepare() once the model is loaded.
"""
import math

from ..errors import AYSError

DEFAULT_PROMPT_SAMPLES = 256
LATENT_ONLY = ("data", "prompt", "prompts_file", "data_samples", "resolution")


def add_arguments(parser):
    from ..data import DEFAULT_REFERENCE_STEPS as DATA_STEPS
    from ..models.ldm import DEFAULT_CFG_SCALE

    group = parser.add_argument_group(
        "latent diffusion models",
        "For diffusers:PATH models (and the WebUI's AYS tab): where x0 comes from, guidance, memory. "
        "Give --data or --prompt/--prompts-file. Latents are cached (safetensors), so a resumed run "
        "does not encode or draw them again.")
    group.add_argument("--data", metavar="DIR",
                       help="x0 from a folder of images (searched recursively; a .txt beside an image is its "
                            "caption), encoded with the model's VAE")
    group.add_argument("--prompt", action="append", metavar="TEXT",
                       help="data-free: x0 drawn from the model itself for this prompt (repeatable)")
    group.add_argument("--prompts-file", metavar="FILE", help="data-free: prompts, one per line")
    group.add_argument("--data-samples", type=int, metavar="N",
                       help=f"x0 latents to encode or draw (default: every image, at most --samples; "
                            f"data-free: {DEFAULT_PROMPT_SAMPLES})")
    group.add_argument("--data-steps", type=int, default=DATA_STEPS, metavar="N",
                       help=f"steps of the reference sampler (DPM++ 2M, Karras) drawing data-free x0 (default {DATA_STEPS})")
    group.add_argument("--default-caption", default="", metavar="TEXT",
                       help="caption of images without a .txt file (default: empty)")
    group.add_argument("--cfg-scale", type=float, default=DEFAULT_CFG_SCALE, metavar="S",
                       help=f"classifier-free guidance scale the schedule is made for (default {DEFAULT_CFG_SCALE:g}, "
                            "the WebUI's; 1 turns guidance off)")
    group.add_argument("--negative-prompt", default="", metavar="TEXT", help="negative prompt (default: empty)")
    group.add_argument("--resolution", type=int, metavar="PX", help="image side in pixels (default: the model's native)")
    group.add_argument("--max-memory", type=float, metavar="GB",
                       help="memory budget on the device (default: the GPU's free memory; 12 GiB where unknown)")
    group.add_argument("--batch-size", type=int, metavar="ROWS",
                       help="UNet rows per forward (default: the most that fit the memory budget)")
    group.add_argument("--cache-dir", metavar="DIR", help="latent cache folder (default: $AYS_CACHE, else ~/.cache/ays)")
    group.add_argument("--dry-run", action="store_true",
                       help="print the denoiser evaluations, memory and time the run would take, then exit "
                            "(loads no weights; arch:sd15, arch:sd2, arch:sdxl describe those models)")


def _budget_bytes(args):
    if args.max_memory is None:
        return None
    if not math.isfinite(args.max_memory) or args.max_memory <= 0:
        raise AYSError(f"--max-memory must be a positive number of GB, got {args.max_memory!r}")
    return int(args.max_memory * 1e9)


def _search_default(name):
    """A default of search.optimize (reference_steps, grid_size), so the plan counts what runs."""
    from ..search import optimize

    return optimize.__kwdefaults__[name]


def _data_samples(args):
    if args.data_samples is not None and args.data_samples < 1:
        raise AYSError(f"--data-samples must be >= 1, got {args.data_samples}")
    if args.data:
        return args.data_samples or args.samples
    return args.data_samples or DEFAULT_PROMPT_SAMPLES


def _evaluations(args, data_free, latent=True):
    from ..budget import count_evaluations
    from ..search import VALIDATION_SAMPLES

    return count_evaluations(
        steps=args.steps, mode=args.mode, samples=args.samples, refine=args.refine, early_stop=args.early_stop,
        patience=args.patience, max_iterations=args.max_iterations, solver=args.solver,
        validation_samples=(VALIDATION_SAMPLES["reference" if latent else "data"] if args.validation_samples is None
                            else args.validation_samples),
        reference_steps=_search_default("reference_steps"),
        grid_size=_search_default("grid_size"),
        data_samples=_data_samples(args) if data_free else 0, data_steps=args.data_steps,
        # a model's own plain data stands in for the reference run
        reference_run=latent)


def _header(args):
    return (f"ays optimize {args.model}: {args.mode} mode, {args.steps} steps refined {args.refine}x, "
            f"{args.samples} samples, solver {args.solver}, "
            + ("early stopping" if args.early_stop else "no early stopping"))


def _architecture_of(spec):
    """(Architecture, dtype name) of an arch: or diffusers: spec without loading weights; None otherwise."""
    from pathlib import Path

    from ..models import parse_spec
    from ..models.architectures import Architecture, architecture
    from ..models.diffusers_adapter import PREDICTION_TYPES, read_config

    scheme, name, options = parse_spec(spec)
    if scheme == "arch":
        return architecture(name), options.get("dtype")
    if scheme != "diffusers":
        return None, None
    folder = Path(name).expanduser()
    if folder.is_file():
        folder = Path(options.get("config") or "")
        if not (folder / "model_index.json").is_file():
            raise AYSError("a dry run of a single-file checkpoint needs ?config=DIR (its pipeline folder of configs)")
    unet_dir = folder / "unet" if (folder / "unet").is_dir() else folder
    config = read_config(unet_dir / "config.json", "UNet")
    scheduler_path = folder / "scheduler" / "scheduler_config.json"
    scheduler = read_config(scheduler_path, "scheduler") if scheduler_path.is_file() else {}
    prediction = PREDICTION_TYPES.get(scheduler.get("prediction_type", "epsilon"), "eps")
    return Architecture.from_unet_config(config, "custom", prediction), options.get("dtype")


def refuse_latent_flags(args):
    """Models with data of their own (toy, digits) take none of the latent-model flags."""
    given = [f"--{name.replace('_', '-')}" for name in LATENT_ONLY if getattr(args, name)]
    if given:
        raise AYSError(f"{', '.join(given)}: only for latent diffusion models (diffusers:PATH), not {args.model}")


def dry_run(args, device):
    """Print what the run would cost and return 0, without loading any weights."""
    import torch

    from ..budget import plan_run, unet_row_cost_on_meta
    from ..models.architectures import build_unet, example_inputs
    from ..models.diffusers_adapter import pick_dtype
    from ..models.ldm import check_cfg_scale

    arch, dtype_name = _architecture_of(args.model)
    if arch is None:
        refuse_latent_flags(args)
    print(_header(args))
    evaluations = _evaluations(args, arch is not None and not args.data, latent=arch is not None)
    if arch is None:
        fixed = ", ".join(f"{k} {v:,}" for k, v in evaluations.fixed.items()) or "none fixed"
        print(f"denoiser evaluations: {fixed}; total {evaluations.low:,} to {evaluations.high:,}")
        return 0
    if args.resolution:
        arch = type(arch)(arch.name, arch.family, arch.prediction, arch.unet, pixels=args.resolution,
                          pooled_width=arch.pooled_width, other_parameters=arch.other_parameters)
    dtype = pick_dtype(dtype_name, device)
    rows_per_sample = 1 if check_cfg_scale(args.cfg_scale) == 1.0 else 2
    unet = build_unet(arch, "meta")
    cost = unet_row_cost_on_meta(unet, lambda rows: example_inputs(arch, rows, "meta"), dtype)
    cost.weight_bytes += arch.other_parameters * torch.tensor([], dtype=dtype).element_size()
    plan = plan_run(evaluations, cost, rows_per_sample, device, dtype, _budget_bytes(args))
    print(f"latents: {'x'.join(map(str, arch.latent_shape))} ({arch.pixels}px), {str(dtype).replace('torch.', '')}, "
          f"x0 from {'images in ' + args.data if args.data else 'the model (data-free)'}")
    print(plan.report())
    return 0


def prepare(args, model, device):
    """For a latent diffusion model: apply the guidance/resolution flags, measure and print the
    plan, build the x0 bank (cached) and return the extra keywords for search.optimize.
    Other models take their own data: latent-only flags are refused."""
    from .. import distributed
    from ..budget import fit_rows, host_chunk_size, measure_seconds, plan_run
    from ..data import images_bank, prompts_bank, read_prompts
    from ..models.ldm import LatentDiffusionDenoiser, check_cfg_scale

    if not isinstance(model, LatentDiffusionDenoiser):
        refuse_latent_flags(args)
        return {}
    if bool(args.data) == bool(args.prompt or args.prompts_file):
        raise AYSError("a latent diffusion model needs x0 data: give either --data DIR (images) or "
                       "--prompt/--prompts-file (data-free)")
    model.cfg_scale = check_cfg_scale(args.cfg_scale)
    model.negative_prompt = args.negative_prompt
    if args.resolution:
        model.set_resolution(args.resolution)
    if model.data_shape is None:
        raise AYSError("the latent size is unknown: pass --resolution")
    samples_wanted = _data_samples(args)
    if args.batch_size is not None and args.batch_size < 1:
        raise AYSError(f"--batch-size must be >= 1, got {args.batch_size}")
    fitting, cost, budget = fit_rows(model, device, _budget_bytes(args))
    rows = args.batch_size or fitting
    model.max_rows = rows
    per_batch = max(1, rows // model.rows_per_sample)
    cost.seconds = measure_seconds(model, model.data_shape, device, per_batch, model.rows_per_sample)
    plan = plan_run(_evaluations(args, not args.data), cost, model.rows_per_sample, device, model.dtype, budget)
    plan.rows_per_batch = rows
    if distributed.is_main():
        print(plan.report())
    if args.data:
        bank = images_bank(model, args.data, resolution=model.data_shape[1] * 8, count=samples_wanted, seed=args.seed,
                           default_caption=args.default_caption, batch_size=per_batch, cache_dir=args.cache_dir)
    else:
        prompts = read_prompts("\n".join(args.prompt or []), args.prompts_file)
        bank = prompts_bank(model, prompts, samples_wanted, model.data_shape, seed=args.seed,
                            reference_steps=args.data_steps, batch_size=per_batch, cache_dir=args.cache_dir,
                            device=device)
    model.model_info["data"] = bank.description
    if distributed.is_main():  # the path table is most of the work and has no bar of its own
        from tqdm import tqdm

        model.on_evaluate = tqdm(desc="denoiser evaluations", unit="sample", unit_scale=True).update
    values = math.prod(model.data_shape)
    if not args.id and model.model_info.get("sha256"):
        # A checkpoint's own schedule gets its own id: the family id names the generic schedule.
        args.id = f"{model.model_info['family']}-{model.model_info['sha256'][:10]}"
    return {"x0": bank, "max_batch": per_batch,
            "chunk_size": host_chunk_size(_search_default("grid_size"), values, args.samples)}
