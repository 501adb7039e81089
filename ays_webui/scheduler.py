"""The scheduler "AYS" (name `ays`) in modules/sd_schedulers.py (AUTOMATIC1111 1.9+, Forge).
KDiffusionSampler.get_sigmas calls it with keywords n, sigma_min, sigma_max, inner_model, device;
the WebUI itself cuts the img2img / hires tail and writes "Schedule type: AYS" in the infotext."""
from .adapter import ADAPTER

SCHEDULER_NAME = "ays"
SCHEDULER_LABEL = "AYS"


def ays_scheduler(n, sigma_min, sigma_max, device="cpu", inner_model=None, **_other):
    """sd_schedulers entry point: keyword-only call from get_sigmas."""
    return ADAPTER.torch_sigmas(n, sigma_min, sigma_max, device, inner_model=inner_model)


def register():
    """Add "AYS" to the scheduler list and map (name and label); on "Reload UI" the entry from
    the previous load is replaced in place, never duplicated. The built-in Align Your Steps is
    left alone."""
    from modules import sd_schedulers

    entry = sd_schedulers.Scheduler(SCHEDULER_NAME, SCHEDULER_LABEL, ays_scheduler, need_inner_model=True)
    names = [s.name for s in sd_schedulers.schedulers]
    if SCHEDULER_NAME in names:
        sd_schedulers.schedulers[names.index(SCHEDULER_NAME)] = entry
    else:
        sd_schedulers.schedulers.append(entry)
    sd_schedulers.schedulers_map[SCHEDULER_NAME] = entry
    sd_schedulers.schedulers_map[SCHEDULER_LABEL] = entry
    forget_resolved_schedulers()


def forget_resolved_schedulers():
    """sd_samplers.get_sampler_and_scheduler is memoised: drop answers given before "AYS" existed."""
    try:
        from modules import sd_samplers
    except ImportError:
        return
    cache_clear = getattr(getattr(sd_samplers, "get_sampler_and_scheduler", None), "cache_clear", None)
    if cache_clear:
        cache_clear()
