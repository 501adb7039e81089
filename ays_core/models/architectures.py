"""Published UNet architectures of the Stable Diffusion families, as diffusers UNet2DConditionModel
configs, for what needs the shape of a real model but none of its weights: `ays optimize --dry-run
--model arch:sd15` (built on the meta device) and benchmarks/time_unet.py (random weights).

Each entry: the UNet config, the latent resolution it is trained at, the text context length and
width, the pooled text width (SDXL only) and the registry family and prediction.
"""
from dataclasses import dataclass, field

from ..errors import AYSError


@dataclass(frozen=True)
class Architecture:
    name: str
    family: str
    prediction: str
    unet: dict = field(repr=False)
    pixels: int = 512                 # native image side; latents are pixels / 8
    context_length: int = 77
    pooled_width: int = 0             # SDXL's pooled text embedding (text_embeds)
    other_parameters: int = 0         # text encoder(s) + VAE, held in memory beside the UNet

    @classmethod
    def from_unet_config(cls, config, family, prediction, pixels=None):
        """The shape of a diffusers UNet from its config.json (for a dry run without weights)."""
        pooled = 0
        if config.get("addition_embed_type") == "text_time":
            pooled = config["projection_class_embeddings_input_dim"] - 6 * config["addition_time_embed_dim"]
        return cls("custom", family, prediction, dict(config), pixels=pixels or config.get("sample_size", 64) * 8,
                   pooled_width=pooled)

    @property
    def latent_shape(self):
        return (self.unet.get("in_channels", 4), self.pixels // 8, self.pixels // 8)

    @property
    def context_width(self):
        return self.unet["cross_attention_dim"]


CLIP_L, OPENCLIP_H, OPENCLIP_BIGG, SD_VAE = 123_060_480, 340_387_840, 694_659_840, 83_653_863

ARCHITECTURES = {
    "sd15": Architecture("sd15", "sd15", "eps", {
        "sample_size": 64, "cross_attention_dim": 768, "attention_head_dim": 8},
        other_parameters=CLIP_L + SD_VAE),
    "sd2": Architecture("sd2", "sd2-v", "v", {
        "sample_size": 96, "cross_attention_dim": 1024, "attention_head_dim": [5, 10, 20, 20],
        "use_linear_projection": True}, pixels=768, other_parameters=OPENCLIP_H + SD_VAE),
    "sdxl": Architecture("sdxl", "sdxl", "eps", {
        "sample_size": 128, "block_out_channels": [320, 640, 1280],
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "transformer_layers_per_block": [1, 2, 10], "attention_head_dim": [5, 10, 20],
        "cross_attention_dim": 2048, "use_linear_projection": True, "addition_embed_type": "text_time",
        "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": 2816},
        pixels=1024, pooled_width=1280, other_parameters=CLIP_L + OPENCLIP_BIGG + SD_VAE),
}


def architecture(name):
    if name not in ARCHITECTURES:
        raise AYSError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[name]


def build_unet(arch, device="meta", dtype=None):
    """A UNet2DConditionModel of this architecture with random (or, on meta, no) weights."""
    import torch

    from .diffusers_adapter import require_diffusers

    diffusers = require_diffusers()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype or torch.float32)  # built in that dtype: no cast afterwards
    try:
        with torch.device(device):
            unet = diffusers.UNet2DConditionModel.from_config(arch.unet)
    finally:
        torch.set_default_dtype(previous)
    return unet.eval()


def example_inputs(arch, rows, device="meta", dtype=None):
    """(args, kwargs) of one UNet forward over `rows` latents at the native resolution."""
    import torch

    dtype = dtype or torch.float32
    x = torch.randn(rows, *arch.latent_shape, device=device, dtype=dtype)
    t = torch.full((rows,), 500, device=device, dtype=torch.long)
    kwargs = {"encoder_hidden_states": torch.randn(rows, arch.context_length, arch.context_width,
                                                   device=device, dtype=dtype)}
    if arch.pooled_width:
        kwargs["added_cond_kwargs"] = {
            "text_embeds": torch.randn(rows, arch.pooled_width, device=device, dtype=dtype),
            "time_ids": torch.tensor([[arch.pixels, arch.pixels, 0, 0, arch.pixels, arch.pixels]] * rows,
                                     device=device, dtype=dtype)}
    return (x, t), kwargs
