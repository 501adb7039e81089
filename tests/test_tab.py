"""The WebUI's "AYS" tab and its API routes (scripts/ays_tab.py over ays_core.tune.Job), on the
stand-in WebUI with a tiny CompVis-style model as the loaded checkpoint: the k-diffusion wrapper
path the WebUI samples with, end to end to a published schedule that "AYS" then uses."""
import json

import numpy as np
import pytest
import torch

from ays_core.registry import load_schedule
from ays_core import tune
from ays_core.tune import job_for, request_settings
from ays_core.errors import AYSError
from by_hand import sampling_sigmas
from tiny_ldm import TinyCompVisModel, forge_style_engine
from webui_stub import webui_harness as harness

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHA = "cd" * 32
QUICK = {"prompts": "a cat\na dog", "steps": 3, "samples": 16, "data_samples": 4, "refine": 0, "resolution": 64,
         "validation_samples": 4}


def tiny_checkpoint(sha256=SHA):
    model = TinyCompVisModel()
    model.sd_checkpoint_info = harness.checkpoint_info(sha256, "tiny.safetensors")
    model.is_sd1, model.is_sd2, model.is_sdxl = True, False, False
    return model


@pytest.fixture
def tab(tmp_path, monkeypatch):
    monkeypatch.setenv("AYS_REGISTRY", str(tmp_path / "registry"))  # where `ays` and the tab publish
    webui = harness.start_webui(sd_model=tiny_checkpoint())
    webui.ays.tab.JOB = job_for(tmp_path / "job")
    yield webui
    webui.ays.tab.JOB.stop()
    assert webui.ays.tab.JOB.wait(900)  # no job thread outlives its test
    harness.stop_webui()


def client_for(webui):
    import fastapi
    from fastapi.testclient import TestClient

    app = fastapi.FastAPI()
    webui.script_callbacks.app_started_callback(None, app)
    return TestClient(app)


def test_tab_is_added_with_its_controls(tab):
    ((blocks, title, element_id),) = tab.script_callbacks.ui_tabs_callback()
    assert title == "AYS" and element_id == "ays_optimize"
    assert blocks.loads and blocks.loads[0][3] == 2  # live refresh every 2 s
    checkpoint, status, curve, image = tab.ays.tab.refresh()
    assert "tiny.safetensors" in checkpoint and "cdcdcdcdcd" in checkpoint and "idle" in status


def test_api_run_publishes_a_schedule_the_scheduler_then_uses(tab, tmp_path):
    client = client_for(tab)
    response = client.post("/ays/v1/optimize", json={**QUICK, "cfg_scale": 3.0})
    assert response.status_code == 200 and response.json()["state"] == "running"
    assert tab.ays.tab.JOB.wait(900)
    status = client.get("/ays/v1/optimize").json()
    assert status["state"] == "done", status["message"]
    assert status["history"] and status["evaluations"] > 0 and status["result"]["ref"] == f"sd15-{SHA[:10]}@v1"
    assert tab.shared.state.jobs_run == ["ays_optimize"]  # it ran as a WebUI job under the queue lock
    assert tab.shared.state.sampling_step == status["evaluations"] > 0  # the WebUI's progress fields
    schedule = load_schedule(tmp_path / "registry" / f"sd15-{SHA[:10]}" / "v1.json")
    assert schedule.model["sha256"] == SHA and len(schedule.sigmas) == 4
    provenance = schedule.doc["provenance"]
    assert provenance["settings"]["cfg_scale"] == 3.0 and "CFG 3" in provenance["data"]  # x0 drawn with guidance 3
    assert (tmp_path / "job" / "plot.png").stat().st_size > 0

    harness.stop_webui()
    webui = harness.start_webui(sd_model=tiny_checkpoint())
    p = webui.processing.StableDiffusionProcessing(scheduler="AYS", steps=3)
    processed = webui.processing.process_images(p)
    assert f"AYS schedule: sd15-{SHA[:10]}@v1" in processed.infotext
    np.testing.assert_allclose(processed.first_pass_sigmas.numpy(), sampling_sigmas(schedule.sigmas, 3), rtol=1e-4)


