"""Latent diffusion checkpoints (SD 1.x, 2.x, XL) behind the denoiser contract, as the WebUI runs them.

The model is anything with the CompVis LatentDiffusion interface the WebUI's samplers use:
`alphas_cumprod` (one per training timestep), `parameterization` ("eps" or "v"),
`apply_model(x, t, cond)` and `get_learned_conditioning(prompts)`. AUTOMATIC1111's loaded
`shared.sd_model` has it; `diffusers_adapter.DiffusersLatentModel` gives a diffusers pipeline the
same shape. We wrap it with k-diffusion's own external wrappers (CompVisDenoiser for eps,
CompVisVDenoiser for v), so sigmas, timesteps and scalings are exactly the ones the WebUI samples
with, and add classifier-free guidance.

Forge's loaded model (a ForgeDiffusionEngine) has no such interface; its UNet patcher holds a
k-diffusion-style model instead (`forge_objects.unet.model`: `apply_model(x, sigma, c_crossattn=,
y=)` returns x0, `predictor` holds the noise table and the prediction type). ForgeUNet calls that
object itself, the path Forge samples through, with the engine's own text conditioning; nothing is
copied and no Forge module is imported here.

Conditioning: the denoiser holds a bank of encoded prompts; each sample carries the index of its
prompt (`cond_index`, passed by the KLUB estimator alongside x0). Without an index, row i of a
batch uses prompt i mod P, so a plain D(x, sigma) call still gives every row a fixed prompt.
"""
import torch

from ..errors import AYSError
from ..settings import DEFAULT_CFG_SCALE, check_cfg_scale

PREDICTIONS = ("eps", "v")
FORGE_PREDICTIONS = {"epsilon": "eps", "v_prediction": "v"}  # Forge's predictor.prediction_type


def _kdiffusion_external():
    import warnings

    with warnings.catch_warnings():  # k-diffusion's CLIP dependency warns about pkg_resources
        warnings.simplefilter("ignore", UserWarning)
        from k_diffusion import external
    return external


def model_dtype(model):
    """The floating dtype the model's weights are in (float32 when it cannot tell)."""
    dtype = getattr(model, "dtype", None)
    if isinstance(dtype, torch.dtype):
        return dtype
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        for parameter in parameters():
            return parameter.dtype
    return torch.float32


def select_rows(cond, index):
    """Rows `index` of a conditioning: a tensor, or a dict / list of them (SDXL's crossattn + vector)."""
    if isinstance(cond, torch.Tensor):
        return cond[index.to(cond.device)]
    if isinstance(cond, dict):
        return {key: select_rows(value, index) for key, value in cond.items()}
    if isinstance(cond, (list, tuple)):
        return type(cond)(select_rows(value, index) for value in cond)
    raise AYSError(f"unsupported conditioning type {type(cond).__name__} from get_learned_conditioning")


def concat_rows(first, second):
    """Two conditionings stacked along the batch, keeping their structure. Token sequences of
    different lengths (the WebUI encodes long prompts in extra 77-token chunks) are padded first."""
    if isinstance(first, torch.Tensor):
        second = second.to(first.device)
        return torch.cat([pad_tokens(first, second), pad_tokens(second, first)])
    if isinstance(first, dict):
        return {key: concat_rows(first[key], second[key]) for key in first}
    return type(first)(concat_rows(a, b) for a, b in zip(first, second))


