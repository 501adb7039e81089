"""diffusers models for `ays optimize --model diffusers:PATH` (optional extra: pip install 'ays[diffusers]').

PATH is one of
- a pipeline folder (model_index.json with unet/, scheduler/, and usually vae/, text_encoder/,
  tokenizer/, for SDXL also text_encoder_2/, tokenizer_2/),
- a UNet folder (config.json of a UNet2DConditionModel) with its scheduler config given as
  ?scheduler=DIR or found beside it (DIR/../scheduler or scheduler_config.json in the folder),
- a single-file checkpoint (.safetensors/.ckpt) that diffusers can load offline: pass
  ?config=DIR, a pipeline folder of the same architecture (configs and tokenizers are enough).

Everything is read with local_files_only: nothing is downloaded. The parts are put behind the
CompVis interface (`DiffusersLatentModel`) and driven by ldm.LatentDiffusionDenoiser, so diffusers
and WebUI checkpoints go through the same k-diffusion wrappers.

Options after '?': dtype=fp16|bf16|fp32 (default fp16 on CUDA, fp32 elsewhere), sha256=HEX (the
registry key; default: sha256 of the checkpoint file, or of the UNet weights file of a folder),
config=DIR, scheduler=DIR. Guidance scale, negative prompt and resolution are `ays optimize` flags.
"""
import hashlib
import json
import re
from pathlib import Path

import torch

from ..errors import AYSError
from ..fileio import file_sha256
from .ldm import LatentDiffusionDenoiser

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
PREDICTION_TYPES = {"epsilon": "eps", "v_prediction": "v"}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")
SHA256_PATTERN = re.compile(r"\A[0-9a-fA-F]{64}\Z")


def require_diffusers():
    """The diffusers module, or AYSError telling how to install the optional extra."""
    try:
        import diffusers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise AYSError("diffusers models need the optional extra: pip install 'ays[diffusers]'") from None
    return diffusers


class DiffusersLatentModel:
    """A diffusers UNet (+ VAE, text encoders) with the CompVis LatentDiffusion interface."""

    def __init__(self, unet, scheduler_config, vae=None, text_encoders=(), tokenizers=(), resolution=None):
        diffusers = require_diffusers()
        prediction_type = scheduler_config.get("prediction_type", "epsilon")
        if prediction_type not in PREDICTION_TYPES:
            raise AYSError(f"scheduler prediction_type {prediction_type!r} is not supported "
                           f"(AYS handles {', '.join(PREDICTION_TYPES)})")
        scheduler = diffusers.DDPMScheduler.from_config(scheduler_config)
        self.unet, self.vae = unet, vae
        self.text_encoders, self.tokenizers = list(text_encoders), list(tokenizers)
        self.parameterization = PREDICTION_TYPES[prediction_type]
        self.alphas_cumprod = scheduler.alphas_cumprod.float().to(unet.device)
        self.is_xl = unet.config.get("addition_embed_type") == "text_time"
        self.vae_scale = 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 8
        self.scale_factor = vae.config.scaling_factor if vae is not None else 0.18215
        self.resolution = int(resolution or unet.config.sample_size * self.vae_scale)

    @property
    def dtype(self):
        return self.unet.dtype

    @property
    def device(self):
        return self.unet.device

    def parameters(self):
        """Every weight held in memory (UNet first, so its dtype is the model's dtype)."""
        for module in (self.unet, self.vae, *self.text_encoders):
            if module is not None:
                yield from module.parameters()

    @property
    def latent_shape(self):
        size = self.resolution // self.vae_scale
        return (self.unet.config.in_channels, size, size)

    def apply_model(self, x, t, cond):
        extra = {}
        if self.is_xl:
            extra["added_cond_kwargs"] = {"text_embeds": cond["pooled"].to(self.dtype),
                                          "time_ids": cond["time_ids"].to(self.dtype)}
        out = self.unet(x.to(self.dtype), t, encoder_hidden_states=cond["crossattn"].to(self.dtype), **extra)
        return out.sample.float()

    def get_learned_conditioning(self, prompts):
        """{'crossattn': [P, L, D]} (+ 'pooled', 'time_ids' for SDXL), as the pipelines encode them."""
        prompts = list(prompts)
        if not self.text_encoders:
            if any(prompts):
                raise AYSError("this model has no text encoder: prompts cannot be used (use '' or a pipeline folder)")
            width = self.unet.config.cross_attention_dim
            return {"crossattn": torch.zeros(len(prompts), 77, width, device=self.device, dtype=self.dtype)}
        contexts, pooled = [], None
        for encoder, tokenizer in zip(self.text_encoders, self.tokenizers):
            ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                            truncation=True, return_tensors="pt").input_ids.to(encoder.device)
            with torch.no_grad():
                out = encoder(ids, output_hidden_states=self.is_xl)
            # SDXL conditions on the penultimate layer of both encoders; SD1/SD2 on the last.
            contexts.append(out.hidden_states[-2] if self.is_xl else out.last_hidden_state)
            pooled = getattr(out, "text_embeds", None)
        cond = {"crossattn": torch.cat(contexts, dim=-1).to(self.dtype)}
        if self.is_xl:
            if pooled is None:
                raise AYSError("an SDXL model needs text_encoder_2 with a projection (CLIPTextModelWithProjection)")
            size = self.resolution
            cond["pooled"] = pooled.to(self.dtype)
            # original size, crop offset, target size: an uncropped square image at the native size
            cond["time_ids"] = torch.tensor([[size, size, 0, 0, size, size]] * len(prompts), device=self.device)
        return cond

    def encode_first_stage(self, images):
        if self.vae is None:
            raise AYSError("this model has no VAE: images cannot be encoded (use a pipeline folder or prompts)")
        with torch.no_grad():
            return self.vae.encode(images.to(self.vae.device, self.vae.dtype)).latent_dist

    def get_first_stage_encoding(self, distribution):
        # The mean, not a draw: the same image always gives the same cached latent.
        return distribution.mode().float() * self.scale_factor


