"""diffusers models (`ays optimize --model diffusers:PATH`, the optional extra) on a tiny pipeline
built here from a config: loading, hashing, conditioning, VAE encoding, and the whole command
from checkpoint to a published registry file that the WebUI stand-in then uses for "AYS"."""
import hashlib
import json
import shutil
import sys

import numpy as np
import pytest
import torch

from ays_core import data
from ays_core.cli import main
from ays_core.errors import AYSError
from ays_core.models import load_denoiser
from ays_core.registry import load_schedule
from tiny_ldm import build_tiny_pipeline, write_images

pytestmark = pytest.mark.usefixtures("one_torch_thread")

pytest.importorskip("diffusers")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny") / "pipe")


def unet_sha256(folder):
    return hashlib.sha256((folder / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()).hexdigest()


def test_pipeline_folder_loads_behind_the_denoiser_contract(pipeline):
    denoiser = load_denoiser(f"diffusers:{pipeline}")
    assert denoiser.model_info["family"] == "sd15" and denoiser.model_info["prediction"] == "eps"
    assert denoiser.model_info["sha256"] == unet_sha256(pipeline) and denoiser.model_info["name"] == "pipe"
    assert denoiser.data_shape == (4, 8, 8)
    assert denoiser.sigma_max == pytest.approx(14.6146412293, rel=1e-4)
    denoiser.set_prompts(["a red cube", "a blue ball"])
    x, sigma = torch.randn(2, 4, 8, 8), torch.tensor([1.0, 1.0])
    same = denoiser(x, sigma, cond_index=torch.tensor([0, 0]))
    mixed = denoiser(x, sigma, cond_index=torch.tensor([0, 1]))
    torch.testing.assert_close(same[0], mixed[0])
    assert not torch.allclose(same[1], mixed[1])  # the prompt reaches the UNet


def test_options_v_prediction_and_bare_unet_folders(pipeline, tmp_path):
    assert load_denoiser(f"diffusers:{pipeline}?sha256={'AB' * 32}").model_info["sha256"] == "ab" * 32
    for spec, message in ((f"diffusers:{pipeline}?sha256=123", "64 hex"), (f"diffusers:{pipeline}?dtype=fp8", "dtype"),
                          (f"diffusers:{pipeline}?cfg=7", "no option"), (f"diffusers:{tmp_path}/none", "no such"),
                          (f"diffusers:{tmp_path}", "not a diffusers")):
        with pytest.raises(AYSError, match=message):
            load_denoiser(spec)

    v_pipe = tmp_path / "v"
    shutil.copytree(pipeline, v_pipe)
    config_path = v_pipe / "scheduler" / "scheduler_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "prediction_type": "v_prediction"}))
    assert load_denoiser(f"diffusers:{v_pipe}").model_info["prediction"] == "v"
    config_path.write_text(json.dumps({**config, "prediction_type": "sample"}))
    with pytest.raises(AYSError, match="prediction_type"):
        load_denoiser(f"diffusers:{v_pipe}")

    bare = tmp_path / "bare"
    shutil.copytree(pipeline / "unet", bare)
    with pytest.raises(AYSError, match="scheduler"):
        load_denoiser(f"diffusers:{bare}")
    denoiser = load_denoiser(f"diffusers:{bare}?scheduler={pipeline / 'scheduler'}")
    assert denoiser(torch.randn(1, 4, 8, 8), torch.ones(1)).shape == (1, 4, 8, 8)
    with pytest.raises(AYSError, match="no text encoder"):
        denoiser.set_prompts(["a cat"])


def test_single_file_without_configs_is_a_clear_error(tmp_path):
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"\0" * 64)
    with pytest.raises(AYSError, match="offline"):
        load_denoiser(f"diffusers:{checkpoint}")


def test_missing_extra_names_the_install_command(monkeypatch, pipeline):
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(AYSError, match=r"pip install 'ays\[diffusers\]'"):
        load_denoiser(f"diffusers:{pipeline}")


