"""x0 sources for optimizing a latent diffusion model's schedule.

The KLUB needs clean samples x0 of the model's data. Two sources, chosen by the user:
- an image folder (+ optional caption .txt beside each image): images are resized, centre-cropped
  and encoded to latents with the model's own VAE; each latent is conditioned on its caption;
- data-free, prompts only: x0 is drawn from the model itself with a many-step reference sampler
  (DPM++ 2M over a Karras schedule), so a user without a dataset can still optimize.

Either way the result is a `LatentBank`: latents plus the index of each one's prompt in the
denoiser's prompt bank. It is cached on disk (safetensors, written atomically after every batch)
under a key of everything that determines it, so a resumed or repeated run neither re-encodes nor
re-generates what it already has, and a stopped run continues where it was.
"""
import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import AYSError
from .fileio import atomic_write, read_capped
from .settings import DEFAULT_DATA_STEPS
from .userdirs import user_cache_dir

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
CACHE_ENV = "AYS_CACHE"
CACHE_FORMAT = "1"
MAX_PROMPT_CHARS = 2000
MAX_PROMPTS = 100_000
MAX_PROMPTS_FILE_BYTES = 16 << 20
MAX_CAPTION_BYTES = 64 << 10
MAX_IMAGE_BYTES = 64 << 20
MAX_FOLDER_ENTRIES = 200_000  # files and folders looked at while listing an image folder


class StopRequested(Exception):
    """Raised between batches when the caller's should_stop() says so; the cache keeps the work."""


def default_cache_dir():
    return Path(os.environ.get(CACHE_ENV) or user_cache_dir()) / "latents"


@dataclass
class LatentBank:
    """Clean latents x0 [N, C, H, W] with the prompt index of each, the KLUB estimator's x0 source:
    calling it draws n rows with replacement and returns (x0, {"cond_index": ...})."""

    latents: torch.Tensor
    cond_index: torch.Tensor
    prompts: list
    description: str
    noise_seeds: torch.Tensor = None  # data-free draws: the seed of each row's starting noise
    sigma_start: float = None         # ... and the sigma it was scaled to

    def __len__(self):
        return len(self.latents)

    def teacher_pairs(self, count):
        """(starting noise, x0, {"cond_index": ...}) of the first `count` rows of a data-free bank:
        each x0 is a many-step DPM++ 2M solution from that noise, so it serves as the teacher of
        deterministic solvers at no cost. None for banks of encoded images."""
        if self.noise_seeds is None:
            return None
        count = min(count, len(self.latents))
        shape = self.latents.shape[1:]
        noise = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(int(s)))
                             for s in self.noise_seeds[:count]])
        return noise * self.sigma_start, self.latents[:count], {"cond_index": self.cond_index[:count]}

    def __call__(self, n, generator=None):
        rows = torch.randint(len(self.latents), (n,), generator=generator)
        return self.latents[rows], {"cond_index": self.cond_index[rows]}


# ---------------------------------------------------------------- cache

def cache_key(material):
    """A short stable hash of everything that determines the cached latents."""
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode("utf-8")).hexdigest()[:32]


