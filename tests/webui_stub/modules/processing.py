"""Stand-in for the sampling flow of modules/processing.py (A1111 1.10, Forge dfdcbab6).

`StableDiffusionProcessing` carries the fields the sampler and the extension read. `process_images`
mirrors the order of events: override_settings applied to opts as the API applies them (is_api:
restrict_api settings stay) and restored afterwards,
fix_p_invalid_sampler_and_scheduler (1.9+ only), then in process_images_inner the always-visible
scripts' process(), the first pass
(txt2img: sampler.sample; img2img: sampler.sample_img2img with the WebUI's truncation), for
txt2img with enable_hr the hires pass (is_hr_pass=True, hr_scheduler defaulting to the scheduler,
hr_sampler_name or a hires checkpoint creating another sampler, sample_img2img with
steps=hr_second_pass_steps or steps), infotext creation from extra_generation_params, then the
scripts' postprocess(). No model runs: the result records the sigmas each pass used.
"""
import dataclasses
from typing import Optional

from modules import infotext_utils, scripts, sd_samplers, shared


@dataclasses.dataclass
class StableDiffusionProcessing:
    sampler_name: str = "Euler"
    scheduler: Optional[str] = "Automatic"
    steps: int = 20
    is_img2img: bool = False
    denoising_strength: float = 0.75
    enable_hr: bool = False
    hr_second_pass_steps: int = 0
    hr_sampler_name: Optional[str] = None
    hr_scheduler: Optional[str] = None
    hr_sd_model: object = None  # stands in for hr_checkpoint_name (1.8+): the model loaded for the hires pass
    sampler_noise_scheduler_override: object = None
    override_settings: dict = dataclasses.field(default_factory=dict)
    extra_generation_params: dict = dataclasses.field(default_factory=dict)
    is_hr_pass: bool = False


@dataclasses.dataclass
class Processed:
    infotext: str
    first_pass_sigmas: object
    hires_sigmas: object = None


def create_infotext(p):
    params = {"Steps": p.steps, "Sampler": p.sampler_name, "Schedule type": p.scheduler, **p.extra_generation_params}
    return ", ".join(f"{k}: {infotext_utils.quote(v)}" for k, v in params.items() if v is not None)


def process_images(p):
    saved = {k: getattr(shared.opts, k) for k in p.override_settings}
    for key, value in p.override_settings.items():
        shared.opts.set(key, value, is_api=True, run_callbacks=False)
    try:
        if has_scheduler_api():
            sd_samplers.fix_p_invalid_sampler_and_scheduler(p)
        return process_images_inner(p)
    finally:
        for key, value in saved.items():
            shared.opts.set(key, value)


def process_images_inner(p):
    scripts.run_process(p)
    sampler = sd_samplers.create_sampler(p.sampler_name, shared.sd_model)
    if p.is_img2img:
        first = sampler.sample_img2img(p)
    else:
        first = sampler.sample(p)
    hires = None
    if p.enable_hr and not p.is_img2img:
        if p.hr_scheduler is None:
            p.hr_scheduler = p.scheduler
        p.is_hr_pass = True
        if p.hr_sd_model is not None:
            shared.sd_model = p.hr_sd_model
        if p.hr_sd_model is not None or (p.hr_sampler_name is not None and p.hr_sampler_name != p.sampler_name):
            sampler = sd_samplers.create_sampler(p.hr_sampler_name or p.sampler_name, shared.sd_model)
        hires = sampler.sample_img2img(p, steps=p.hr_second_pass_steps or p.steps)
        p.is_hr_pass = False
    processed = Processed(create_infotext(p), first, hires)
    scripts.run_postprocess(p, processed)
    return processed


def has_scheduler_api():
    try:
        from modules import sd_schedulers  # noqa: F401
    except ImportError:
        return False
    return True