# ---------------------------------------------------------------- loading

def check_sha256(value):
    if not SHA256_PATTERN.match(str(value)):
        raise AYSError(f"sha256 must be 64 hex digits, got {value!r}")
    return str(value).lower()


def weights_sha256(folder):
    """The registry key of a diffusers UNet folder: the sha256 of the weights file diffusers loads
    (diffusion_pytorch_model.safetensors, else .bin), or for sharded weights the sha256 of the
    shards' sha256s in name order."""
    folder = Path(folder)
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"):
        if (folder / name).is_file():
            return file_sha256(folder / name)
    shards = sorted(p for p in folder.glob("diffusion_pytorch_model-*") if p.suffix in WEIGHT_SUFFIXES)
    if not shards:
        raise AYSError(f"{folder} holds no diffusion_pytorch_model weights")
    return hashlib.sha256("".join(file_sha256(p) for p in shards).encode()).hexdigest()


def read_config(path, what):
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AYSError(f"{what}: {path} is missing") from None
    except (OSError, ValueError) as exc:
        raise AYSError(f"{what}: cannot read {path} ({exc})") from None
    if not isinstance(config, dict):
        raise AYSError(f"{what}: {path} is not a JSON object")
    return config


def scheduler_config_near(unet_folder, explicit=None):
    """The scheduler config for a bare UNet folder: ?scheduler=DIR, ../scheduler, or beside it."""
    candidates = [Path(explicit) / "scheduler_config.json"] if explicit else [
        Path(unet_folder).parent / "scheduler" / "scheduler_config.json",
        Path(unet_folder) / "scheduler_config.json"]
    for candidate in candidates:
        if candidate.is_file():
            return read_config(candidate, "scheduler")
    raise AYSError(f"no scheduler config for {unet_folder}: pass ?scheduler=DIR (a folder with scheduler_config.json)")


def _load(component_class, folder, dtype, device, subfolder=None):
    try:
        model = component_class.from_pretrained(str(folder), subfolder=subfolder, torch_dtype=dtype,
                                                local_files_only=True)
    except (OSError, ValueError) as exc:
        where = f"{folder}/{subfolder}" if subfolder else str(folder)
        raise AYSError(f"cannot load {component_class.__name__} from {where}: {str(exc).splitlines()[0]}") from None
    return model.to(device).eval() if hasattr(model, "to") else model