def pad_tokens(cond, other, chunk=77):
    """A [B, L, D] conditioning grown to the token length of `other` by repeating its last 77-token
    chunk (as the WebUI pads cond and uncond); anything else passes through."""
    if cond.ndim != 3 or other.ndim != 3 or cond.shape[1] >= other.shape[1]:
        return cond
    tail = cond[:, -min(chunk, cond.shape[1]):]
    repeats = -(-(other.shape[1] - cond.shape[1]) // tail.shape[1])
    return torch.cat([cond, tail.repeat(1, repeats, 1)], dim=1)[:, :other.shape[1]]


def guess_family(cond, prediction):
    """Registry family of a latent model from its text conditioning: SDXL has a pooled `vector`,
    SD2 a 1024-wide context, SD1 a 768-wide one; v-prediction adds '-v' (selection.py's names)."""
    if isinstance(cond, dict) and any(key in cond for key in ("vector", "pooled")):
        family = "sdxl"
    else:
        context = cond.get("crossattn", cond.get("context")) if isinstance(cond, dict) else cond
        family = "sd2" if isinstance(context, torch.Tensor) and context.shape[-1] == 1024 else "sd15"
    return family + ("-v" if prediction == "v" and family != "sd15" else "")


def forge_unet_model(model):
    """Forge's k-diffusion-style UNet model of an engine (forge_objects.unet.model), else None."""
    unet = getattr(getattr(model, "forge_objects", None), "unet", None)
    kmodel = getattr(unet, "model", None)
    return kmodel if getattr(kmodel, "predictor", None) is not None else None


class ForgeUNet:
    """Forge's UNet model called as LatentDiffusionDenoiser calls k-diffusion's wrappers:
    `(x, sigma, cond=...) -> x0` with the ascending noise table `sigmas` on the model's device.
    Conditioning is what the engine's get_learned_conditioning returns: a tensor (SD1/SD2) or
    {"crossattn", "vector"} (SDXL), handed over as Forge's sampler hands it (c_crossattn, y).
    `before_forward`, when set (the WebUI adapter), runs before each call: Forge's memory manager
    may have moved the UNet off the GPU to encode prompts."""

    def __init__(self, kmodel):
        kind = kmodel.predictor.prediction_type
        if kind not in FORGE_PREDICTIONS:
            raise AYSError(f"this model predicts {kind!r}; AYS optimizes eps and v models (SD 1.x/2.x/XL)")
        self.kmodel = kmodel
        self.prediction = FORGE_PREDICTIONS[kind]
        self.before_forward = None

    @property
    def sigmas(self):
        return self.kmodel.predictor.sigmas

    def __call__(self, x, sigma, cond):
        if self.before_forward is not None:
            self.before_forward()
        extra = {}
        if isinstance(cond, dict):
            extra = {"y": cond["vector"]} if "vector" in cond else {}
            cond = cond["crossattn"]
        return self.kmodel.apply_model(x, sigma, c_crossattn=cond, **extra)


class LatentDiffusionDenoiser:
    """D(x, sigma, cond_index=None) -> x0 for a latent diffusion model with classifier-free guidance.

    x is a latent batch [B, C, H, W] in k-diffusion scaling (x = x0 + sigma * eps); the output is
    float32 whatever the model runs in (fp16/bf16 models run under autocast on the GPU)."""

    def __init__(self, model, prompts=("",), negative_prompt="", cfg_scale=DEFAULT_CFG_SCALE, info=None):
        self.model = model
        self.wrapped = self.wrap(model)
        prediction = self.prediction
        # Forge's UNet model casts to its own computation dtype: no autocast around it
        self.dtype = torch.float32 if isinstance(self.wrapped, ForgeUNet) else model_dtype(model)
        table = self.wrapped.sigmas.detach().double().cpu()
        if not torch.isfinite(table).all() or (table <= 0).any():
            raise AYSError("the model's noise table has a zero or infinite sigma (zero-terminal-SNR "
                           "models are not supported)")
        self.sigma_table = table
        self.sigma_min, self.sigma_max = float(table[0]), float(table[-1])
        self.cfg_scale = check_cfg_scale(cfg_scale)
        self.max_rows = None  # UNet rows per forward; None: the whole batch at once
        self.on_evaluate = None  # progress hook: called with the number of samples of each call
        self.data_shape = None  # latent shape [C, H, W], known once the resolution is (set_resolution)
        self.negative_prompt = negative_prompt
        self.set_prompts(prompts)
        self.model_info = {"family": guess_family(self.cond, prediction), "prediction": prediction,
                           "sigma_min": self.sigma_min, "sigma_max": self.sigma_max, **(info or {})}

    def wrap(self, model):
        """`model` as a callable (x, sigma, cond=) -> x0 with a `sigmas` table; sets self.prediction."""
        kmodel = forge_unet_model(model)
        if getattr(model, "get_learned_conditioning", None) is None:
            raise AYSError("the model has no get_learned_conditioning: not a latent diffusion model AYS can drive")
        if kmodel is not None:
            wrapped = ForgeUNet(kmodel)
            self.prediction = wrapped.prediction
            return wrapped
        self.prediction = getattr(model, "parameterization", "eps")
        if self.prediction not in PREDICTIONS:
            raise AYSError(f"unsupported model parameterization {self.prediction!r}; AYS handles eps and v")
        for needed in ("alphas_cumprod", "apply_model"):
            if getattr(model, needed, None) is None:
                raise AYSError(f"the model has no {needed}: not a latent diffusion model AYS can drive "
                               "(SD 1.x/2.x/XL as AUTOMATIC1111, Forge or diffusers load them)")
        external = _kdiffusion_external()
        return (external.CompVisVDenoiser if self.prediction == "v" else external.CompVisDenoiser)(model)

    @property
    def device(self):
        return self.wrapped.sigmas.device

    def set_resolution(self, pixels):
        """Image side the model runs at: latents are pixels / 8 (SDXL's size conditioning follows)."""
        if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels % 8 or not 8 <= pixels <= 4096:
            raise AYSError(f"resolution must be a multiple of 8 between 8 and 4096, got {pixels!r}")
        if hasattr(self.model, "resolution"):
            self.model.resolution = pixels
        channels = self.data_shape[0] if self.data_shape else 4
        self.data_shape = (channels, pixels // 8, pixels // 8)

    @property
    def rows_per_sample(self):
        """UNet rows one sample costs: 2 with guidance (cond + uncond), 1 without."""
        return 1 if self.cfg_scale == 1.0 else 2

    def set_prompts(self, prompts, negative_prompt=None):
        """Encode the prompt bank (and the negative prompt) once; samples refer to it by index."""
        prompts = [str(p) for p in prompts]
        if not prompts:
            raise AYSError("need at least one prompt (an empty prompt '' is allowed)")
        if negative_prompt is not None:
            self.negative_prompt = negative_prompt
        self.prompts = prompts
        with torch.no_grad():
            self.cond = self.model.get_learned_conditioning(prompts)
            self.uncond = self.model.get_learned_conditioning([self.negative_prompt])

    def conditioning(self, cond_index):
        return select_rows(self.cond, cond_index)

    def __call__(self, x, sigma, cond_index=None, **unused):
        batch = len(x)
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
        if sigma.ndim == 0:
            sigma = sigma.expand(batch)
        if cond_index is None:
            cond_index = torch.arange(batch) % len(self.prompts)
        cond_index = torch.as_tensor(cond_index).long().cpu()
        if cond_index.numel() and (cond_index.min() < 0 or cond_index.max() >= len(self.prompts)):
            raise AYSError(f"prompt index out of range (the bank holds {len(self.prompts)} prompts)")
        if batch == 0:
            return x.float()
        # Callers (samplers, the estimator) may hand over more rows than fit the GPU at once.
        step = max(1, self.max_rows // self.rows_per_sample) if self.max_rows else batch
        out = torch.cat([self._guided(x[i:i + step], sigma[i:i + step], cond_index[i:i + step])
                         for i in range(0, batch, step)])
        if self.on_evaluate is not None:
            self.on_evaluate(batch)
        return out

    def _guided(self, x, sigma, cond_index):
        batch = len(x)
        cond = self.conditioning(cond_index)
        autocast = x.device.type == "cuda" and self.dtype in (torch.float16, torch.bfloat16)
        with torch.no_grad(), torch.autocast(x.device.type, dtype=self.dtype, enabled=autocast):
            if self.rows_per_sample == 1:
                return self.wrapped(x.float(), sigma, cond=cond).float()
            uncond = select_rows(self.uncond, torch.zeros(batch, dtype=torch.long))
            out = self.wrapped(torch.cat([x, x]).float(), torch.cat([sigma, sigma]), cond=concat_rows(cond, uncond))
        positive, negative = out.float().chunk(2)
        return negative + self.cfg_scale * (positive - negative)
