"""The optimization path as one call: prepare the x0 data, run the search, build the schedule
file, write it and publish it. `ays optimize` (cli/optimize.py), the WebUI tab's job (tune.py)
and its API routes all run `run()`; --dry-run runs `dry_run()`. They differ only in the
RunSettings they build, where files go, and what they do with the Hooks (print, or show
progress in the WebUI).

Models with data of their own (toys, digits checkpoints) take it from the model; latent
diffusion models get guidance, resolution and memory settings applied, a measured plan, and an
x0 bank (images encoded by the VAE, or latents drawn for prompts), cached.
"""
import json
import math
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Callable, Optional

from . import distributed
from .errors import AYSError, SettingError
from .fileio import atomic_write
from .registry import RegistrySet, dump_schedule, new_schedule_doc
from .settings import RunSettings

# Settings recorded in a schedule file's provenance (with what the run found).
PROVENANCE_KEYS = ("mode", "seed", "steps", "refine", "early_stop", "patience", "validation_samples", "reference_steps")


def _ignore(*_args):
    return None


@dataclass
class Hooks:
    """How a caller hears of a run. Everything is optional; lines and phases come from the main
    process only."""

    report: Callable[[str], None] = _ignore     # lines for the user: the plan, notices
    phase: Callable[[str], None] = _ignore      # what the run is doing now
    searching: Callable[[int], None] = _ignore  # the search starts; it makes at least this many evaluations
    data_progress: Optional[Callable] = None    # (done, total, what) while x0 is encoded or drawn
    should_stop: Optional[Callable] = None      # () -> bool, checked between batches of x0
    on_evaluate: Optional[Callable] = None      # (samples) for each denoiser call of the search
    progress: bool = True                       # console progress bars


@dataclass
class Outputs:
    """Where a run writes: the schedule file (None: none, only publish), the search's state (for
    resume) and the log of curves."""

    schedule: Path
    state: Path
    log: Path

    @classmethod
    def beside(cls, schedule, state=None, log=None):
        """The state and log default to files next to the schedule file."""
        schedule = Path(schedule)
        return cls(schedule, Path(state) if state else schedule.with_suffix(".state.json"),
                   Path(log) if log else schedule.with_suffix(".log.json"))

    @classmethod
    def in_cache(cls, schedule_id, state=None, log=None):
        """No schedule file (the schedule is only published); the state and log default to
        ays/optimize/<id>.state.json and .log.json in the per-user cache folder, created here."""
        from .userdirs import user_cache_dir

        folder = user_cache_dir() / "optimize"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise AYSError(f"cannot create {folder}: {error.strerror or error}") from None
        return cls(None, *astuple(cls.beside(folder / f"{schedule_id}.json", state, log))[1:])

    def check(self):
        for path in (self.schedule, self.state, self.log):
            if path is not None and not path.parent.is_dir():
                raise AYSError(f"{path}: folder {path.parent} does not exist")
        return self


@dataclass
class RunOutcome:
    result: object                 # search.OptimizeResult
    document: dict                 # the schedule file's content
    outputs: Outputs
    published: object = None       # registry.Schedule, when published


@dataclass
class _Data:
    """What the search gets besides the settings: x0 and the memory-bound batch sizes."""

    x0: object = None
    search_options: dict = field(default_factory=dict)


# ---------------------------------------------------------------- what a model is

def is_latent(denoiser):
    from .models.ldm import LatentDiffusionDenoiser

    return isinstance(denoiser, LatentDiffusionDenoiser)


def schedule_id_for(denoiser, settings):
    """The id a run publishes under: the settings', else <family>-<sha256[:10]> for a latent
    checkpoint (its own schedule; the family id names the generic one), else the family."""
    if settings.schedule_id:
        return settings.schedule_id
    info = getattr(denoiser, "model_info", None) or {}
    family = info.get("family", "custom")
    if is_latent(denoiser) and info.get("sha256"):
        return f"{family}-{info['sha256'][:10]}"
    return family


def check_data_settings(denoiser, settings):
    """Latent models need x0 data; models with data of their own take none of the latent settings."""
    if not is_latent(denoiser):
        refuse_latent_settings(settings, "this one (it brings its own data)")
        return
    if not (settings.image_folder or settings.data_free):
        raise SettingError(lambda i, p, f: f"a latent diffusion model needs x0 data: a folder of images ({i}) or "
                                           f"prompts to draw from ({p}, {f})", "image_folder", "prompts", "prompts_file")


