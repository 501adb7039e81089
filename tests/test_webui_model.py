"""What the WebUI's loaded model is (ays_core.webui_model), from plain objects with the attributes
A1111 and Forge set: no stand-in WebUI needed."""
import math
import types

import pytest
import torch

from ays_core.selection import ModelInfo
from ays_core.webui_model import describe_model, model_sigma_range

SHA = "AB" * 32  # the WebUI may hand hashes in upper case


def a1111_model(parameterization="eps", sha256=SHA, shorthash=None, **flags):
    info = types.SimpleNamespace(sha256=sha256, shorthash=shorthash, name="model.safetensors")
    return types.SimpleNamespace(parameterization=parameterization, sd_checkpoint_info=info, **flags)


def forge_model(class_name, prediction_type, sigmas=None, **flags):
    predictor = types.SimpleNamespace(prediction_type=prediction_type, sigmas=sigmas)
    engine = type(class_name, (), {})()
    engine.forge_objects = types.SimpleNamespace(unet=types.SimpleNamespace(model=types.SimpleNamespace(predictor=predictor)))
    for flag in ("is_sd1", "is_sd2", "is_sdxl", "is_sd3"):
        setattr(engine, flag, flags.get(flag, False))
    return engine


@pytest.mark.parametrize("model, family, prediction", [
    (a1111_model(is_sd1=True, is_sd2=False, is_sdxl=False), "sd15", "eps"),
    (a1111_model(is_sd1=False, is_sd2=True, is_sdxl=False), "sd2", "eps"),
    (a1111_model("v", is_sd1=False, is_sd2=True, is_sdxl=False), "sd2-v", "v"),
    (a1111_model(is_sd1=False, is_sd2=False, is_sdxl=True), "sdxl", "eps"),
    (a1111_model(is_sd1=False, is_sd2=False, is_sdxl=False, is_sd3=True), "sd3", "eps"),
    (a1111_model(is_sd2=False), "sd15", "eps"),               # before 1.5: no is_sd1, not SD2 means SD1
    (a1111_model(), None, "eps"),                              # no flags at all: family unknown
    (forge_model("StableDiffusionXL", "epsilon", is_sdxl=True), "sdxl", "eps"),
    (forge_model("Flux", "const"), "flux", "flow"),            # named for the warning, not a registry family
    (forge_model("Cosmos", "edm"), "cosmos", "edm"),
    (forge_model("Odd", "something-new"), "odd", "something-new"),
])
def test_family_and_prediction(model, family, prediction):
    info = describe_model(model)
    assert (info.family, info.prediction) == (family, prediction)


def test_checkpoint_hashes_are_lower_case_hex_of_the_right_length_or_none():
    info = describe_model(a1111_model(is_sd1=True, sha256=SHA, shorthash="ABCDEF0123"))
    assert info == ModelInfo("sd15", "eps", sha256="ab" * 32, shorthash="abcdef0123", name="model.safetensors")
    for bad in ("ab" * 31, "zz" * 32, "", None, 12):
        assert describe_model(a1111_model(is_sd1=True, sha256=bad, shorthash=bad)).sha256 is None
    assert describe_model(types.SimpleNamespace(is_sd1=True)) == ModelInfo("sd15", None)  # no checkpoint info


def test_sigma_range_of_sd_noise_table():
    # SD's scaled_linear betas (0.00085 .. 0.012, 1000 steps): the range model_wrap.sigmas spans
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    model = a1111_model(is_sd1=True)
    model.alphas_cumprod = torch.cumprod(1 - betas, 0).float()
    lo, hi = model_sigma_range(model)
    assert lo == pytest.approx(0.0291675, rel=1e-5) and hi == pytest.approx(14.614642, rel=1e-5)


def test_sigma_range_from_forge_predictor_and_unknown():
    model = forge_model("Flux", "const", sigmas=torch.tensor([0.25, 0.5, 1.0]))
    assert model_sigma_range(model) == (0.25, 1.0)
    assert model_sigma_range(a1111_model(is_sd1=True)) is None
    ab = torch.tensor([0.99, 0.5, 0.2])  # sigma = sqrt((1 - ab) / ab)
    lo, hi = model_sigma_range(types.SimpleNamespace(alphas_cumprod=ab))
    assert lo == pytest.approx(math.sqrt(0.01 / 0.99), rel=1e-6) and hi == pytest.approx(2.0, rel=1e-6)