def load_pipeline_folder(folder, dtype, device):
    diffusers = require_diffusers()
    import transformers

    read_config(Path(folder) / "model_index.json", "pipeline")
    parts = {name: (Path(folder) / name).is_dir() for name in
             ("unet", "vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "scheduler")}
    if not parts["unet"] or not parts["scheduler"]:
        raise AYSError(f"pipeline folder {folder} needs unet/ and scheduler/ subfolders")
    unet = _load(diffusers.UNet2DConditionModel, folder, dtype, device, "unet")
    vae = _load(diffusers.AutoencoderKL, folder, dtype, device, "vae") if parts["vae"] else None
    encoders, tokenizers = [], []
    for suffix, encoder_class in (("", transformers.CLIPTextModel), ("_2", transformers.CLIPTextModelWithProjection)):
        if parts[f"text_encoder{suffix}"] and parts[f"tokenizer{suffix}"]:
            encoders.append(_load(encoder_class, folder, dtype, device, f"text_encoder{suffix}"))
            tokenizers.append(_load(transformers.CLIPTokenizer, folder, None, device, f"tokenizer{suffix}"))
    scheduler = read_config(Path(folder) / "scheduler" / "scheduler_config.json", "scheduler")
    return DiffusersLatentModel(unet, scheduler, vae, encoders, tokenizers)


def load_unet_folder(folder, dtype, device, scheduler_dir=None):
    diffusers = require_diffusers()
    unet = _load(diffusers.UNet2DConditionModel, folder, dtype, device)
    return DiffusersLatentModel(unet, scheduler_config_near(folder, scheduler_dir))


def load_single_file(path, dtype, device, config_dir=None):
    diffusers = require_diffusers()
    pipeline_class = diffusers.StableDiffusionPipeline
    if config_dir:
        index = read_config(Path(config_dir) / "model_index.json", "config")
        pipeline_class = getattr(diffusers, str(index.get("_class_name")), None)
        if pipeline_class is None or not hasattr(pipeline_class, "from_single_file"):
            raise AYSError(f"{config_dir}: pipeline class {index.get('_class_name')!r} cannot load single files")
    try:
        pipe = pipeline_class.from_single_file(str(path), config=str(config_dir) if config_dir else None,
                                               torch_dtype=dtype, local_files_only=True)
    except Exception as exc:  # diffusers raises many types here; all mean "cannot load offline"
        raise AYSError(f"diffusers cannot load {path} offline ({str(exc).splitlines()[0][:200]}); "
                       "pass ?config=DIR with a pipeline folder of the same architecture") from None
    encoders = [e.to(device).eval() for e in (pipe.text_encoder, getattr(pipe, "text_encoder_2", None)) if e is not None]
    tokenizers = [t for t in (pipe.tokenizer, getattr(pipe, "tokenizer_2", None)) if t is not None]
    return DiffusersLatentModel(pipe.unet.to(device).eval(), dict(pipe.scheduler.config), pipe.vae.to(device).eval(),
                                encoders, tokenizers)


def load_latent_model(path, dtype, device, config_dir=None, scheduler_dir=None):
    """(DiffusersLatentModel, checkpoint sha256, display name) for a path as described above."""
    path = Path(path).expanduser()
    if path.is_file():
        if path.suffix not in WEIGHT_SUFFIXES:
            raise AYSError(f"{path} is not a checkpoint file ({', '.join(WEIGHT_SUFFIXES)}) or a diffusers folder")
        model = load_single_file(path, dtype, device, config_dir)
        return model, file_sha256(path), path.stem
    if (path / "model_index.json").is_file():
        return load_pipeline_folder(path, dtype, device), weights_sha256(path / "unet"), path.name
    if (path / "config.json").is_file():
        model = load_unet_folder(path, dtype, device, scheduler_dir)
        return model, weights_sha256(path), path.name
    if not path.exists():
        raise AYSError(f"diffusers model {path}: no such file or folder")
    raise AYSError(f"{path} is not a diffusers pipeline folder (model_index.json), UNet folder (config.json) "
                   "or checkpoint file")


def pick_dtype(name, device):
    if name is None:
        return torch.float16 if torch.device(device).type == "cuda" else torch.float32
    if name not in DTYPES:
        raise AYSError(f"dtype must be one of {', '.join(DTYPES)}, got {name!r}")
    return DTYPES[name]


def load_diffusers_denoiser(path, options, device=None):
    """The guided denoiser for `diffusers:PATH?options` (options are consumed from the dict)."""
    device = torch.device(device or "cpu")
    dtype = pick_dtype(options.pop("dtype", None), device)
    sha256 = options.pop("sha256", None)
    if sha256:
        sha256 = check_sha256(sha256)
    model, file_hash, name = load_latent_model(path, dtype, device, options.pop("config", None),
                                               options.pop("scheduler", None))
    denoiser = LatentDiffusionDenoiser(model, info={"sha256": sha256 or file_hash, "name": name[:256]})
    denoiser.data_shape = model.latent_shape
    return denoiser
