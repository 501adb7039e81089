"""Stand-in for modules/sd_schedulers.py (A1111 1.9/1.10; Forge dfdcbab6 has the same API).

Mirrors: the `Scheduler(name, label, function, default_rho=-1, need_inner_model=False,
aliases=None)` dataclass, the module list `schedulers` and the dict `schedulers_map` keyed by
name AND label, built once at import. The built-in "Align Your Steps" is reproduced by behaviour
(SDXL list when shared.sd_model.is_sdxl, else the SD1.5 list; N points log-linearly, then 0) so
tests can check the extension leaves it alone. Only a few built-ins are included.
"""
import dataclasses

import numpy as np
import torch

from modules import shared
from modules.sd_samplers_kdiffusion import get_sigmas_exponential, get_sigmas_karras

BUILTIN_AYS_SD15 = [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029]
BUILTIN_AYS_SDXL = [14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029]


@dataclasses.dataclass
class Scheduler:
    name: str
    label: str
    function: object

    default_rho: float = -1
    need_inner_model: bool = False
    aliases: list = None


def builtin_align_your_steps(n, sigma_min, sigma_max, device):
    stored = BUILTIN_AYS_SDXL if shared.sd_model.is_sdxl else BUILTIN_AYS_SD15
    if n == len(stored):
        values = list(stored)
    else:
        positions = np.linspace(0, 1, len(stored))
        logs = np.interp(np.linspace(0, 1, n), positions, np.log(stored[::-1]))
        values = list(np.exp(logs)[::-1])
    return torch.FloatTensor(values + [0.0]).to(device)


def uniform(n, sigma_min, sigma_max, inner_model, device):
    return inner_model.get_sigmas(n).to(device)


schedulers = [
    Scheduler("automatic", "Automatic", None),
    Scheduler("uniform", "Uniform", uniform, need_inner_model=True),
    Scheduler("karras", "Karras", get_sigmas_karras, default_rho=7.0),
    Scheduler("exponential", "Exponential", get_sigmas_exponential),
    Scheduler("align_your_steps", "Align Your Steps", builtin_align_your_steps),
]

schedulers_map = {**{x.name: x for x in schedulers}, **{x.label: x for x in schedulers}}
