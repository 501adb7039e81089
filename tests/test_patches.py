"""The photo-patch data and the bundled UNet checkpoint: split, loading, bad files, headroom."""
import json
import os

import numpy as np
import pytest
import torch

from ays_core.errors import AYSError
from ays_core.models import digits, load_denoiser, patches

UNET = {"kind": "denoiser", "arch": "unet", "name": "tiny-unet", "dataset": "", "data_shape": [3, 8, 8],
        "channels": [4, 8], "emb_dim": 8, "sigma_data": 0.5, "sigma_min": 0.01, "sigma_max": 20.0}


def _blocks(corners):
    """The (photo, block row, block column) of every pixel of the patches at these corners."""
    tops, lefts = corners[:, 1].numpy(), corners[:, 2].numpy()
    first = set(zip(corners[:, 0].numpy(), tops // patches.BLOCK, lefts // patches.BLOCK))
    last = set(zip(corners[:, 0].numpy(), (tops + patches.PATCH - 1) // patches.BLOCK,
                   (lefts + patches.PATCH - 1) // patches.BLOCK))
    return first, last


def test_split_never_mixes_blocks_and_is_fixed():
    train, heldout = patches._corners("train", 1), patches._corners("heldout", patches.HELDOUT_STRIDE)
    train_first, train_last = _blocks(train)
    heldout_first, heldout_last = _blocks(heldout)
    assert train_first == train_last and heldout_first == heldout_last  # each patch inside one block
    assert not train_first & heldout_first
    assert all((r + c) % 2 == 0 for _, r, c in train_first) and all((r + c) % 2 == 1 for _, r, c in heldout_first)
    real = patches.patches_split("heldout")
    assert real.shape == (10140, 3, 16, 16) and real.min() >= -1 and real.max() <= 1
    assert torch.equal(real, patches.patches_split("heldout"))
    with pytest.raises(AYSError, match="unknown patches split"):
        patches.patches_split("test")


def test_bundled_unet_loads_like_any_checkpoint():
    model = load_denoiser(os.path.relpath(digits.BUNDLED_PATCHES_DENOISER))
    assert model.data_shape == (3, 16, 16) and (model.sigma_min, model.sigma_max) == (0.002, 80.0)
    assert model.model_info["family"] == "photo-patches-16x16-unet"
    assert os.path.getsize(digits.BUNDLED_PATCHES_DENOISER) <= 10 << 20
    draws = model.sample_data(5, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (5, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model(draws, torch.full((5,), 1e-4)), draws, atol=1e-3)


def test_a_tiny_unet_round_trips_through_a_file(tmp_path):
    torch.manual_seed(0)
    model = digits.EDMDenoiser(UNET)
    path = tmp_path / "unet.safetensors"
    digits.save_network(model, str(path))
    loaded = load_denoiser(str(path))
    x, sigma = torch.randn(3, 3, 8, 8), torch.tensor([0.1, 1.0, 10.0])
    with torch.no_grad():
        assert torch.allclose(loaded(x, sigma), model(x, sigma))


@pytest.mark.parametrize("change, message", [
    ({"arch": "transformer"}, "'arch'"),
    ({"channels": []}, "'channels'"),
    ({"channels": [4, 0]}, "'channels'"),
    ({"channels": [4, True]}, "'channels'"),
    ({"data_shape": [192]}, "takes images"),
    ({"channels": [4, 16]}, "do not match"),
])
def test_bad_unet_checkpoints_are_clear_errors(tmp_path, change, message):
    from safetensors.torch import save_file

    weights = {key: value.contiguous() for key, value in digits.EDMDenoiser(UNET).state_dict().items()}
    path = tmp_path / "bad.safetensors"
    save_file(weights, str(path), metadata={"ays": json.dumps({**UNET, **change})})
    with pytest.raises(AYSError, match=message):
        load_denoiser(str(path))


def test_headroom_few_steps_are_worse_than_many_beyond_the_ci():
    """The reason this model exists: karras at 6 NFE is worse than its own 100-step samples by more
    than 3x the paired CI of the main metric (pixel FD), even at a small sample size."""
    from ays_core.bench import run_bench
    from ays_core.bench_report import headroom

    torch.set_num_threads(1)
    model = load_denoiser(os.path.relpath(digits.BUNDLED_PATCHES_DENOISER))
    result = run_bench(model, ["karras"], samplers=["euler"], nfes=[6], samples=200, seeds=3, seed=1000,
                       progress=False)
    difference, interval = headroom(result, nfes=(6,))[("euler", 6)]
    assert difference > 3 * interval > 0
