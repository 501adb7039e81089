"""Latent diffusion checkpoints behind the denoiser contract (ays_core.models.ldm): k-diffusion's
CompVis wrappers with classifier-free guidance, the prompt bank, and the KLUB estimator handing
each sample's conditioning to the denoiser (klub's (x0, cond) sources)."""
import numpy as np
import pytest
import torch
from k_diffusion import external

from ays_core.errors import AYSError
from ays_core.klub import ImportanceKLUB, PathKLUB
from ays_core.models.ldm import LatentDiffusionDenoiser, concat_rows, guess_family
from ays_core.settings import check_cfg_scale
from tiny_ldm import TinyCompVisModel, forge_style_engine

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def latents(n=3, seed=0):
    return torch.randn(n, 4, 8, 8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("prediction, wrapper", [("eps", external.CompVisDenoiser), ("v", external.CompVisVDenoiser)])
def test_guidance_is_applied_over_kdiffusion_wrappers(prediction, wrapper):
    model = TinyCompVisModel(prediction)
    denoiser = LatentDiffusionDenoiser(model, prompts=["a cat", "a dog"], negative_prompt="blurry", cfg_scale=5.0)
    x, sigma = latents(), torch.tensor([0.1, 2.0, 14.0])
    index = torch.tensor([1, 0, 1])
    reference = wrapper(model)
    with torch.no_grad():
        cond = model.get_learned_conditioning(["a cat", "a dog"])[index]
        uncond = model.get_learned_conditioning(["blurry"]).expand(3, -1, -1)
        positive, negative = reference(x, sigma, cond=cond), reference(x, sigma, cond=uncond)
    expected = negative + 5.0 * (positive - negative)
    torch.testing.assert_close(denoiser(x, sigma, cond_index=index), expected, rtol=1e-5, atol=1e-5)


def test_scale_one_runs_the_conditional_model_alone():
    model = TinyCompVisModel()
    denoiser = LatentDiffusionDenoiser(model, prompts=["a cat"], cfg_scale=1.0)
    x, sigma = latents(2), torch.tensor([1.0, 3.0])
    before = model.calls
    out = denoiser(x, sigma)
    assert model.calls - before == 2 and denoiser.rows_per_sample == 1
    with torch.no_grad():
        cond = model.get_learned_conditioning(["a cat"]).expand(2, -1, -1)
        torch.testing.assert_close(out, external.CompVisDenoiser(model)(x, sigma, cond=cond))


def test_rows_without_an_index_cycle_through_the_prompts():
    denoiser = LatentDiffusionDenoiser(TinyCompVisModel(), prompts=["a cat", "a dog", "a car"])
    x, sigma = latents(5), torch.full((5,), 1.5)
    torch.testing.assert_close(denoiser(x, sigma), denoiser(x, sigma, cond_index=torch.tensor([0, 1, 2, 0, 1])))
    assert not torch.allclose(denoiser(x, sigma, cond_index=torch.zeros(5, dtype=torch.long)), denoiser(x, sigma))


def test_sub_batches_give_the_same_result_and_count_evaluations():
    denoiser = LatentDiffusionDenoiser(TinyCompVisModel(), prompts=["a", "b"])
    x, sigma = latents(7), torch.linspace(0.1, 10, 7)
    whole = denoiser(x, sigma)
    seen = []
    denoiser.max_rows, denoiser.on_evaluate = 4, seen.append  # 2 samples (4 UNet rows) per forward
    torch.testing.assert_close(denoiser(x, sigma), whole)
    assert seen == [7]


def test_noise_table_and_model_info_come_from_the_model():
    denoiser = LatentDiffusionDenoiser(TinyCompVisModel(), info={"sha256": "ab" * 32, "name": "tiny"})
    table = denoiser.sigma_table
    assert torch.all(table[1:] > table[:-1]) and len(table) == 1000
    assert denoiser.sigma_min == pytest.approx(0.0291671582, rel=1e-4)  # float32 table, as the WebUI
    assert denoiser.sigma_max == pytest.approx(14.6146412293, rel=1e-4)
    assert denoiser.model_info == {"family": "sd15", "prediction": "eps", "sigma_min": denoiser.sigma_min,
                                   "sigma_max": denoiser.sigma_max, "sha256": "ab" * 32, "name": "tiny"}


def test_family_is_read_from_the_text_conditioning():
    assert guess_family(torch.zeros(1, 77, 768), "eps") == "sd15"
    assert guess_family(torch.zeros(1, 77, 1024), "v") == "sd2-v"
    assert guess_family({"crossattn": torch.zeros(1, 77, 2048), "vector": torch.zeros(1, 2816)}, "eps") == "sdxl"
    assert guess_family({"crossattn": torch.zeros(1, 77, 1024)}, "eps") == "sd2"


def test_long_prompt_conditioning_is_padded_to_stack_with_the_short_one():
    long, short = torch.randn(2, 154, 8), torch.randn(1, 77, 8)
    stacked = concat_rows(long, short)
    assert stacked.shape == (3, 154, 8)
    torch.testing.assert_close(stacked[2, 77:], short[0])  # the short one repeats its last chunk
    both = concat_rows({"crossattn": short, "vector": torch.ones(1, 4)}, {"crossattn": long, "vector": torch.ones(2, 4)})
    assert both["crossattn"].shape == (3, 154, 8) and both["vector"].shape == (3, 4)


def test_resolution_sets_the_latent_shape():
    denoiser = LatentDiffusionDenoiser(TinyCompVisModel())
    assert denoiser.data_shape is None
    denoiser.set_resolution(512)
    assert denoiser.data_shape == (4, 64, 64)
    with pytest.raises(AYSError, match="multiple of 8"):
        denoiser.set_resolution(100)


def test_bad_models_and_settings_are_refused():
    with pytest.raises(AYSError, match="not a latent diffusion model"):
        LatentDiffusionDenoiser(object())
    forge_like = TinyCompVisModel()
    forge_like.alphas_cumprod = None  # neither a noise table nor Forge's UNet model
    with pytest.raises(AYSError, match="no alphas_cumprod"):
        LatentDiffusionDenoiser(forge_like)
    model = TinyCompVisModel()
    model.parameterization = "x0"
    with pytest.raises(AYSError, match="parameterization"):
        LatentDiffusionDenoiser(model)
    for scale in (0.5, 31, float("nan"), "seven"):
        with pytest.raises(AYSError, match="CFG scale"):
            check_cfg_scale(scale)
    denoiser = LatentDiffusionDenoiser(TinyCompVisModel(), prompts=["a"])
    with pytest.raises(AYSError, match="prompt index"):
        denoiser(latents(1), torch.ones(1), cond_index=torch.tensor([3]))
    with pytest.raises(AYSError, match="at least one prompt"):
        denoiser.set_prompts([])


class DiracData:
    """Data made of a few fixed points, each with its own 'prompt' (its index): the denoiser that
    knows a sample's prompt returns its x0 exactly, so the KLUB is 0 when, and only when, the
    estimator hands every row the conditioning of its own sample."""

    def __init__(self, count=5):
        self.points = torch.randn(count, 3, generator=torch.Generator().manual_seed(1))
        self.sigma_min, self.sigma_max = 0.01, 10.0

    def sample(self, n, generator):
        index = torch.randint(len(self.points), (n,), generator=generator)
        return self.points[index], {"cond_index": index}

    def __call__(self, x, sigma, cond_index=None):
        assert cond_index is not None and len(cond_index) == len(x)
        return self.points[cond_index].to(x.dtype)


@pytest.mark.parametrize("estimator", ["importance", "path"])
def test_klub_hands_each_row_the_conditioning_of_its_sample(estimator):
    data = DiracData()
    common = (data, data.sample, 12, 0, 5, "cpu", 7)  # chunks of 5 samples, sub-batches of 7 rows
    if estimator == "importance":
        values, _ = ImportanceKLUB(*common)(np.geomspace(0.01, 10, 6)[None])
    else:
        values = PathKLUB(*common, 0.01, 10.0, grid_size=8).table
    assert np.all(values == 0)


@pytest.mark.parametrize("prediction_type, prediction", [("epsilon", "eps"), ("v_prediction", "v")])
def test_a_forge_engine_runs_through_its_own_unet_model(prediction_type, prediction):
    """Forge's engine has no CompVis interface: the denoiser calls its UNet model (sigmas in, x0
    out), the same object, and agrees with k-diffusion's CompVis wrapper on the same network at
    the noise table's own sigmas (where Forge's timestep rounding changes nothing)."""
    network = TinyCompVisModel(parameterization=prediction)
    engine = forge_style_engine(network, prediction_type)
    for cfg_scale in (1.0, 5.0):
        forge = LatentDiffusionDenoiser(engine, prompts=["a cat", "a dog"], negative_prompt="blurry", cfg_scale=cfg_scale)
        compvis = LatentDiffusionDenoiser(network, prompts=["a cat", "a dog"], negative_prompt="blurry", cfg_scale=cfg_scale)
        assert forge.wrapped.kmodel is engine.forge_objects.unet.model  # no copy
        assert forge.prediction == prediction and forge.model_info["family"] == "sd15"
        assert forge.sigma_min == pytest.approx(compvis.sigma_min) and forge.sigma_max == pytest.approx(compvis.sigma_max)
        x = latents(4)
        sigma = forge.sigma_table[[10, 300, 600, 999]].float()
        torch.testing.assert_close(forge(x, sigma), compvis(x, sigma), rtol=1e-4, atol=1e-4)
    calls = []
    forge.wrapped.before_forward = lambda: calls.append(1)  # the WebUI adapter's memory-manager hook
    forge(x, sigma)
    assert calls == [1]  # once per UNet call (cond and uncond rows go together)


def test_a_forge_model_that_predicts_flow_is_refused():
    engine = forge_style_engine(TinyCompVisModel(), "epsilon")
    engine.forge_objects.unet.model.predictor.prediction_type = "const"
    with pytest.raises(AYSError, match="const"):
        LatentDiffusionDenoiser(engine)
