"""Start the stand-in WebUI (this folder's `modules`, `gradio`, `launch`) with the AYS extension
loaded the way the WebUI loads it, and fake models shaped like the WebUI's.

`start_webui()` mirrors a WebUI start: import the modules, run scripts.load_scripts on every
scripts/*.py of the extension (in the WebUI's order), then the settings callbacks. Calling it
again in the same process without `stop_webui()` mirrors "Reload UI" (scripts re-run, imported
modules kept, the extension's package ays_webui included); `stop_webui()` ends the process, so
the next start imports the stand-in modules and ays_webui afresh (ays_core, WebUI-free, stays).
`legacy=True` gives a pre-1.9 WebUI: no modules.sd_schedulers, the 1.8 get_sigmas.
"""
import sys
import types
from pathlib import Path

import torch

STUB_DIR = Path(__file__).resolve().parent
REPO = STUB_DIR.parent.parent
STUB_PACKAGES = ("modules", "gradio", "launch", "backend")
EXTENSION_PACKAGE = "ays_webui"  # imported by the extension's scripts, from the extension's folder


def sd_alphas_cumprod():
    """SD's training noise table: scaled_linear betas 0.00085..0.012 over 1000 steps."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, dim=0).float()


def use_stub_path():
    if str(STUB_DIR) not in sys.path:
        sys.path.insert(0, str(STUB_DIR))


def checkpoint_info(sha256=None, name="model.safetensors"):
    use_stub_path()
    from modules.sd_models import CheckpointInfo

    return CheckpointInfo(name, sha256)


class FakeSDModel:
    """A1111's model object as the extension sees it: is_sd1/is_sd2/is_sdxl/is_sd3 flags,
    `parameterization` ('eps' or 'v'), `alphas_cumprod`, `sd_checkpoint_info`."""

    def __init__(self, family="sd15", parameterization="eps", sha256=None, name="model.safetensors"):
        self.is_sd1 = family == "sd15"
        self.is_sd2 = family == "sd2"
        self.is_sdxl = family == "sdxl"
        self.is_sd3 = family == "sd3"
        self.parameterization = parameterization
        self.alphas_cumprod = sd_alphas_cumprod()
        self.sd_checkpoint_info = checkpoint_info(sha256, name)


def fake_forge_model(class_name="Flux", prediction_type="const", sigmas=None, sha256=None, **flags):
    """Forge's model object: a ForgeDiffusionEngine subclass with the legacy flags and
    forge_objects.unet.model.predictor (prediction_type, ascending `sigmas` table)."""
    if sigmas is None:
        sigmas = torch.linspace(0.001, 1.0, 1000)
    predictor = types.SimpleNamespace(prediction_type=prediction_type, sigmas=sigmas)
    engine = type(class_name, (), {})()
    engine.forge_objects = types.SimpleNamespace(unet=types.SimpleNamespace(model=types.SimpleNamespace(predictor=predictor)))
    for flag in ("is_sd1", "is_sd2", "is_sdxl", "is_sd3"):
        setattr(engine, flag, flags.get(flag, False))
    engine.alphas_cumprod = None
    engine.sd_checkpoint_info = checkpoint_info(sha256)
    return engine


def stop_webui():
    for name in list(sys.modules):
        if name.split(".")[0] in (*STUB_PACKAGES, EXTENSION_PACKAGE):
            del sys.modules[name]
    while str(STUB_DIR) in sys.path:
        sys.path.remove(str(STUB_DIR))


def start_webui(legacy=False, sd_model=None, settings=None, extension=REPO, ui=True, api=True, api_auth=None):
    """A started stand-in WebUI with the extension folder `extension` installed; returns a
    namespace of its modules plus `ays` (the extension's package ays_webui, as its scripts
    imported it) and `loaded` (its scripts/ modules by file name). A script that fails to load
    fails the start (the WebUI would only print it). `settings` are applied to opts after the
    extension loads. `ui=False` is --nowebui: no settings UI, so on_ui_settings callbacks never
    run. `api` is --api, `api_auth` the value of --api-auth."""
    use_stub_path()
    if legacy:
        sys.modules["modules.sd_schedulers"] = None  # an import of it now fails, as before 1.9
    from modules import (infotext_utils, processing, script_callbacks, script_loading, scripts, sd_samplers,
                         sd_samplers_kdiffusion, shared)

    if legacy:
        sd_samplers_kdiffusion.sampler_class = sd_samplers_kdiffusion.LegacyKDiffusionSampler
    shared.cmd_opts.api, shared.cmd_opts.nowebui, shared.cmd_opts.api_auth = api, not ui, api_auth
    if shared.sd_model is None or sd_model is not None:
        shared.sd_model = sd_model or FakeSDModel()
    scripts.load_scripts(scripts.list_scripts([str(extension)]))
    if scripts.load_errors:
        path, error = scripts.load_errors[0]
        raise RuntimeError(f"the WebUI could not load {path}") from error
    if ui:
        script_callbacks.ui_settings_callback()
    for key, value in (settings or {}).items():
        shared.opts.set(key, value)
    if legacy:
        sd_schedulers = api_module = None
    else:
        from modules import sd_schedulers
        from modules.api import api as api_module
    return types.SimpleNamespace(
        shared=shared, sd_samplers=sd_samplers, sd_schedulers=sd_schedulers, processing=processing,
        scripts=scripts, script_callbacks=script_callbacks, infotext_utils=infotext_utils, api=api_module,
        ays=sys.modules[EXTENSION_PACKAGE],
        loaded={Path(path).name: module for path, module in script_loading.loaded_scripts.items()
                if Path(path).parent == Path(extension) / "scripts"})
