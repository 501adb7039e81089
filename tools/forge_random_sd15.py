"""Write a random-weight SD1.5 checkpoint that Forge loads as SD1.5, built from Forge's own classes.

Run with Forge's Python from Forge's folder (tools/forge_check.py does):
    cd FORGE && VENV/bin/python /path/to/tools/forge_random_sd15.py OUT.safetensors

The UNet is Forge's IntegratedUNet2DConditionModel with huggingface_guess's SD1.5 configuration,
the VAE Forge's IntegratedAutoencoderKL and the text encoder transformers' CLIPTextModel, both from
the configs in backend/huggingface/runwayml/stable-diffusion-v1-5; keys carry the original
checkpoint prefixes (model.diffusion_model., first_stage_model., cond_stage_model.transformer.)
that huggingface_guess recognises. Weights are random (seeded): images are noise, which is all a
check of the plumbing needs. Stored in fp16 (about 2 GB).
"""
import os
import sys

import torch

SD15_CONFIGS = os.path.join("backend", "huggingface", "runwayml", "stable-diffusion-v1-5")
# huggingface_guess's SD1.5 UNet (detection.unet_config_from_diffusers_unet), the values Forge
# would detect from a real SD1.5 checkpoint.
SD15_UNET = {"in_channels": 4, "out_channels": 4, "model_channels": 320, "num_res_blocks": [2, 2, 2, 2],
             "channel_mult": [1, 2, 4, 4], "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
             "transformer_depth_middle": 1, "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
             "use_spatial_transformer": True, "use_linear_in_transformer": False, "context_dim": 768,
             "num_heads": 8, "adm_in_channels": None}


def prefixed(prefix, module):
    return {prefix + key: value.detach().to(torch.float16).contiguous() for key, value in module.state_dict().items()}


def main(out):
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    from backend.nn.unet import IntegratedUNet2DConditionModel
    from backend.nn.vae import IntegratedAutoencoderKL

    torch.manual_seed(0)
    unet = IntegratedUNet2DConditionModel(**SD15_UNET)
    vae = IntegratedAutoencoderKL.from_config(IntegratedAutoencoderKL.load_config(os.path.join(SD15_CONFIGS, "vae")))
    clip = CLIPTextModel(CLIPTextConfig.from_pretrained(os.path.join(SD15_CONFIGS, "text_encoder")))
    tensors = {**prefixed("model.diffusion_model.", unet), **prefixed("first_stage_model.", vae),
               **prefixed("cond_stage_model.transformer.", clip)}
    tensors.pop("cond_stage_model.transformer.text_model.embeddings.position_ids", None)
    save_file(tensors, out + ".part")
    os.replace(out + ".part", out)
    print(f"wrote {out}: {len(tensors)} tensors")


if __name__ == "__main__":
    out = sys.argv[1]
    sys.argv[1:] = ["--always-cpu"]  # read by backend.args when backend.memory_management is imported
    sys.path[:0] = [os.getcwd(), os.path.join(os.getcwd(), "packages_3rdparty")]  # as modules_forge.initialization
    main(out)
