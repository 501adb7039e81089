"""Tiny latent diffusion models built here from a config (no download), for the tests of the
optimizer's model adapters, data sources and WebUI tab.

- `build_tiny_pipeline(folder)`: a diffusers pipeline folder (UNet2DConditionModel, AutoencoderKL,
  CLIP text encoder + a byte-level tokenizer, DDPM scheduler config) with random weights.
- `TinyCompVisModel`: a model with the CompVis LatentDiffusion interface the WebUI's samplers use
  (alphas_cumprod, parameterization, apply_model, get_learned_conditioning, encode_first_stage,
  get_first_stage_encoding), standing in for the WebUI's loaded shared.sd_model.
"""
import json
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ays_core.baselines import vp_sigma_table

CONTEXT_DIM = 16


def _byte_vocabulary():
    """A CLIP-style vocabulary with no merges: every byte (as GPT-2's printable stand-in) alone
    and word-final, plus the start and end tokens."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            chars.append(256 + extra)
            extra += 1
    symbols = [chr(c) for c in chars]
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(tokens)}


def build_tiny_pipeline(folder, prediction_type="epsilon", seed=0, xl=False):
    """Write a tiny SD-style diffusers pipeline (random weights) to `folder`; returns its Path.
    xl=True: SDXL's layout (two text encoders, the second with a projection; size conditioning)."""
    import transformers
    from diffusers import AutoencoderKL, UNet2DConditionModel

    folder = Path(folder)
    torch.manual_seed(seed)
    xl_options = {"addition_embed_type": "text_time", "addition_time_embed_dim": 4,
                  "projection_class_embeddings_input_dim": 8 + 6 * 4} if xl else {}
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=CONTEXT_DIM * (2 if xl else 1), attention_head_dim=2, norm_num_groups=4, **xl_options)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(4, 8), latent_channels=4,
                        norm_num_groups=4, sample_size=16, layers_per_block=1)
    vocab = _byte_vocabulary()
    text_config = transformers.CLIPTextConfig(vocab_size=len(vocab), hidden_size=CONTEXT_DIM, intermediate_size=32,
                                              num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77,
                                              bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                                              pad_token_id=vocab["<|endoftext|>"])
    unet.save_pretrained(folder / "unet")
    vae.save_pretrained(folder / "vae")
    transformers.CLIPTextModel(text_config).save_pretrained(folder / "text_encoder")
    _write_tokenizer(folder / "tokenizer", vocab)
    if xl:
        text_config.projection_dim = 8
        transformers.CLIPTextModelWithProjection(text_config).save_pretrained(folder / "text_encoder_2")
        _write_tokenizer(folder / "tokenizer_2", vocab)
    (folder / "scheduler").mkdir(exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps({
        "_class_name": "PNDMScheduler", "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
        "num_train_timesteps": 1000, "prediction_type": prediction_type, "set_alpha_to_one": False,
        "steps_offset": 1, "skip_prk_steps": True}))
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionXLPipeline" if xl else "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "scheduler": ["diffusers", "PNDMScheduler"]}))
    return folder


def _write_tokenizer(folder, vocab):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "model_max_length": 77, "tokenizer_class": "CLIPTokenizer", "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}))