def test_images_are_encoded_with_the_pipeline_vae(pipeline, tmp_path):
    denoiser = load_denoiser(f"diffusers:{pipeline}")
    folder = write_images(tmp_path / "images", 2, size=16)
    bank = data.images_bank(denoiser, folder, resolution=16, cache_dir=tmp_path / "cache")
    assert bank.latents.shape == (2, 4, 8, 8) and torch.isfinite(bank.latents).all()
    assert bank.prompts == ["a photo number 0", "a photo number 1"]


def test_optimize_command_publishes_a_schedule_the_webui_uses(pipeline, tmp_path, capsys, monkeypatch):
    from webui_stub import webui_harness as harness

    monkeypatch.delenv("AYS_REGISTRY", raising=False)
    registry, out = tmp_path / "registry", tmp_path / "schedule.json"
    status = main(["optimize", "--model", f"diffusers:{pipeline}", "--prompt", "a red cube", "--prompt", "a blue ball",
                   "--steps", "3", "--refine", "0", "--samples", "16", "--step-counts", "2", "--teacher-samples", "4",
                   "--data-samples", "4", "--data-steps", "10", "--cache-dir", str(tmp_path / "cache"),
                   "--out", str(out), "--publish", "--registry", str(registry)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "denoiser evaluations" in printed and "path table: 768" in printed  # 48 grid points x 16 samples
    assert "teacher:" not in printed  # DPM++ 2M: the data-free draws are the teacher
    sha = unet_sha256(pipeline)
    schedule = load_schedule(registry / f"sd15-{sha[:10]}" / "v1.json")
    assert schedule.model["sha256"] == sha and schedule.doc["provenance"]["source"] == "optimized"
    assert "data-free" in schedule.doc["provenance"]["data"] and len(schedule.sigmas) == 4
    exact = schedule.doc["step_schedules"]["3"]  # made for 3 steps: the WebUI must use it as it is
    assert sorted(schedule.doc["step_schedules"]) == ["2", "3"] and len(exact) == 3

    webui = harness.start_webui(sd_model=harness.FakeSDModel("sd15", sha256=sha),
                                settings={"ays_registry_dirs": str(registry)})
    try:
        p = webui.processing.StableDiffusionProcessing(scheduler="AYS", steps=3)
        processed = webui.processing.process_images(p)
    finally:
        harness.stop_webui()
    assert f"AYS schedule: sd15-{sha[:10]}@v1" in processed.infotext
    np.testing.assert_allclose(processed.first_pass_sigmas.numpy(), [*exact, 0], rtol=1e-4)


def test_optimize_command_refuses_missing_or_misplaced_data(pipeline, capsys):
    assert main(["optimize", "--model", f"diffusers:{pipeline}", "--steps", "3", "--publish"]) == 2
    assert "needs x0 data" in capsys.readouterr().err
    assert main(["optimize", "--model", "toy:gaussian", "--prompt", "a cat", "--publish"]) == 2
    assert "only for latent diffusion models" in capsys.readouterr().err


def test_dry_run_of_a_folder_loads_no_weights(pipeline, tmp_path, capsys):
    configs = tmp_path / "configs"
    shutil.copytree(pipeline, configs, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    assert main(["optimize", "--model", f"diffusers:{configs}", "--dry-run", "--samples", "64"]) == 0
    printed = capsys.readouterr().out
    assert "path table: 3,072" in printed and "memory:" in printed  # 48 grid points x 64 samples and "UNet rows per evaluation: 2" in printed


def test_sdxl_layout_conditions_on_both_encoders_and_the_size(tmp_path):
    pipe = build_tiny_pipeline(tmp_path / "xl", xl=True)
    denoiser = load_denoiser(f"diffusers:{pipe}")
    assert denoiser.model_info["family"] == "sdxl"
    denoiser.set_prompts(["a red cube", "a blue ball"])
    cond = denoiser.cond
    assert cond["crossattn"].shape == (2, 77, 32) and cond["pooled"].shape == (2, 8)
    assert cond["time_ids"].tolist()[0] == [16, 16, 0, 0, 16, 16]
    x, sigma = torch.randn(2, 4, 8, 8), torch.ones(2)
    assert not torch.allclose(denoiser(x, sigma, cond_index=torch.tensor([0, 0]))[1],
                              denoiser(x, sigma, cond_index=torch.tensor([0, 1]))[1])
