"""Stand-in for modules/sd_samplers_kdiffusion.py: the part that turns a scheduler into sigmas.

`KDiffusionSampler.get_sigmas(p, steps)` mirrors A1111 1.10 / Forge dfdcbab6:
- +1 step when the sampler's options (or opts.always_discard_next_to_last_sigma) discard the
  penultimate sigma, which is then cut out of the result;
- the scheduler is `(p.hr_scheduler if p.is_hr_pass else p.scheduler) or 'Automatic'`, Automatic
  meaning the sampler's own options['scheduler'], looked up in sd_schedulers.schedulers_map
  (a missing name silently gives the model's default sigmas);
- p.sampler_noise_scheduler_override wins over everything;
- the function is called with keywords only: n, sigma_min, sigma_max (the model range, or
  opts.sigma_min/opts.sigma_max when set and different), rho (only when default_rho != -1 and
  opts.rho is set and differs), inner_model (only when need_inner_model), device=cpu;
- p.extra_generation_params gets "Schedule type" (or "Hires schedule type" for a different
  hires scheduler).
`LegacyKDiffusionSampler.get_sigmas` mirrors A1111 1.3-1.8 (before sd_schedulers existed): the
override, then options['scheduler'] == 'karras', then the model's default sigmas (1.5-1.8 also
consult a global opts.k_sched_type, left out here: the extension's entries replace get_sigmas).
`sample` / `sample_img2img` mirror how the sigmas are used (the img2img tail
sigmas[steps - t_enc - 1:]) and record them in `used_sigmas` instead of running a model.

`ModelWrap` mirrors k_diffusion.external.DiscreteSchedule for a CompVis model: an ascending
`sigmas` table from alphas_cumprod and `get_sigmas(n)` (n timesteps evenly spaced from the last
to the first, log-sigma interpolated, then 0).
"""
import math

import torch

from modules import sd_samplers_common, shared
from modules.shared import opts

samplers_k_diffusion = [
    ("DPM++ 2M", "sample_dpmpp_2m", ["k_dpmpp_2m"], {"scheduler": "karras"}),
    ("DPM++ SDE", "sample_dpmpp_sde", ["k_dpmpp_sde"], {"scheduler": "karras", "second_order": True, "brownian_noise": True}),
    ("DPM++ 2M SDE", "sample_dpmpp_2m_sde", ["k_dpmpp_2m_sde"], {"scheduler": "exponential", "brownian_noise": True}),
    ("Euler a", "sample_euler_ancestral", ["k_euler_a", "k_euler_ancestral"], {"uses_ensd": True}),
    ("Euler", "sample_euler", ["k_euler"], {}),
    ("Heun", "sample_heun", ["k_heun"], {"second_order": True}),
    ("DPM2", "sample_dpm_2", ["k_dpm_2"], {"scheduler": "karras", "discard_next_to_last_sigma": True, "second_order": True}),
]


def get_sigmas_karras(n, sigma_min, sigma_max, rho=7.0, device="cpu"):
    """Stands in for k_diffusion.sampling.get_sigmas_karras."""
    ramp = torch.linspace(0, 1, n)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros([1])]).to(device)


def get_sigmas_exponential(n, sigma_min, sigma_max, device="cpu"):
    """Stands in for k_diffusion.sampling.get_sigmas_exponential."""
    sigmas = torch.linspace(math.log(sigma_max), math.log(sigma_min), n).exp()
    return torch.cat([sigmas, sigmas.new_zeros([1])]).to(device)


class ModelWrap:
    def __init__(self, sd_model):
        forge_objects = getattr(sd_model, "forge_objects", None)
        if forge_objects is not None:  # Forge: ForgeScheduleLinker(forge_objects.unet.model.predictor)
            self.sigmas = forge_objects.unet.model.predictor.sigmas.float()
        else:
            alphas_cumprod = sd_model.alphas_cumprod.double()
            self.sigmas = ((1 - alphas_cumprod) / alphas_cumprod).sqrt().float()
        self.log_sigmas = self.sigmas.log()
        self.inner_model = sd_model

    def t_to_sigma(self, t):
        low = t.floor().long()
        high = t.ceil().long()
        weight = t.frac()
        return ((1 - weight) * self.log_sigmas[low] + weight * self.log_sigmas[high]).exp()

    def get_sigmas(self, n):
        t = torch.linspace(len(self.sigmas) - 1, 0, n)
        return torch.cat([self.t_to_sigma(t), torch.zeros(1)])