def refuse_latent_settings(settings, model):
    """SettingError naming the latent-model settings given for `model` (words), which takes none."""
    if settings.latent_fields:
        raise SettingError(lambda *names: f"{', '.join(names)}: only for latent diffusion models, not {model}",
                           *settings.latent_fields)


# ---------------------------------------------------------------- the run

def run(denoiser, settings, outputs, *, registry_roots=(), resume=False, device=None, hooks=None,
        provenance=None, readable=None):
    """Optimize a schedule for `denoiser` with `settings`; write it to `outputs` and, with
    settings.publish, publish it to the first of `registry_roots`. `provenance`: extra entries
    for the schedule file's provenance settings (say, the model spec). `readable`: when given
    (the WebUI), the only folders image files may resolve into. Returns a RunOutcome on the main
    process, None on the others."""
    from .refine import solver_stage_for
    from .search import optimize

    hooks = hooks or Hooks()
    settings.check()
    check_data_settings(denoiser, settings)
    schedule_id = schedule_id_for(denoiser, settings)
    outputs.check()
    main = distributed.is_main()
    if main and outputs.state.exists() != resume:
        hooks.report(f"no state file {outputs.state}; starting a new run" if resume else
                     f"starting over; {outputs.state} from an earlier run is replaced (resume continues it)")
    data = _prepare_latent(denoiser, settings, device, hooks, readable) if is_latent(denoiser) else _Data()
    if main:
        hooks.searching(search_evaluations(denoiser, settings))
    hooks.phase("optimizing")
    result = optimize(denoiser, settings, x0=data.x0, state_path=outputs.state, resume=resume,
                      progress=hooks.progress, device=device, solver_stage=solver_stage_for(settings),
                      **data.search_options)
    if not main:
        return None
    document = schedule_document(denoiser, settings, result, schedule_id, provenance)
    if outputs.schedule is not None:  # None: the schedule goes to the registry only
        atomic_write(outputs.schedule, dump_schedule(document))
    atomic_write(outputs.log, (json.dumps({"settings": result.settings, "history": result.history,
                                           "solver_stage": result.tuned}, indent=1) + "\n").encode())
    published = RegistrySet(list(registry_roots)).publish(document) if settings.publish else None
    return RunOutcome(result, document, outputs, published)


def schedule_document(denoiser, settings, result, schedule_id, provenance=None):
    """The schedule file of a finished search (registry.new_schedule_doc)."""
    info = dict(getattr(denoiser, "model_info", None) or {})
    recorded = {key: result.settings[key] for key in PROVENANCE_KEYS}
    if is_latent(denoiser):
        recorded["cfg_scale"] = settings.cfg_scale
    recorded.update(provenance or {})
    recorded.update(best_iteration=result.best_iteration, klub=result.klub, denoiser_evaluations=result.evaluations)
    tuned = result.tuned or {}
    if tuned:
        from .refine import provenance_of

        recorded["step_schedules"] = {n: provenance_of(t) for n, t in tuned.items()}
    model_name = recorded.get("model_spec", info.get("family", schedule_id))
    return new_schedule_doc(schedule_id, result.sigmas, family=info.get("family", schedule_id),
                            prediction=info.get("prediction", "eps"), source="optimized", solver=settings.solver,
                            samples=settings.samples, data=info.get("data", f"samples of {model_name}"),
                            sha256=info.get("sha256"), name=info.get("name"), settings=recorded,
                            step_schedules={int(n): t["sigmas"][:-1] for n, t in tuned.items()})


def search_evaluations(denoiser, settings):
    """The fewest denoiser evaluations the search itself makes (x0 preparation not counted)."""
    from .budget import count_evaluations

    return count_evaluations(settings, plain_data=not is_latent(denoiser)).low


# ---------------------------------------------------------------- latent diffusion models

