"""Stand-in for modules/sd_samplers.py.

Mirrors A1111 1.10 / Forge dfdcbab6: `all_samplers`, `all_samplers_map` (name -> SamplerData),
`samplers`, `samplers_for_img2img`, `samplers_map` (lower-cased names and aliases -> name),
`set_samplers()` which rebuilds those from all_samplers, `create_sampler(name, model)` (sets
sampler.config), the cached `get_sampler_and_scheduler(sampler_name, scheduler_name)` (a trailing
" <scheduler label/name/alias>" on the sampler name selects that scheduler; an unknown scheduler
gives "Automatic"; the sampler's own default scheduler is reported as "Automatic") and
`fix_p_invalid_sampler_and_scheduler(p)`. Before 1.9 only the sampler tables and set_samplers
existed; the extension uses nothing else on that path.
"""
import functools

from modules import sd_samplers_kdiffusion, shared

all_samplers = [*sd_samplers_kdiffusion.samplers_data_k_diffusion]
all_samplers_map = {x.name: x for x in all_samplers}

samplers = []
samplers_for_img2img = []
samplers_map = {}


def set_samplers():
    global samplers, samplers_for_img2img
    hidden = set(shared.opts.hide_samplers)
    samplers = [x for x in all_samplers if x.name not in hidden]
    samplers_for_img2img = [x for x in all_samplers if x.name not in hidden]
    samplers_map.clear()
    for sampler in all_samplers:
        samplers_map[sampler.name.lower()] = sampler.name
        for alias in sampler.aliases:
            samplers_map[alias.lower()] = sampler.name


def find_sampler_config(name):
    return all_samplers_map.get(name, None) if name is not None else all_samplers[0]


def create_sampler(name, model):
    config = find_sampler_config(name)
    assert config is not None, f"bad sampler name: {name}"
    sampler = config.constructor(model)
    sampler.config = config
    return sampler


@functools.cache
def get_sampler_and_scheduler(sampler_name, scheduler_name, *, convert_automatic=True):
    from modules import sd_schedulers

    default_sampler = samplers[0]
    found_scheduler = sd_schedulers.schedulers_map.get(scheduler_name, sd_schedulers.schedulers[0])
    name = sampler_name or default_sampler.name
    for scheduler in sd_schedulers.schedulers:
        for option in [scheduler.label, scheduler.name, *(scheduler.aliases or [])]:
            if name.endswith(" " + option):
                found_scheduler = scheduler
                name = name[:-(len(option) + 1)]
                break
    sampler = all_samplers_map.get(name, default_sampler)
    if convert_automatic and sampler.options.get("scheduler", None) == found_scheduler.name:
        found_scheduler = sd_schedulers.schedulers[0]
    return sampler.name, found_scheduler.label


def get_sampler_from_infotext(d):
    return get_sampler_and_scheduler(d.get("Sampler"), d.get("Schedule type"))[0]


def get_scheduler_from_infotext(d):
    return get_sampler_and_scheduler(d.get("Sampler"), d.get("Schedule type"))[1]


def fix_p_invalid_sampler_and_scheduler(p):
    p.sampler_name, p.scheduler = get_sampler_and_scheduler(p.sampler_name, p.scheduler, convert_automatic=False)


set_samplers()
