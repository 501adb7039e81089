"""The settings of one optimization run, with every default in one place.

`ays optimize`, its --dry-run plan, the WebUI's AYS tab and its API all build a RunSettings and
hand it to the pipeline (pipeline.py); the search reads the same object. Nothing here imports
torch, so building and checking settings stays cheap.
"""
import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Optional

from .errors import AYSError, SettingError
from .registry import check_id

MODES = ("paper", "fast")
STARTS = ("all", "paper")   # stage 0 descends from every start schedule, or from the paper's only
MAX_POINTS = 1001           # a stored schedule holds at most this many sigmas
MAX_TEXT = 1 << 20          # characters of any text setting (prompts, paths)
DEFAULT_PROMPT_SAMPLES = 256  # x0 latents drawn from the model when data-free
DEFAULT_DATA_STEPS = 50     # steps of the sampler that draws data-free x0
DEFAULT_CFG_SCALE = 7.0     # the WebUI's default CFG scale
MAX_SEED = 2 ** 32 - 1      # the run derives noise seeds as seed * 1009 + k: they must stay valid torch seeds


@dataclass(frozen=True)
class RunSettings:
    """What to optimize and how. Fields that only latent diffusion models take are grouped below;
    models with data of their own (toys, digits) refuse them."""

    # the search (search.py)
    steps: int = 10                            # steps of the KLUB stage (and one of the step counts tuned)
    refine: int = 2                            # subdivisions after it, each doubling the steps
    mode: str = "fast"                         # "fast": one path table; "paper": Monte Carlo per candidate
    solver: str = "dpmpp_2m"                   # the sampler the schedule is for (early stopping uses it)
    samples: int = 256                         # x0 samples of the KLUB
    seed: int = 0
    early_stop: bool = True                    # fast mode: the solver stage; paper mode: validation per iterate
    patience: int = 5                          # iterations without a better validation figure
    validation_samples: Optional[int] = None   # None: 1024 against plain data, 256 against a reference run
    max_iterations: int = 300                  # per stage
    sigma_min: Optional[float] = None          # None: the model's
    sigma_max: Optional[float] = None
    reference_steps: int = 100                 # steps of the early-stopping reference run
    grid_size: int = 48                        # fast mode: log-sigma grid of the path table
    start: str = "all"                         # see STARTS
    step_counts: str = "4,6,8"                 # solver stage: step counts tuned beside `steps` ("" for none)
    teacher_samples: int = 32                  # solver stage: samples of its teacher
    data_search_passes: int = 2                # solver stage, x0 are data: passes of the searches on them (one of
                                               # them runs one more; 0: none)
    # x0 for latent diffusion models: images, or data-free draws for prompts
    image_folder: str = ""                     # images (a .txt beside one is its caption)
    prompts: str = ""                          # one prompt per line
    prompts_file: str = ""
    default_caption: str = ""                  # caption of images without a .txt
    data_samples: Optional[int] = None         # None: every image (at most `samples`); data-free: 256
    data_steps: int = DEFAULT_DATA_STEPS
    cfg_scale: float = DEFAULT_CFG_SCALE
    negative_prompt: str = ""
    resolution: int = 0                        # image side in pixels; 0: the model's native
    # resources
    max_memory_gb: Optional[float] = None      # None: the GPU's free memory (12 GiB where unknown)
    batch_size: Optional[int] = None           # UNet rows per forward; None: the most that fit
    cache_dir: str = ""                        # latent cache; "": $AYS_CACHE, else ~/.cache/ays
    # the result
    schedule_id: str = ""                      # "": <family>-<sha256[:10]> for a checkpoint, else the family
    publish: bool = False

    # -- reading untrusted input (API JSON, a job file)
    @classmethod
    def from_dict(cls, values, base=None):
        """Settings from a JSON object: unknown keys and wrong types are refused. `base`: a dict
        of defaults that differ from the class's (the WebUI's)."""
        if not isinstance(values, dict):
            raise AYSError("settings must be a JSON object")
        kinds = field_kinds()
        unknown = sorted(set(values) - set(kinds))
        if unknown:
            raise AYSError(f"unknown setting(s): {', '.join(map(str, unknown))}")
        clean = dict(base or {})
        for key, value in values.items():
            clean[key] = _coerce(key, value, *kinds[key])
        settings = cls(**clean)
        settings.check()
        return settings

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def as_dict(self):
        return dataclasses.asdict(self)

    # -- checks every caller gets
    def check(self):
        """Raise SettingError naming the first setting a user got wrong (model-dependent checks,
        such as the sigma range, happen when the model is known)."""
        for name, (kind, nullable) in field_kinds().items():
            _coerce(name, getattr(self, name), kind, nullable)
        for name, low, high in BOUNDS:
            value = getattr(self, name)
            if value is not None and not low <= value <= high:
                raise SettingError(lambda n, v=value, lo=low, hi=high: f"{n} must be a whole number between {lo} and "
                                                                          f"{hi}, got {v}", name)
        if self.steps * 2 ** self.refine + 1 > MAX_POINTS:
            raise SettingError(lambda s, r: f"{self.steps} steps ({s}) refined {self.refine} times ({r}) makes more "
                                            f"than {MAX_POINTS - 1} steps", "steps", "refine")
        for name, allowed in (("mode", MODES), ("start", STARTS)):
            value = getattr(self, name)
            if value not in allowed:
                raise SettingError(lambda n, v=value, a=allowed: f"{n} must be one of {', '.join(a)}, got {v!r}", name)
        _check("solver", _check_solver, self.solver)
        _check("cfg_scale", check_cfg_scale, self.cfg_scale)
        for name in ("sigma_min", "sigma_max", "max_memory_gb"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise SettingError(lambda n, v=value: f"{n} must be a positive number, got {v!r}", name)
        if self.resolution and (self.resolution % 8 or self.resolution < 64):
            raise SettingError(lambda n: f"{n} must be 0 (native) or a multiple of 8 >= 64, got {self.resolution}",
                               "resolution")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, str) and len(value) > MAX_TEXT:
                raise SettingError(lambda n: f"{n} is longer than {MAX_TEXT} characters", field.name)
        if self.image_folder and (self.prompts.strip() or self.prompts_file):
            raise SettingError(lambda i, p, f: f"give x0 data as images ({i}) or as prompts ({p}, {f}), not both",
                               "image_folder", "prompts", "prompts_file")
        if self.schedule_id:
            _check("schedule_id", check_id, self.schedule_id)
        self.tuned_steps()

    def tuned_steps(self):
        """The step counts the solver stage tunes: `step_counts` and `steps`, ascending."""
        try:
            counts = {int(part) for part in self.step_counts.split(",") if part.strip()}
        except ValueError:
            raise SettingError(lambda n: f"{n} must be whole numbers separated by commas, got {self.step_counts!r}",
                               "step_counts") from None
        if any(not 2 <= n <= 100 for n in counts):
            raise SettingError(lambda n: f"{n} must lie between 2 and 100, got {self.step_counts!r}", "step_counts")
        return sorted(counts | {self.steps})

    @property
    def solver_stage(self):
        """Whether the search ends with the solver stage (ays_core.refine): fast mode, early stopping."""
        return self.mode == "fast" and self.early_stop

    # -- what the settings mean
    @property
    def data_free(self):
        """x0 drawn from the model for prompts (rather than encoded from images)."""
        return not self.image_folder and bool(self.prompts.strip() or self.prompts_file)

    @property
    def latent_fields(self):
        """Names of the latent-model settings that differ from their defaults."""
        return [name for name in LATENT_ONLY if getattr(self, name) != getattr(RunSettings, name)]

    def x0_count(self, data_free):
        """x0 latents to draw (data_free) or to encode at most."""
        if self.data_samples is not None:
            return self.data_samples
        return DEFAULT_PROMPT_SAMPLES if data_free else self.samples

    def memory_budget_bytes(self):
        return None if self.max_memory_gb is None else int(self.max_memory_gb * 1e9)


