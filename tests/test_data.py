"""x0 sources for latent models (ays_core.data): image folders encoded by the model's VAE with
their captions, data-free draws from the model, and the safetensors latent cache that lets a
stopped or repeated run skip work already done."""
import pytest
import torch

from ays_core import data
from ays_core.errors import AYSError
from ays_core.models.ldm import LatentDiffusionDenoiser
from tiny_ldm import TinyCompVisModel, write_images

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHA = "ef" * 32


class CountingEncoder(TinyCompVisModel):
    def __init__(self):
        super().__init__()
        self.encoded = 0

    def encode_first_stage(self, images):
        self.encoded += len(images)
        return super().encode_first_stage(images)


@pytest.fixture
def denoiser():
    return LatentDiffusionDenoiser(CountingEncoder(), info={"sha256": SHA}, cfg_scale=2.0)


def test_image_folder_is_encoded_with_captions_and_cached(tmp_path, denoiser):
    folder = write_images(tmp_path / "images", 4)
    (folder / "img3.txt").unlink()  # one image without a caption
    bank = data.images_bank(denoiser, folder, resolution=64, default_caption="a photo", batch_size=3,
                            cache_dir=tmp_path / "cache")
    assert bank.latents.shape == (4, 4, 8, 8) and denoiser.model.encoded == 4
    assert [bank.prompts[i] for i in bank.cond_index] == ["a photo number 0", "a photo number 1",
                                                          "a photo number 2", "a photo"]
    assert denoiser.prompts == bank.prompts

    again = data.images_bank(denoiser, folder, resolution=64, default_caption="a photo", cache_dir=tmp_path / "cache")
    assert denoiser.model.encoded == 4  # nothing encoded twice
    torch.testing.assert_close(again.latents, bank.latents)

    (folder / "img0.txt").write_text("a new caption")  # a changed input makes a new cache entry
    data.images_bank(denoiser, folder, resolution=64, cache_dir=tmp_path / "cache")
    assert denoiser.model.encoded == 8
    expected = data.encode_images(denoiser.model, data.load_image(folder / "img1.png", 64)[None])
    torch.testing.assert_close(bank.latents[1:2], expected)


def test_bank_draws_latents_with_their_prompt_index(tmp_path, denoiser):
    bank = data.LatentBank(torch.arange(6.0).reshape(6, 1), torch.tensor([0, 1, 0, 1, 2, 2]), ["a", "b", "c"], "test")
    x0, cond = bank(20, torch.Generator().manual_seed(0))
    assert x0.shape == (20, 1)
    assert torch.equal(cond["cond_index"], bank.cond_index[x0[:, 0].long()])


def test_data_free_draws_are_deterministic_and_resume_after_a_stop(tmp_path, denoiser):
    prompts = ["a cat", "a dog"]
    kwargs = dict(reference_steps=10, batch_size=2, seed=3)
    whole = data.prompts_bank(denoiser, prompts, 5, (4, 8, 8), cache_dir=tmp_path / "one", **kwargs)
    assert whole.latents.shape == (5, 4, 8, 8) and whole.cond_index.tolist() == [0, 1, 0, 1, 0]
    assert torch.isfinite(whole.latents).all() and "data-free" in whole.description

    checks = iter([False, True])  # stop before the second batch
    with pytest.raises(data.StopRequested):
        data.prompts_bank(denoiser, prompts, 5, (4, 8, 8), cache_dir=tmp_path / "two",
                          should_stop=lambda: next(checks), **kwargs)
    calls = denoiser.model.calls
    resumed = data.prompts_bank(denoiser, prompts, 5, (4, 8, 8), cache_dir=tmp_path / "two", **kwargs)
    torch.testing.assert_close(resumed.latents, whole.latents)
    # only the 3 samples missing were drawn: 10 DPM++ 2M steps each, 2 UNet rows per step (CFG)
    assert denoiser.model.calls - calls == 3 * 10 * 2


def test_damaged_or_foreign_cache_is_rebuilt(tmp_path, denoiser):
    kwargs = dict(reference_steps=10, batch_size=4, cache_dir=tmp_path)
    first = data.prompts_bank(denoiser, ["x"], 2, (4, 8, 8), **kwargs)
    (cache_file,) = tmp_path.glob("prompts-*.safetensors")
    cache_file.write_bytes(b"not a safetensors file")
    with pytest.warns(UserWarning, match="damaged latent cache"):
        again = data.prompts_bank(denoiser, ["x"], 2, (4, 8, 8), **kwargs)
    torch.testing.assert_close(again.latents, first.latents)


def test_prompts_and_folders_are_checked(tmp_path):
    assert data.read_prompts("a cat\n\n  a dog  \n") == ["a cat", "a dog"]
    (tmp_path / "p.txt").write_text("one\ntwo\n")
    assert data.read_prompts("three", tmp_path / "p.txt") == ["one", "two", "three"]
    for bad in ({"text": "\n  \n"}, {"path": tmp_path / "missing.txt"}):
        with pytest.raises(AYSError):
            data.read_prompts(**bad)
    with pytest.raises(AYSError, match="no such folder"):
        data.list_images(tmp_path / "nope")
    with pytest.raises(AYSError, match="holds no images"):
        data.list_images(tmp_path)
    write_images(tmp_path / "many", 5, captions=False)
    assert len(data.list_images(tmp_path / "many", count=3, seed=0)) == 3
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "bad.png").write_bytes(b"not an image")
    denoiser = LatentDiffusionDenoiser(TinyCompVisModel())
    with pytest.raises(AYSError, match="cannot read image"):
        data.images_bank(denoiser, tmp_path / "broken", resolution=64, cache_dir=tmp_path / "cache")
    with pytest.raises(AYSError, match="sample count"):
        data.prompts_bank(denoiser, ["x"], 0, (4, 8, 8), cache_dir=tmp_path / "cache")
