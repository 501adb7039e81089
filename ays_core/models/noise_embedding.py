"""The noise-level embedding every denoiser network of ays_core.models conditions on."""
import math

import torch


def fourier_embedding(c_noise, dim):
    """sin/cos features of the (scalar per sample) noise conditioning, geometric frequencies."""
    freqs = torch.exp(torch.linspace(0.0, math.log(1000.0), dim // 2, device=c_noise.device))
    angles = c_noise[:, None].float() * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)