# (name, least, most) of the whole-number settings
BOUNDS = (("steps", 2, MAX_POINTS - 1), ("refine", 0, 9), ("samples", 2, 10_000_000), ("seed", 0, MAX_SEED),
          ("patience", 1, 100_000), ("validation_samples", 1, 1_000_000), ("max_iterations", 1, 1_000_000),
          ("reference_steps", 1, 100_000), ("grid_size", 2, 10_000), ("data_samples", 1, 10_000_000),
          ("data_steps", 10, 100_000), ("resolution", 0, 4096), ("batch_size", 1, 1_000_000),
          ("teacher_samples", 1, 100_000), ("data_search_passes", 0, 10))
LATENT_ONLY = ("image_folder", "prompts", "prompts_file", "data_samples", "resolution")
# The WebUI tab's defaults where they differ: latent models are slow, so smaller budgets, and
# a finished run is published for the loaded checkpoint.
WEBUI_DEFAULTS = {"validation_samples": 64, "data_samples": DEFAULT_PROMPT_SAMPLES, "publish": True}


def field_kinds():
    """{field name: (type, whether None is allowed)} from the annotations."""
    hints = typing.get_type_hints(RunSettings)
    kinds = {}
    for field in dataclasses.fields(RunSettings):
        hint = hints[field.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        kinds[field.name] = (args[0], True) if args else (hint, False)
    return kinds


def _coerce(key, value, kind, nullable):
    """`value` as the field's type (a whole number is taken where a float is asked for), else SettingError."""
    if value is None and nullable:
        return None
    if kind is float and type(value) is int:
        value = float(value)
    if type(value) is not kind:
        words = KIND_WORDS.get(kind, f"a {kind.__name__}")
        raise SettingError(lambda n: f"setting {n} must be {words}, got {value!r}", key)
    return value


KIND_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}  # for messages


def _check(name, check, value):
    """check(value), its AYSError as a SettingError of field `name` (the check's message after it)."""
    try:
        check(value)
    except SettingError:
        raise
    except AYSError as exc:
        reason = str(exc)
        raise SettingError(lambda n: f"{n}: {reason}", name) from None


def _check_solver(name):
    from .samplers import get_sampler

    get_sampler(name)


def check_cfg_scale(scale):
    """The classifier-free guidance scale as a float in [1, 30] (1: no guidance), else AYSError."""
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        raise AYSError(f"CFG scale must be a number, got {scale!r}") from None
    if not math.isfinite(scale) or not 1.0 <= scale <= 30.0:
        raise AYSError(f"CFG scale must be between 1 and 30, got {scale!r}")
    return scale
