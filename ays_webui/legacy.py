"""Before 1.9 the schedule was part of the sampler name: "<Sampler> AYS" entries in
modules/sd_samplers.py whose sampler objects compute their sigmas through the adapter."""
from modules import shared

from .adapter import ADAPTER
from .common import warn

LEGACY_SUFFIX = " AYS"
# Pre-1.9 samplers that get an "<name> AYS" twin (when the WebUI has them).
LEGACY_BASE_SAMPLERS = ("Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DPM++ 2S a", "DPM++ 2M",
                        "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 3M SDE", "Restart")


def legacy_get_sigmas(sampler, original, p, steps):
    """KDiffusionSampler.get_sigmas for an "<Sampler> AYS" entry, following the WebUI's own:
    the script override wins, the penultimate sigma is discarded where the sampler asks for it,
    and the user's sigma min/max settings replace the model range."""
    if getattr(p, "sampler_noise_scheduler_override", None):
        return original(p, steps)
    opts = shared.opts
    options = sampler.config.options if sampler.config is not None else {}
    discard = options.get("discard_next_to_last_sigma", False) or getattr(opts, "always_discard_next_to_last_sigma", False)
    table = sampler.model_wrap.sigmas  # ascending; these WebUIs kept sigmas on the model's device
    sigma_min = getattr(opts, "sigma_min", 0) or table[0].item()
    sigma_max = getattr(opts, "sigma_max", 0) or table[-1].item()
    sigmas = ADAPTER.torch_sigmas(steps + 1 if discard else steps, sigma_min, sigma_max, table.device,
                                  inner_model=sampler.model_wrap, p=p)
    if discard:
        import torch

        sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
    return sigmas


def with_ays_sigmas(base_constructor):
    def construct(model):
        sampler = base_constructor(model)
        original = getattr(sampler, "get_sigmas", None)
        if original is None:
            warn("this WebUI is too old for AYS samplers (no get_sigmas); update to 1.3 or newer")
            return sampler
        sampler.get_sigmas = lambda p, steps: legacy_get_sigmas(sampler, original, p, steps)
        return sampler
    return construct


def register():
    """Add "<Sampler> AYS" entries to all_samplers (replacing those of an earlier load) and
    rebuild the sampler lists the UI reads."""
    from modules import sd_samplers

    bases = [s for s in sd_samplers.all_samplers if s.name in LEGACY_BASE_SAMPLERS]
    for base in bases:
        entry = type(base)(base.name + LEGACY_SUFFIX, with_ays_sigmas(base.constructor),
                           [alias + "_ays" for alias in base.aliases], dict(base.options))
        names = [s.name for s in sd_samplers.all_samplers]
        if entry.name in names:
            sd_samplers.all_samplers[names.index(entry.name)] = entry
        else:
            sd_samplers.all_samplers.append(entry)
    if hasattr(sd_samplers, "all_samplers_map"):
        sd_samplers.all_samplers_map = {s.name: s for s in sd_samplers.all_samplers}
    sd_samplers.set_samplers()