def read_cache(path, key):
    """(latents, cond_index, metadata) from a cache file made for `key`, or None (absent, stale
    or damaged: a broken cache is rebuilt, never trusted)."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("format") != CACHE_FORMAT or metadata.get("key") != key:
                return None
            latents, cond_index = f.get_tensor("latents"), f.get_tensor("cond_index")
        done = int(metadata["done"])
    except Exception as exc:  # safetensors raises several types on a torn or foreign file
        warnings.warn(f"ignoring damaged latent cache {path}: {exc}")
        return None
    if latents.ndim != 4 or cond_index.shape != (len(latents),) or done != len(latents):
        return None
    return latents.float(), cond_index.long(), metadata


def write_cache(path, key, latents, cond_index, metadata):
    from safetensors.torch import save

    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {**{k: str(v) for k, v in metadata.items()}, "format": CACHE_FORMAT, "key": key, "done": str(len(latents))}
    atomic_write(path, save({"latents": latents.contiguous(), "cond_index": cond_index.contiguous()}, metadata=meta))


# ---------------------------------------------------------------- prompts

def read_prompts(text=None, path=None):
    """Non-empty lines of a prompts textbox and/or a prompts file (one prompt per line)."""
    lines = []
    if path:
        data = read_capped(path, MAX_PROMPTS_FILE_BYTES, f"prompts file {path}")
        try:
            lines += data.decode("utf-8").splitlines()
        except UnicodeDecodeError:
            raise AYSError(f"prompts file {path}: not UTF-8 text") from None
    if text:
        lines += str(text).splitlines()
    prompts = [line.strip() for line in lines if line.strip()]
    if not prompts:
        raise AYSError("no prompts given (one prompt per line)")
    if len(prompts) > MAX_PROMPTS or any(len(p) > MAX_PROMPT_CHARS for p in prompts):
        raise AYSError(f"prompts must be at most {MAX_PROMPTS} lines of at most {MAX_PROMPT_CHARS} characters")
    return prompts


def model_identity(denoiser):
    info = getattr(denoiser, "model_info", {}) or {}
    return {"sha256": info.get("sha256"), "name": info.get("name"), "family": info.get("family"),
            "sigma_min": round(float(denoiser.sigma_min), 8), "sigma_max": round(float(denoiser.sigma_max), 8)}


def reference_sigmas(denoiser, steps):
    """The reference sampler's schedule: Karras (rho 7) over the model's range, then 0."""
    from .baselines import karras

    return torch.from_numpy(karras(steps, denoiser.sigma_min, denoiser.sigma_max)).float()


def sample_from_model(denoiser, cond_index, latent_shape, seeds, sigmas, device):
    """x0 drawn with DPM++ 2M from per-sample seeded noise (the same seed gives the same x0)."""
    import warnings

    with warnings.catch_warnings():  # k-diffusion's CLIP dependency warns about pkg_resources on import
        warnings.simplefilter("ignore", UserWarning)
        from k_diffusion import sampling

    noise = torch.stack([torch.randn(latent_shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds])
    x = (noise * sigmas[0]).to(device)
    with torch.no_grad():
        x0 = sampling.sample_dpmpp_2m(denoiser, x, sigmas.to(device), extra_args={"cond_index": cond_index},
                                      disable=True)
    return x0.float().cpu()


def prompts_bank(denoiser, prompts, count, latent_shape, *, seed=0, reference_steps=DEFAULT_DATA_STEPS,
                 batch_size=4, cache_dir=None, device=None, should_stop=None, on_progress=None, progress=True):
    """Data-free x0: `count` latents drawn from the model, sample i conditioned on prompt i mod P
    (`progress`: a console bar)."""
    from tqdm import tqdm

    prompts = list(prompts)
    check_count(count)
    if reference_steps < 10:
        raise AYSError(f"the reference sampler needs at least 10 steps, got {reference_steps}")
    denoiser.set_prompts(prompts)
    device = device or denoiser.device
    material = {"kind": "prompts", "model": model_identity(denoiser), "prompts": prompts,
                "negative": denoiser.negative_prompt, "cfg": denoiser.cfg_scale, "steps": int(reference_steps),
                "sampler": "dpmpp_2m-karras", "seed": int(seed), "shape": list(latent_shape)}
    key = cache_key(material)
    path = Path(cache_dir or default_cache_dir()) / f"prompts-{key}.safetensors"
    cached = read_cache(path, key)
    latents, cond_index = (cached[0], cached[1]) if cached else (torch.empty(0, *latent_shape), torch.empty(0, dtype=torch.long))
    sigmas = reference_sigmas(denoiser, reference_steps)
    description = (f"data-free: {count} samples drawn from the model ({reference_steps}-step DPM++ 2M, "
                   f"CFG {denoiser.cfg_scale:g}) for {len(prompts)} prompt(s)")
    with tqdm(total=count, initial=min(len(latents), count), desc="drawing x0 from the model", unit="sample",
              disable=not progress) as bar:
        while len(latents) < count:
            _check_stop(should_stop)
            start = len(latents)
            index = torch.arange(start, min(start + batch_size, count))
            batch_cond = index % len(prompts)
            x0 = sample_from_model(denoiser, batch_cond, latent_shape, seed * 1_000_003 + index, sigmas, device)
            latents, cond_index = torch.cat([latents, x0]), torch.cat([cond_index, batch_cond])
            write_cache(path, key, latents, cond_index, {"kind": "prompts", "prompts": json.dumps(prompts)})
            bar.update(len(index))
            if on_progress:
                on_progress(len(latents), count, "drawing x0 from the model")
    return LatentBank(latents[:count], cond_index[:count], prompts, description,
                      noise_seeds=seed * 1_000_003 + torch.arange(count), sigma_start=float(sigmas[0]))


# ---------------------------------------------------------------- image folders

def list_images(folder, count=None, seed=0, within=None):
    """Image files under `folder` (recursively, sorted), a seeded random subset of `count` if given.
    Links to folders are not followed; at most MAX_FOLDER_ENTRIES entries are looked at. With
    `within` (resolved folders), files whose real path lies outside all of them are skipped."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise AYSError(f"image folder {folder}: no such folder")
    files = sorted(p for p in walk_files(folder) if p.suffix.lower() in IMAGE_SUFFIXES
                   and (within is None or is_within(p, within)))
    if not files:
        raise AYSError(f"image folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    if count is not None and count < len(files):
        keep = np.sort(np.random.default_rng(seed).choice(len(files), size=count, replace=False))
        files = [files[i] for i in keep]
    return files


def walk_files(folder):
    """Regular files under `folder`, not following links to folders, within MAX_FOLDER_ENTRIES."""
    seen = 0
    pending = [folder]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue  # an unreadable subfolder holds nothing we can use
        seen += len(entries)
        if seen > MAX_FOLDER_ENTRIES:
            raise AYSError(f"image folder {folder} holds more than {MAX_FOLDER_ENTRIES} files and folders")
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append(Path(entry.path))
            elif entry.is_file():
                yield Path(entry.path)


def is_within(path, folders):
    real = Path(os.path.realpath(path))
    return any(real == folder or folder in real.parents for folder in folders)


def caption_of(image_path, default=""):
    """The image's caption: the first non-empty line of the .txt file beside it, else `default`."""
    text_path = image_path.with_suffix(".txt")
    if not text_path.is_file():
        return default
    try:
        with open(text_path, "rb") as f:
            lines = f.read(MAX_CAPTION_BYTES).decode("utf-8", errors="replace").splitlines()
    except OSError:
        return default
    caption = next((line.strip() for line in lines if line.strip()), default)
    return caption[:MAX_PROMPT_CHARS]


def load_image(path, resolution):
    """An RGB image resized (shorter side) and centre-cropped to a square, as a [-1, 1] tensor."""
    from PIL import Image, ImageOps

    if os.path.getsize(path) > MAX_IMAGE_BYTES:
        raise ValueError(f"larger than {MAX_IMAGE_BYTES} bytes")
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        image = ImageOps.fit(image, (resolution, resolution), Image.Resampling.LANCZOS)
        pixels = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(pixels).permute(2, 0, 1)


def encode_images(model, images):
    """Latents of a [-1, 1] image batch with the model's VAE, scaled as the UNet sees them.
    The images go to the VAE's device and dtype (the WebUI may hold it in fp16 on the GPU)."""
    from .models.ldm import model_dtype

    vae = getattr(model, "first_stage_model", None)
    vae = model if vae is None else vae
    parameter = next(iter(vae.parameters()), None) if hasattr(vae, "parameters") else None
    device = parameter.device if parameter is not None else images.device
    with torch.no_grad():
        encoded = model.encode_first_stage(images.to(device, model_dtype(vae)))
        if hasattr(model, "get_first_stage_encoding"):
            encoded = model.get_first_stage_encoding(encoded)
    return encoded.float().cpu()


def images_bank(denoiser, folder, *, resolution, count=None, seed=0, default_caption="", batch_size=4,
                cache_dir=None, should_stop=None, on_progress=None, within=None, progress=True):
    """x0 from an image folder: each image encoded by the model's VAE, conditioned on its caption.
    `within`: see list_images; `progress`: a console bar."""
    from tqdm import tqdm

    if count is not None:
        check_count(count)
    if resolution % 8 or not 8 <= resolution <= 4096:
        raise AYSError(f"resolution must be a multiple of 8 between 8 and 4096, got {resolution}")
    files = list_images(folder, count, seed, within)
    captions = [caption_of(p, default_caption) for p in files]
    prompts = sorted(set(captions))
    denoiser.set_prompts(prompts)
    position = {caption: i for i, caption in enumerate(prompts)}
    root = Path(folder).expanduser()
    stats = [(str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    material = {"kind": "images", "model": model_identity(denoiser), "files": stats, "captions": captions,
                "resolution": int(resolution)}
    key = cache_key(material)
    path = Path(cache_dir or default_cache_dir()) / f"images-{key}.safetensors"
    cached = read_cache(path, key)
    latents, cond_index = (cached[0], cached[1]) if cached else (None, torch.empty(0, dtype=torch.long))
    done = 0 if latents is None else len(latents)
    with tqdm(total=len(files), initial=done, desc="encoding images", unit="image", disable=not progress) as bar:
        while done < len(files):
            _check_stop(should_stop)
            chunk = files[done:done + batch_size]
            pixels = torch.stack([_load_or_fail(p, resolution) for p in chunk])
            encoded = encode_images(denoiser.model, pixels)
            index = torch.tensor([position[c] for c in captions[done:done + len(chunk)]])
            latents = encoded if latents is None else torch.cat([latents, encoded])
            cond_index = torch.cat([cond_index, index])
            write_cache(path, key, latents, cond_index, {"kind": "images", "folder": str(root)})
            done += len(chunk)
            bar.update(len(chunk))
            if on_progress:
                on_progress(done, len(files), "encoding images")
    captioned = sum(1 for c in captions if c != default_caption)
    description = (f"{len(files)} images from {root.name or root} at {resolution}px, "
                   f"{captioned} with captions, CFG {denoiser.cfg_scale:g}")
    return LatentBank(latents, cond_index, prompts, description[:1000])


def _load_or_fail(path, resolution):
    from PIL import Image

    try:
        return load_image(path, resolution)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise AYSError(f"cannot read image {path}: {exc}") from None


def _check_stop(should_stop):
    if should_stop is not None and should_stop():
        raise StopRequested()


def check_count(count):
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 1 <= count <= 1_000_000:
        raise AYSError(f"sample count must be a whole number between 1 and 1000000, got {count!r}")
