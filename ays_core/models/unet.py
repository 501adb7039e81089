"""A small convolutional UNet conditioned on the noise level: the network F of an EDM denoiser
whose checkpoint config says "arch": "unet" (ays_core.models.digits.EDMDenoiser builds it).

Layout (one resolution level per entry of `channels`): a 3x3 input convolution, per level one
residual block then a stride-2 downsampling (except the last level), one middle block, and the
mirror image going up with the skip of the same level concatenated. The noise level enters every
residual block as a per-channel scale and shift (FiLM). No attention: the images are 16x16.
"""
import math

import torch
from torch import nn

from .noise_embedding import fourier_embedding


def _norm(channels):
    """GroupNorm with up to 8 groups (as many as divide the channels)."""
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ConvBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, FiLM from the noise embedding, GroupNorm -> SiLU -> conv, residual."""

    def __init__(self, in_channels, out_channels, emb_dim):
        super().__init__()
        self.norm1, self.conv1 = _norm(in_channels), nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * out_channels)
        self.norm2, self.conv2 = _norm(out_channels), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x, emb):
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.conv2(nn.functional.silu(self.norm2(h) * (1 + scale) + shift))
        return self.skip(x) + h


class NoiseConditionedUNet(nn.Module):
    """F(c_in * x, c_noise) of EDM for images [batch, C, H, W] (H, W divisible by 2^(levels-1))."""

    def __init__(self, data_shape, channels, emb_dim):
        super().__init__()
        image_channels = data_shape[0]
        self.emb_dim = emb_dim
        self.embed = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim), nn.SiLU())
        self.inp = nn.Conv2d(image_channels, channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        previous = channels[0]
        for level, width in enumerate(channels):
            self.down.append(ConvBlock(previous, width, emb_dim))
            previous = width
            if level < len(channels) - 1:
                self.downsample.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
        self.middle = ConvBlock(previous, previous, emb_dim)
        self.up = nn.ModuleList()
        for width in reversed(channels):
            self.up.append(ConvBlock(previous + width, width, emb_dim))
            previous = width
        self.out = nn.Sequential(_norm(previous), nn.SiLU(), nn.Conv2d(previous, image_channels, 3, padding=1))

    def forward(self, x, c_noise):
        emb = self.embed(fourier_embedding(c_noise, self.emb_dim))
        h = self.inp(x)
        skips = []
        for level, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
        h = self.middle(h, emb)
        for block in self.up:
            skip = skips.pop()
            if h.shape[-1] != skip.shape[-1]:
                h = nn.functional.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = block(torch.cat([h, skip], dim=1), emb)
        return self.out(h)