def test_stop_keeps_the_work_and_resume_after_a_restart_finishes_it(tab, tmp_path):
    job = tab.ays.tab.JOB
    stop_after = {"calls": 0}
    model = tab.shared.sd_model
    original = model.apply_model

    def apply_then_stop(*args, **kwargs):  # press "Stop" once the search has saved an iteration
        stop_after["calls"] += 1
        if stop_after["calls"] % 5 == 0 and len(job.history()) >= 2:
            job.stop()
        return original(*args, **kwargs)

    model.apply_model = apply_then_stop
    tab.ays.tab.start({**QUICK, "samples": 8, "mode": "paper", "solver": "euler"})
    assert job.wait(900)
    status = job.status()
    assert status["state"] == "stopped" and status["resumable"]
    assert status["history"]  # iterations done before the stop are in the state file
    assert job.saved_job()["state"] == "stopped"
    model.apply_model = original

    # a WebUI restart (or a killed process, whose job file still says "running"): a new Job object
    saved = json.loads((tmp_path / "job" / "job.json").read_text())
    (tmp_path / "job" / "job.json").write_text(json.dumps({**saved, "state": "running"}))
    tune._JOBS.clear()
    job = tab.ays.tab.JOB = job_for(tmp_path / "job")
    assert job.status()["resumable"] and job.status()["history"]
    client = client_for(tab)
    assert client.post("/ays/v1/optimize/resume", json={}).status_code == 200
    assert job.wait(900)
    assert job.status()["state"] == "done"
    assert load_schedule(tmp_path / "registry" / f"sd15-{SHA[:10]}" / "v1.json").doc["provenance"]["settings"]["mode"] == "paper"


def test_webui_interrupt_stops_the_job(tab):
    tab.shared.state.interrupted = True  # the WebUI's Interrupt button; begin() clears it first
    job = tab.ays.tab.JOB
    model = tab.shared.sd_model
    original = model.apply_model

    def interrupt_later(*args, **kwargs):
        tab.shared.state.interrupt()
        return original(*args, **kwargs)

    model.apply_model = interrupt_later
    tab.ays.tab.start(QUICK)
    assert job.wait(900)
    assert job.status()["state"] == "stopped"


def test_bad_requests_get_clear_errors(tab):
    client = client_for(tab)
    for body, message in (({"steps": 1, "prompts": "x"}, "steps"), ({"prompts": ""}, "prompt"),
                          ({"data": "images"}, "image folder"), ({"cfg_scale": "7", "prompts": "x"}, "cfg_scale"),
                          ({"sampels": 3}, "unknown setting")):
        response = client.post("/ays/v1/optimize", json=body)
        assert response.status_code == 422 and message in response.json()["detail"], body
    assert client.post("/ays/v1/optimize/resume", json={}).status_code == 422  # nothing to resume
    assert client.post("/ays/v1/optimize/stop", json={}).json()["state"] == "idle"

    tab.shared.sd_model = tiny_checkpoint(sha256=None)
    checkpoint, status, *_ = tab.ays.tab.on_start("prompts", "a cat", "", "", 2, 3, 7.0, 16, 4, "fast", "euler", 64, True)
    assert "no sha256" in status


def test_the_tab_calls_settings_by_their_labels_and_the_api_by_their_keys(tab):
    _, status, *_ = tab.ays.tab.on_start("prompts", "a cat", "", "", 2, 50, 7.0, 16, 4, "fast", "euler", 64, True)
    assert 'Error: "Steps of the optimized stage" must be between 2 and 40 here, got 50' in status
    _, status, *_ = tab.ays.tab.on_start("prompts", "a cat", "", "", 2, 3, 7.0, 16, 4, "fast", "euler", 100, True)
    assert 'Error: "Resolution (0: the model\'s native)" must be 0 (native) or a multiple of 8 >= 64, got 100' in status
    response = client_for(tab).post("/ays/v1/optimize", json={"prompts": "a cat", "resolution": 100})
    assert response.json()["detail"] == "resolution must be 0 (native) or a multiple of 8 >= 64, got 100"
    _, status, *_ = tab.ays.tab.on_start("prompts", "a cat", "", "", 2, 3, 7.0, None, 4, "fast", "euler", 64, True)
    assert 'Error: "Sample budget (x0 samples of the KLUB)" is empty; give a number' in status  # a cleared field
    _, status, *_ = tab.ays.tab.on_start("images", "", "", "photos", 9, 3, 7.0, 16, 4, "fast", "euler", 64, True)
    assert 'Error: "Passes of the search on the images (0: none; each pass adds time)" must be between 0 and 4 ' \
           'here, got 9' in status
    response = client_for(tab).post("/ays/v1/optimize", json={"prompts": "a cat", "data_search_passes": 5})
    assert response.json()["detail"] == "data_search_passes must be between 0 and 4 here, got 5"
    for body, message in (({"data_search_passes": 11}, "data_search_passes must be between 0 and 4 here, got 11"),
                          ({"steps": 5000}, "steps must be between 2 and 40 here, got 5000")):  # past RunSettings' bounds too
        response = client_for(tab).post("/ays/v1/optimize", json={"prompts": "a cat", **body})
        assert response.json()["detail"] == message
    assert tune.request_settings({"prompts": "a cat", "data_search_passes": 0}).data_search_passes == 0
    assert tab.ays.tab.JOB.status()["state"] == "idle"


