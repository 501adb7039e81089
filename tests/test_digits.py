"""The digits checkpoint format: split, loading through `--model FILE`, bad files, training."""
import json
import os

import pytest
import torch

from ays_core.errors import AYSError
from ays_core.models import load_denoiser
from ays_core.models import digits

TINY = {"kind": "denoiser", "name": "tiny", "dataset": "", "data_shape": [1, 4, 4], "width": 8, "depth": 1,
        "emb_dim": 4, "sigma_data": 0.5, "sigma_min": 0.01, "sigma_max": 20.0}


def test_split_halves_are_disjoint_fixed_and_cover_the_data():
    train, train_labels = digits.digits_split("train")
    heldout, _ = digits.digits_split("heldout")
    everything, _ = digits.digits_split("all")
    assert len(train) == 899 and len(heldout) == 898 and train.shape[1:] == (1, 8, 8)
    assert train.min() >= -1 and train.max() <= 1
    rows = {tuple(x.flatten().tolist()) for x in everything}
    assert {tuple(x.flatten().tolist()) for x in torch.cat([train, heldout])} == rows
    again, _ = digits.digits_split("train")
    assert torch.equal(train, again) and len(set(train_labels.tolist())) == 10
    with pytest.raises(AYSError):
        digits.digits_split("test")


def test_bundled_checkpoint_loads_like_any_file():
    model = load_denoiser(os.path.relpath(digits.BUNDLED_DENOISER))
    assert (model.sigma_min, model.sigma_max) == (0.002, 80.0) and model.data_shape == (1, 8, 8)
    assert model.model_info["family"] == "digits-8x8-mlp" and len(model.model_info["sha256"]) == 64
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        assert model(x, torch.full((5,), 1.0)).shape == x.shape
        # c_skip -> 1 and c_out -> 0 as sigma -> 0: the denoiser returns its input.
        assert torch.allclose(model(x, torch.full((5,), 1e-4)), x, atol=1e-3)
    assert model.sample_data(7, generator=torch.Generator().manual_seed(0)).shape == (7, 1, 8, 8)


def test_feature_network_classifies_the_other_half():
    network = digits.load_feature_network()
    images, labels = digits.digits_split("train")  # it was trained on "heldout"
    with torch.no_grad():
        accuracy = (network(images).argmax(1) == labels).float().mean().item()
        assert network.features(images[:3]).shape == (3, network.config["feature_dim"])
    assert accuracy > 0.9


def test_a_tiny_random_network_round_trips_through_a_file(tmp_path):
    torch.manual_seed(0)
    model = digits.EDMDenoiser(TINY)
    path = tmp_path / "tiny.safetensors"
    digits.save_network(model, str(path))
    loaded = load_denoiser(str(path))
    x, sigma = torch.randn(3, 1, 4, 4), torch.tensor([0.1, 1.0, 10.0])
    with torch.no_grad():
        assert torch.allclose(loaded(x, sigma), model(x, sigma))
    assert not hasattr(loaded, "sample_data")  # no known data set: the optimizer needs x0 from the user
    assert loaded.model_info["family"] == "tiny"


def _write(path, tensors, metadata):
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=metadata)
    return str(path)


@pytest.mark.parametrize("case, message", [
    ("garbage", "not a readable safetensors"),
    ("no_metadata", "not an ays checkpoint"),
    ("bad_json", "not valid JSON"),
    ("bad_width", "'width'"),
    ("bad_range", "sigma_min"),
    ("wrong_weights", "do not match"),
    ("classifier", "not a denoiser"),
])
def test_bad_checkpoint_files_are_clear_errors(tmp_path, case, message):
    weights = {key: value.contiguous() for key, value in digits.EDMDenoiser(TINY).state_dict().items()}
    path = tmp_path / "model.safetensors"
    if case == "garbage":
        path.write_bytes(b"\x00\x01not a checkpoint")
    elif case == "no_metadata":
        _write(path, weights, {})
    elif case == "bad_json":
        _write(path, weights, {"ays": "{nope"})
    elif case == "bad_width":
        _write(path, weights, {"ays": json.dumps({**TINY, "width": -8})})
    elif case == "bad_range":
        _write(path, weights, {"ays": json.dumps({**TINY, "sigma_min": 30.0})})
    elif case == "wrong_weights":
        _write(path, weights, {"ays": json.dumps({**TINY, "width": 16})})
    else:
        path = digits.BUNDLED_FEATURES
    with pytest.raises(AYSError, match=message):
        load_denoiser(str(path))


def test_missing_checkpoint_is_a_clear_error():
    with pytest.raises(AYSError, match="not found"):
        load_denoiser("no/such/model.safetensors")


def test_training_is_reproducible_from_the_seed(monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
    import train_digits

    images, _ = digits.digits_split("train")

    def train():
        torch.manual_seed(0)
        model = train_digits.train_denoiser(train_digits.DENOISER_CONFIG, digits.rows_sampler(images[:64]), steps=3,
                                            batch=8, generator=torch.Generator().manual_seed(0))
        return model.state_dict()

    first, second = train(), train()
    assert all(torch.equal(first[key], second[key]) for key in first)