class TinyCompVisModel(nn.Module):
    """A small eps- (or v-) prediction latent model with the CompVis interface, as the WebUI loads it.

    Conditioning is a [P, 4, CONTEXT_DIM] tensor from a hashed character embedding; the "VAE"
    is an 8x average pool to 4 channels scaled by scale_factor."""

    def __init__(self, parameterization="eps", seed=0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.parameterization = parameterization
        sigmas = torch.from_numpy(vp_sigma_table())
        self.register_buffer("alphas_cumprod", (1.0 / (1.0 + sigmas ** 2)).float())
        self.scale_factor = 0.18215
        self.embedding = nn.Embedding(64, CONTEXT_DIM)
        self.inp = nn.Conv2d(4, 8, 3, padding=1)
        self.time = nn.Linear(1, 8)
        self.context = nn.Linear(CONTEXT_DIM, 8)
        self.out = nn.Conv2d(8, 4, 3, padding=1)
        for parameter in self.parameters():
            parameter.data = 0.3 * torch.randn(parameter.shape, generator=generator)
        self.calls = 0

    def get_learned_conditioning(self, prompts):
        ids = torch.tensor([[ord(ch) % 64 for ch in (p + "    ")[:4]] for p in prompts])
        return self.embedding(ids.to(self.alphas_cumprod.device))

    def apply_model(self, x, t, cond):
        self.calls += len(x)
        h = self.inp(x) + self.time((t.float() / 1000)[:, None])[:, :, None, None]
        h = h + self.context(cond.mean(1))[:, :, None, None]
        return self.out(torch.tanh(h))

    def encode_first_stage(self, images):
        pooled = nn.functional.avg_pool2d(images, 8)
        return torch.cat([pooled, pooled.mean(1, keepdim=True)], dim=1)

    def get_first_stage_encoding(self, encoded):
        return encoded * self.scale_factor * 5


class ForgeStylePredictor(nn.Module):
    """Forge's backend/modules/k_prediction.Prediction as the extension reads it: the ascending
    noise table `sigmas`, `prediction_type`, and sigma -> nearest training timestep."""

    def __init__(self, alphas_cumprod, prediction_type="epsilon"):
        super().__init__()
        self.prediction_type = prediction_type
        sigmas = ((1 - alphas_cumprod.double()) / alphas_cumprod.double()).sqrt()
        self.register_buffer("sigmas", sigmas.float())
        self.register_buffer("log_sigmas", sigmas.log().float())

    def timestep(self, sigma):
        return (sigma.log()[None, :] - self.log_sigmas[:, None]).abs().argmin(dim=0).view(sigma.shape)


class ForgeStyleUNetModel(nn.Module):
    """Forge's backend/modules/k_model.KModel around a CompVis-style network: apply_model takes
    k-diffusion sigmas (x = x0 + sigma * eps) and returns x0, scaling the input and quantizing the
    timestep with its predictor, as Forge's samplers call it."""

    def __init__(self, network, prediction_type="epsilon"):
        super().__init__()
        self.diffusion_model = network
        self.predictor = ForgeStylePredictor(network.alphas_cumprod, prediction_type)
        self.crossattn_seen = []

    def apply_model(self, x, t, c_crossattn=None, **extra):
        sigma = t.view(-1, 1, 1, 1)
        self.crossattn_seen.append(c_crossattn.shape)
        out = self.diffusion_model.apply_model(x / (sigma ** 2 + 1) ** 0.5, self.predictor.timestep(t).float(), c_crossattn)
        if self.predictor.prediction_type == "v_prediction":
            return x / (sigma ** 2 + 1) - out * sigma / (sigma ** 2 + 1) ** 0.5
        return x - out * sigma


def forge_style_engine(network=None, prediction_type="epsilon"):
    """Forge's loaded SD1.5 engine (backend/diffusion_engine/sd15.py) as the extension sees it:
    forge_objects.unet.model (the UNet model above), get_learned_conditioning, encode_first_stage
    (latents already scaled), first_stage_model None, the legacy is_sd* flags, and no
    alphas_cumprod / apply_model / parameterization of its own."""
    network = network or TinyCompVisModel()
    unet_patcher = types.SimpleNamespace(model=ForgeStyleUNetModel(network, prediction_type))
    engine = types.SimpleNamespace(
        forge_objects=types.SimpleNamespace(unet=unet_patcher), first_stage_model=None,
        is_sd1=True, is_sd2=False, is_sdxl=False, is_sd3=False,
        get_learned_conditioning=network.get_learned_conditioning,
        encode_first_stage=lambda images: network.get_first_stage_encoding(network.encode_first_stage(images)),
        get_first_stage_encoding=lambda latents: latents)
    return engine


def write_images(folder, count, size=16, captions=True, seed=0):
    """`count` small random PNG images (and caption .txt files) in `folder`."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 256, (size, size + 4 * i, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
        if captions:
            (folder / f"img{i}.txt").write_text(f"a photo number {i}\n")
    return folder