def test_a_job_saved_by_the_version_before_run_settings_resumes(tab, tmp_path):
    job = tab.ays.tab.JOB
    tab.ays.tab.start(QUICK)
    assert job.wait(900) and job.status()["state"] == "done"
    saved = json.loads((tmp_path / "job" / "job.json").read_text())
    # the request fields of that version (data_search_passes came later)
    fields = ("prompts", "prompts_file", "image_folder", "steps", "cfg_scale", "samples", "validation_samples",
              "data_samples", "mode", "solver", "refine", "resolution", "seed", "negative_prompt", "publish")
    old = {"data": "prompts", **{key: saved["settings"][key] for key in fields}}
    (tmp_path / "job" / "job.json").write_text(json.dumps({**saved, "settings": old, "state": "stopped"}))
    assert job.status()["resumable"]
    tab.ays.tab.start(None, resume=True)
    assert job.wait(900) and job.status()["state"] == "done", job.status()["message"]


def test_reload_ui_finds_the_same_job(tmp_path):
    assert job_for(tmp_path / "job") is job_for(str(tmp_path / "job"))


def test_settings_validation():
    assert request_settings({"prompts": "x", "cfg_scale": 5}).cfg_scale == 5.0
    with pytest.raises(AYSError, match="mode"):
        request_settings({"prompts": "x", "mode": "slow"})
    with pytest.raises(AYSError, match="multiple of 8"):
        request_settings({"prompts": "x", "resolution": 100})
    with pytest.raises(AYSError, match="JSON object"):
        request_settings([1])


def test_guidance_mixes_the_conditional_and_unconditional_predictions(tab):
    denoiser = tab.ays.tab.loaded_denoiser()
    assert denoiser.model is tab.shared.sd_model  # the WebUI's model itself, no copy
    x = torch.randn(2, *denoiser.data_shape, generator=torch.Generator().manual_seed(0))
    sigma = torch.full((2,), 2.0)

    def predict(prompt, scale):
        denoiser.set_prompts([prompt], negative_prompt="")
        denoiser.cfg_scale = scale
        return denoiser(x, sigma)

    conditional, unconditional = predict("a cat", 1.0), predict("", 1.0)  # scale 1: the prompt alone
    assert not torch.allclose(conditional, unconditional)
    torch.testing.assert_close(predict("a cat", 5.0), unconditional + 5.0 * (conditional - unconditional),
                               rtol=1e-4, atol=1e-5)


def test_forge_runs_on_its_loaded_unet_model_with_progress_stop_and_resume(tmp_path, monkeypatch):
    """Forge's engine (no CompVis interface): the job drives forge_objects.unet.model itself,
    asks Forge's memory manager to keep it loaded, stops, resumes and publishes like A1111."""
    monkeypatch.setenv("AYS_REGISTRY", str(tmp_path / "registry"))
    engine = forge_style_engine()
    engine.sd_checkpoint_info = harness.checkpoint_info(SHA, "forge.safetensors")
    webui = harness.start_webui(sd_model=engine)
    from modules import sd_models

    reloads = []
    sd_models.forge_model_reload = lambda: reloads.append(1)  # Forge loads the checkpoint on first use
    try:
        job = webui.ays.tab.JOB = job_for(tmp_path / "job")
        kmodel = engine.forge_objects.unet.model
        original = kmodel.apply_model

        def apply_then_stop(*args, **kwargs):  # press "Stop" once an iteration is saved
            if len(job.history()) >= 1 and job.status()["state"] == "running":
                job.stop()
            return original(*args, **kwargs)

        kmodel.apply_model = apply_then_stop
        client = client_for(webui)
        assert client.post("/ays/v1/optimize", json={**QUICK, "mode": "paper", "samples": 8}).status_code == 200
        assert job.wait(900)
        status = client.get("/ays/v1/optimize").json()
        assert status["state"] == "stopped" and status["resumable"] and status["history"]
        assert webui.shared.state.sampling_step == status["evaluations"] > 0  # the WebUI's progress fields
        kmodel.apply_model = original

        assert client.post("/ays/v1/optimize/resume", json={}).status_code == 200
        assert job.wait(900)
        status = client.get("/ays/v1/optimize").json()
        assert status["state"] == "done", status["message"]
        assert status["result"]["ref"] == f"sd15-{SHA[:10]}@v1"
        assert kmodel.crossattn_seen  # the engine's own UNet model did the work
        from backend import memory_management

        assert memory_management.loaded and all(models == [engine.forge_objects.unet] for models in memory_management.loaded)
        assert webui.shared.state.jobs_run == ["ays_optimize", "ays_optimize"]
        assert reloads == [1, 1]  # start and resume each made sure the selected checkpoint was loaded

    finally:
        webui.ays.tab.JOB.stop()
        assert webui.ays.tab.JOB.wait(900)  # no job thread outlives its test
        harness.stop_webui()
    webui = harness.start_webui(sd_model=engine)  # the next generation, with the scheduler script
    try:
        p = webui.processing.StableDiffusionProcessing(scheduler="AYS", steps=3)
        assert f"AYS schedule: sd15-{SHA[:10]}@v1" in webui.processing.process_images(p).infotext
    finally:
        harness.stop_webui()
