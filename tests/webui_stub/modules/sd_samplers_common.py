"""Stand-in for modules/sd_samplers_common.py (A1111 1.6-1.10, Forge dfdcbab6).

Mirrors: `SamplerData(name, constructor, aliases, options)` (a namedtuple subclass) and the
img2img step arithmetic of `setup_img2img_steps(p, steps=None)`:
- normally: steps = p.steps, t_enc = int(min(denoising_strength, 0.999) * steps);
- with opts.img2img_fix_steps, or when a step count is passed (hires fix):
  steps = int(requested / min(denoising_strength, 0.999)), t_enc = requested - 1.
The sampler then uses sigmas[steps - t_enc - 1:] of the `steps`-step schedule.
"""
from collections import namedtuple

from modules.shared import opts

SamplerDataTuple = namedtuple("SamplerData", ["name", "constructor", "aliases", "options"])


class SamplerData(SamplerDataTuple):
    def total_steps(self, steps):
        return steps * 2 if self.options.get("second_order", False) else steps


def setup_img2img_steps(p, steps=None):
    if opts.img2img_fix_steps or steps is not None:
        requested_steps = steps or p.steps
        steps = int(requested_steps / min(p.denoising_strength, 0.999)) if p.denoising_strength > 0 else 0
        t_enc = requested_steps - 1
    else:
        steps = p.steps
        t_enc = int(min(p.denoising_strength, 0.999) * steps)
    return steps, t_enc