class KDiffusionSampler:
    def __init__(self, funcname, sd_model):
        self.funcname = funcname
        self.model_wrap = ModelWrap(sd_model)
        self.config = None  # set by sd_samplers.create_sampler
        self.used_sigmas = None

    def discards_penultimate_sigma(self, p):
        discard = self.config is not None and self.config.options.get("discard_next_to_last_sigma", False)
        if opts.always_discard_next_to_last_sigma and not discard:
            p.extra_generation_params["Discard penultimate sigma"] = True
            return True
        return discard

    def get_sigmas(self, p, steps):
        from modules import sd_schedulers

        discard = self.discards_penultimate_sigma(p)
        steps += 1 if discard else 0

        scheduler_name = (p.hr_scheduler if p.is_hr_pass else p.scheduler) or "Automatic"
        if scheduler_name == "Automatic":
            scheduler_name = self.config.options.get("scheduler", None)
        scheduler = sd_schedulers.schedulers_map.get(scheduler_name)

        m_sigma_min, m_sigma_max = self.model_wrap.sigmas[0].item(), self.model_wrap.sigmas[-1].item()
        sigma_min, sigma_max = (0.1, 10) if opts.use_old_karras_scheduler_sigmas else (m_sigma_min, m_sigma_max)

        if p.sampler_noise_scheduler_override:
            sigmas = p.sampler_noise_scheduler_override(steps)
        elif scheduler is None or scheduler.function is None:
            sigmas = self.model_wrap.get_sigmas(steps)
        else:
            kwargs = {"sigma_min": sigma_min, "sigma_max": sigma_max}
            if scheduler.label != "Automatic" and not p.is_hr_pass:
                p.extra_generation_params["Schedule type"] = scheduler.label
            elif scheduler.label != p.extra_generation_params.get("Schedule type"):
                p.extra_generation_params["Hires schedule type"] = scheduler.label
            if opts.sigma_min != 0 and opts.sigma_min != m_sigma_min:
                kwargs["sigma_min"] = opts.sigma_min
                p.extra_generation_params["Schedule min sigma"] = opts.sigma_min
            if opts.sigma_max != 0 and opts.sigma_max != m_sigma_max:
                kwargs["sigma_max"] = opts.sigma_max
                p.extra_generation_params["Schedule max sigma"] = opts.sigma_max
            if scheduler.default_rho != -1 and opts.rho != 0 and opts.rho != scheduler.default_rho:
                kwargs["rho"] = opts.rho
                p.extra_generation_params["Schedule rho"] = opts.rho
            if scheduler.need_inner_model:
                kwargs["inner_model"] = self.model_wrap
            sigmas = scheduler.function(n=steps, **kwargs, device=torch.device("cpu"))

        if discard:
            sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
        return sigmas.cpu()

    def sample(self, p, x=None, conditioning=None, unconditional_conditioning=None, steps=None, image_conditioning=None):
        steps = steps or p.steps
        self.used_sigmas = self.get_sigmas(p, steps)
        return self.used_sigmas

    def sample_img2img(self, p, x=None, noise=None, conditioning=None, unconditional_conditioning=None, steps=None, image_conditioning=None):
        steps, t_enc = sd_samplers_common.setup_img2img_steps(p, steps)
        sigmas = self.get_sigmas(p, steps)
        self.used_sigmas = sigmas[steps - t_enc - 1:]
        return self.used_sigmas


class LegacyKDiffusionSampler(KDiffusionSampler):
    def get_sigmas(self, p, steps):
        discard = self.discards_penultimate_sigma(p)
        steps += 1 if discard else 0
        if p.sampler_noise_scheduler_override:
            sigmas = p.sampler_noise_scheduler_override(steps)
        elif self.config is not None and self.config.options.get("scheduler", None) == "karras":
            sigma_min, sigma_max = self.model_wrap.sigmas[0].item(), self.model_wrap.sigmas[-1].item()
            sigmas = get_sigmas_karras(n=steps, sigma_min=sigma_min, sigma_max=sigma_max, device=shared.device)
        else:
            sigmas = self.model_wrap.get_sigmas(steps)
        if discard:
            sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
        return sigmas


# Which KDiffusionSampler the sampler table constructs: tests of the pre-1.9 path swap in
# LegacyKDiffusionSampler (see tests/webui_stub/__init__.py).
sampler_class = KDiffusionSampler

samplers_data_k_diffusion = [
    sd_samplers_common.SamplerData(label, lambda model, funcname=funcname: sampler_class(funcname, model), aliases, options)
    for label, funcname, aliases, options in samplers_k_diffusion
]