def _prepare_latent(denoiser, settings, device, hooks, readable=None):
    """Apply guidance and resolution, fit the batch to memory, report the plan, build the x0 bank."""
    from .budget import count_evaluations, fit_rows, host_chunk_size, measure_seconds, plan_run
    from .data import images_bank, prompts_bank, read_prompts

    denoiser.cfg_scale = settings.cfg_scale
    denoiser.negative_prompt = settings.negative_prompt
    if settings.resolution:
        denoiser.set_resolution(settings.resolution)
    if denoiser.data_shape is None:
        raise SettingError(lambda r: f"the latent size is unknown: set a resolution ({r})", "resolution")
    device = device if device is not None else denoiser.device
    main = distributed.is_main()
    hooks.phase("measuring memory")
    fitting, cost, budget = fit_rows(denoiser, device, settings.memory_budget_bytes())
    rows = settings.batch_size or fitting
    denoiser.max_rows = rows
    per_batch = max(1, rows // denoiser.rows_per_sample)
    cost.seconds = measure_seconds(denoiser, denoiser.data_shape, device, per_batch, denoiser.rows_per_sample)
    evaluations = count_evaluations(settings, x0_draws=settings.x0_count(True) if settings.data_free else 0)
    plan = plan_run(evaluations, cost, denoiser.rows_per_sample, device, denoiser.dtype, budget)
    plan.rows_per_batch = rows
    if main:
        hooks.report(plan.report())
    hooks.phase("preparing x0")
    common = {"seed": settings.seed, "batch_size": per_batch, "cache_dir": settings.cache_dir or None,
              "should_stop": hooks.should_stop, "on_progress": hooks.data_progress, "progress": hooks.progress and main}
    if settings.image_folder:
        bank = images_bank(denoiser, settings.image_folder, resolution=denoiser.data_shape[1] * 8,
                           count=settings.x0_count(False), default_caption=settings.default_caption,
                           within=readable, **common)
    else:
        prompts = read_prompts(settings.prompts, settings.prompts_file or None)
        bank = prompts_bank(denoiser, prompts, settings.x0_count(True), denoiser.data_shape,
                            reference_steps=settings.data_steps, device=device, **common)
    denoiser.model_info["data"] = bank.description
    denoiser.on_evaluate = hooks.on_evaluate
    chunk = host_chunk_size(settings.grid_size, math.prod(denoiser.data_shape), settings.samples)
    return _Data(bank, {"max_batch": per_batch, "chunk_size": chunk})


# ---------------------------------------------------------------- the plan without a run

def _stage_words(settings):
    if settings.solver_stage:
        return (f"race and refinement for {', '.join(map(str, settings.tuned_steps()))} steps on "
                f"{settings.teacher_samples} teacher samples")
    return "early stopping" if settings.early_stop else "no early stopping"


def dry_run(spec, settings, device):
    """The lines `ays optimize --dry-run` prints: what a run of `spec` with `settings` would cost,
    without loading any weights (a latent model is measured on the meta device)."""
    import torch

    from .budget import count_evaluations, plan_run, unet_row_cost_on_meta
    from .models import architecture_of
    from .models.architectures import build_unet, example_inputs
    from .models.diffusers_adapter import pick_dtype

    settings.check()
    arch, dtype_name = architecture_of(spec)
    lines = [f"ays optimize {spec}: {settings.mode} mode, {settings.steps} steps refined {settings.refine}x, "
             f"{settings.samples} samples, solver {settings.solver}, " + _stage_words(settings)]
    if arch is None:
        refuse_latent_settings(settings, spec)
        evaluations = count_evaluations(settings, plain_data=True)
        fixed = ", ".join(f"{k} {v:,}" for k, v in evaluations.fixed.items()) or "none fixed"
        return lines + [f"denoiser evaluations: {fixed}; total {evaluations.low:,} to {evaluations.high:,}"]
    if settings.resolution:
        arch = type(arch)(arch.name, arch.family, arch.prediction, arch.unet, pixels=settings.resolution,
                          pooled_width=arch.pooled_width, other_parameters=arch.other_parameters)
    dtype = pick_dtype(dtype_name, device)
    rows_per_sample = 1 if settings.cfg_scale == 1.0 else 2
    unet = build_unet(arch, "meta")
    cost = unet_row_cost_on_meta(unet, lambda rows: example_inputs(arch, rows, "meta"), dtype)
    cost.weight_bytes += arch.other_parameters * torch.tensor([], dtype=dtype).element_size()
    data_free = not settings.image_folder
    evaluations = count_evaluations(settings, x0_draws=settings.x0_count(True) if data_free else 0)
    plan = plan_run(evaluations, cost, rows_per_sample, device, dtype, settings.memory_budget_bytes())
    lines.append(f"latents: {'x'.join(map(str, arch.latent_shape))} ({arch.pixels}px), "
                 f"{str(dtype).replace('torch.', '')}, x0 from "
                 + (f"images in {settings.image_folder}" if settings.image_folder else "the model (data-free)"))
    return lines + [plan.report()]
