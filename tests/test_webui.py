"""The WebUI extension (scripts/*.py over ays_webui) against the stand-in WebUI in tests/webui_stub/.

The stand-in mirrors A1111 1.10 / Forge for the 1.9+ scheduler API and A1111 1.3-1.8 for the
older sampler-name API; each test drives a generation the way the WebUI does and checks the
sigmas the k-diffusion sampler would actually receive.
"""
import numpy as np
import pytest
import torch

from ays_core.registry import RegistrySet, load_schedule, new_schedule_doc
from by_hand import PUBLISHED_SD15, PUBLISHED_SDXL, sampling_sigmas
from webui_stub import webui_harness as harness

REPO = harness.REPO
SD15 = load_schedule(REPO / "registry" / "sd15" / "v2.json").sigmas
SDXL = load_schedule(REPO / "registry" / "sdxl" / "v2.json").sigmas
SHA = "ab" * 32
pytestmark = pytest.mark.usefixtures("no_env_registry")


@pytest.fixture
def webui():
    yield harness.start_webui()
    harness.stop_webui()


@pytest.fixture
def legacy_webui():
    yield harness.start_webui(legacy=True)
    harness.stop_webui()


def model_range(w):
    alphas = w.shared.sd_model.alphas_cumprod.double()
    table = ((1 - alphas) / alphas).sqrt().float()
    return table[0].item(), table[-1].item()


def expected(w, stored, steps, convention="ays"):
    lo, hi = model_range(w)
    return torch.tensor(sampling_sigmas(stored, steps, lo, hi, convention), dtype=torch.float32)


def assert_sdxl_at_10_steps(sigmas):
    """The shipped SDXL list (its sigma_min replaced by 0), which is the paper's published one exactly."""
    assert torch.equal(sigmas, torch.tensor(PUBLISHED_SDXL[:-1] + (0.0,), dtype=torch.float32))


def generate(w, **fields):
    p = w.processing.StableDiffusionProcessing(**fields)
    return p, w.processing.process_images(p)


def infotext_params(processed):
    from modules import infotext_utils

    return infotext_utils.parse_generation_parameters(processed.infotext)


def publish(root, schedule_id, sigmas, **model):
    """Publish into a user registry at `root` the way `ays` does (versions above the shipped)."""
    doc = new_schedule_doc(schedule_id, sigmas, family=model.pop("family", "sd15"), prediction="eps",
                           source="optimized", solver="euler", samples=8, data="test", **model)
    return RegistrySet([root, REPO / "registry"]).publish(doc)


# ---------------------------------------------------------------- registration (1.9+, Forge)

def test_ays_is_registered_under_name_and_label_and_listed_everywhere(webui):
    schedulers = webui.sd_schedulers
    entry = schedulers.schedulers_map["ays"]
    assert schedulers.schedulers_map["AYS"] is entry and entry in schedulers.schedulers
    assert [s.name for s in schedulers.schedulers].count("ays") == 1
    # dropdowns and the XYZ grid list the labels of sd_schedulers.schedulers
    assert "AYS" in [s.label for s in schedulers.schedulers]
    api_entry = [s for s in webui.api.get_schedulers() if s["name"] == "ays"]
    assert api_entry == [{"name": "ays", "label": "AYS", "aliases": None, "default_rho": -1, "need_inner_model": True}]
    assert webui.sd_samplers.get_sampler_and_scheduler("Euler", "ays") == ("Euler", "AYS")


def test_builtin_align_your_steps_is_left_alone(webui):
    builtin = webui.sd_schedulers.schedulers_map["Align Your Steps"]
    assert builtin.name == "align_your_steps" and builtin.function.__module__ == "modules.sd_schedulers"
    p, processed = generate(webui, scheduler="Align Your Steps", steps=10)
    assert "AYS schedule" not in infotext_params(processed)


def test_reload_ui_replaces_the_entry_in_place(webui):
    first = webui.sd_schedulers.schedulers_map["ays"]
    position = [s.name for s in webui.sd_schedulers.schedulers].index("ays")
    again = harness.start_webui()  # "Reload UI": scripts re-run; sd_schedulers and the package ays_webui kept
    names = [s.name for s in again.sd_schedulers.schedulers]
    entry = again.sd_schedulers.schedulers_map["ays"]
    assert names.count("ays") == 1 and names.index("ays") == position
    assert entry is not first and again.sd_schedulers.schedulers[position] is entry  # registered anew
    assert again.sd_schedulers.schedulers_map["AYS"] is entry
    assert again.ays is webui.ays and entry.function is again.ays.scheduler.ays_scheduler


def test_resolver_cache_from_before_registration_is_cleared():
    harness.stop_webui()
    harness.use_stub_path()
    from modules import sd_samplers

    assert sd_samplers.get_sampler_and_scheduler("Euler", "AYS") == ("Euler", "Automatic")  # now cached
    webui = harness.start_webui()
    try:
        assert webui.sd_samplers.get_sampler_and_scheduler("Euler", "AYS") == ("Euler", "AYS")
        assert webui.sd_samplers.get_sampler_and_scheduler("Euler AYS", None) == ("Euler", "AYS")
    finally:
        harness.stop_webui()


# ---------------------------------------------------------------- the sigmas actually used

@pytest.mark.parametrize("steps", [1, 5, 10, 20, 37])
def test_txt2img_uses_the_family_schedule_resampled_to_the_steps(webui, steps):
    _, processed = generate(webui, scheduler="AYS", steps=steps)
    used = processed.first_pass_sigmas
    assert len(used) == steps + 1 and used[-1] == 0
    torch.testing.assert_close(used, expected(webui, SD15, steps))
    if steps == 10:  # the paper's published list exactly, its final sigma_min replaced by 0
        assert torch.equal(used, torch.tensor(PUBLISHED_SD15[:-1] + (0.0,), dtype=torch.float32))
    if steps == 20:  # every other point a shipped one, the others the geometric means of their neighbours
        np.testing.assert_allclose(used[:-1:2].numpy(), SD15[:-1], rtol=5e-5)
        np.testing.assert_allclose(used[1:-1:2].numpy(), np.sqrt(SD15[:-1] * SD15[1:]), rtol=5e-5)


@pytest.mark.parametrize("denoise", [0.05, 0.3, 0.5, 0.75, 1.0])
def test_img2img_uses_the_webui_tail_of_the_full_schedule(webui, denoise):
    steps = 20
    _, processed = generate(webui, scheduler="AYS", steps=steps, is_img2img=True, denoising_strength=denoise)
    t_enc = int(min(denoise, 0.999) * steps)
    torch.testing.assert_close(processed.first_pass_sigmas, expected(webui, SD15, steps)[steps - t_enc - 1:])
    assert len(processed.first_pass_sigmas) == t_enc + 2


@pytest.mark.parametrize("denoise", [0.3, 0.5, 0.75])
def test_img2img_with_fix_steps_runs_exactly_the_requested_steps(webui, denoise):
    webui.shared.opts.set("img2img_fix_steps", True)
    steps = 20
    _, processed = generate(webui, scheduler="AYS", steps=steps, is_img2img=True, denoising_strength=denoise)
    total = int(steps / min(denoise, 0.999))
    torch.testing.assert_close(processed.first_pass_sigmas, expected(webui, SD15, total)[total - steps:])
    assert len(processed.first_pass_sigmas) == steps + 1


def test_hires_fix_gets_its_own_schedule_through_the_webui_truncation(webui):
    _, processed = generate(webui, scheduler="AYS", steps=20, enable_hr=True, hr_second_pass_steps=10,
                            denoising_strength=0.5)
    torch.testing.assert_close(processed.first_pass_sigmas, expected(webui, SD15, 20))
    total = int(10 / 0.5)
    torch.testing.assert_close(processed.hires_sigmas, expected(webui, SD15, total)[total - 10:])
    assert infotext_params(processed)["AYS schedule"] == "sd15@v2"


def test_hires_only_ays_is_recorded_too(webui):
    _, processed = generate(webui, scheduler="Karras", steps=12, enable_hr=True, hr_scheduler="AYS",
                            denoising_strength=0.7)
    params = infotext_params(processed)
    assert params["Schedule type"] == "Karras" and params["AYS schedule"] == "sd15@v2"
    total = int(12 / 0.7)
    torch.testing.assert_close(processed.hires_sigmas, expected(webui, SD15, total)[total - 12:])


def test_hires_checkpoint_of_another_family_is_recorded_separately(webui):
    _, processed = generate(webui, scheduler="AYS", steps=10, enable_hr=True, denoising_strength=0.5,
                            hr_sd_model=harness.FakeSDModel("sdxl"))
    params = infotext_params(processed)
    assert (params["AYS schedule"], params["Hires AYS schedule"]) == ("sd15@v2", "sdxl@v2")
    np.testing.assert_allclose(processed.hires_sigmas.numpy(), expected(webui, SDXL, 20)[10:].numpy(), rtol=1e-6)


def test_discarded_penultimate_sigma_is_handled_by_the_webui(webui):
    _, processed = generate(webui, sampler_name="DPM2", scheduler="AYS", steps=10)
    full = expected(webui, SD15, 11)
    torch.testing.assert_close(processed.first_pass_sigmas, torch.cat([full[:-2], full[-1:]]))


def test_user_sigma_range_is_respected(webui):
    webui.shared.opts.set("sigma_min", 0.1)
    webui.shared.opts.set("sigma_max", 10.0)
    _, processed = generate(webui, scheduler="AYS", steps=8)
    used = processed.first_pass_sigmas
    assert used[0].item() == pytest.approx(10.0, rel=1e-6) and used[-2].item() > 0.1
    torch.testing.assert_close(used, torch.tensor(sampling_sigmas(SD15, 8, 0.1, 10.0), dtype=torch.float32))


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_a1111_convention_setting_is_the_builtin_scheduler_bit_for_bit(webui, family):
    """The stand-in's "Align Your Steps" is the WebUI's formula with the published lists typed in
    (tests/webui_stub/modules/sd_schedulers.py), independent of registry/ and ays_core.interp."""
    webui.shared.sd_model = harness.FakeSDModel(family)
    webui.shared.opts.set("ays_a1111_convention", True)
    for steps in range(1, 151):
        _, ours = generate(webui, scheduler="AYS", steps=steps)
        _, builtin = generate(webui, scheduler="Align Your Steps", steps=steps)
        assert torch.equal(ours.first_pass_sigmas, builtin.first_pass_sigmas), steps
    assert infotext_params(ours)["AYS A1111 convention"] == "True"
    torch.testing.assert_close(ours.first_pass_sigmas, expected(webui, SD15 if family == "sd15" else SDXL, 150,
                                                                convention="a1111"))


# ---------------------------------------------------------------- which schedule

def test_sdxl_checkpoint_gets_the_sdxl_schedule():
    webui = harness.start_webui(sd_model=harness.FakeSDModel("sdxl"))
    try:
        _, processed = generate(webui, scheduler="AYS", steps=10)
        assert_sdxl_at_10_steps(processed.first_pass_sigmas)
        assert infotext_params(processed)["AYS schedule"] == "sdxl@v2"
    finally:
        harness.stop_webui()


def test_sd2_v_prediction_gets_a_warned_fallback_not_silent_sd15(capsys):
    webui = harness.start_webui(sd_model=harness.FakeSDModel("sd2", parameterization="v"))
    try:
        _, processed = generate(webui, scheduler="AYS", steps=10)
        warning = capsys.readouterr().err
        assert "AYS:" in warning and "sd2" in warning and "v-prediction" in warning and "sd15@v2" in warning
        assert infotext_params(processed)["AYS schedule"] == "sd15@v2"
        generate(webui, scheduler="AYS", steps=10)
        assert capsys.readouterr().err == ""  # once, not per generation
    finally:
        harness.stop_webui()


def test_unknown_family_is_rescaled_to_the_model_range_with_a_warning(capsys):
    model = harness.fake_forge_model("Flux", prediction_type="const", sigmas=torch.linspace(0.002, 1.0, 1000))
    webui = harness.start_webui(sd_model=model)
    try:
        sigmas = webui.ays.scheduler.ays_scheduler(n=10, sigma_min=0.002, sigma_max=1.0, device="cpu")
        assert "flux" in capsys.readouterr().err
        torch.testing.assert_close(sigmas, torch.tensor(sampling_sigmas(SD15, 10, 0.002, 1.0), dtype=torch.float32))
        assert sigmas[0].item() == pytest.approx(1.0)
    finally:
        harness.stop_webui()


def test_checkpoint_schedule_wins_by_sha256_then_shorthash(tmp_path, capsys):
    own = np.geomspace(14.6146412293, 0.0291671582, 11)
    publish(tmp_path / "user-registry", "my-finetune", own, sha256=SHA)
    for model in (harness.FakeSDModel("sd15", sha256=SHA), harness.FakeSDModel("sd15")):
        if model.sd_checkpoint_info.sha256 is None:  # WebUI knows only the shorthash
            model.sd_checkpoint_info.shorthash = SHA[:10]
        webui = harness.start_webui(sd_model=model, settings={"ays_registry_dirs": str(tmp_path / "user-registry")})
        try:
            _, processed = generate(webui, scheduler="AYS", steps=10)
            np.testing.assert_allclose(processed.first_pass_sigmas[:-1].numpy(), own[:-1], rtol=5e-5)
            assert infotext_params(processed)["AYS schedule"] == "my-finetune@v1"
        finally:
            harness.stop_webui()
    assert capsys.readouterr().err == ""


def test_pinned_schedule_setting(webui, capsys):
    webui.shared.opts.set("ays_schedule", "sdxl@v2")
    _, processed = generate(webui, scheduler="AYS", steps=10)
    assert_sdxl_at_10_steps(processed.first_pass_sigmas)
    webui.shared.opts.set("ays_schedule", "nope@v9")
    _, processed = generate(webui, scheduler="AYS", steps=10)
    assert "nope@v9" in capsys.readouterr().err
    assert infotext_params(processed)["AYS schedule"] == "sd15@v2"


def test_new_published_version_is_picked_up_without_restart(tmp_path, webui):
    root = tmp_path / "user-registry"
    publish(root, "sd15", np.geomspace(14.6146412293, 0.0291671582, 11))
    webui.shared.opts.set("ays_registry_dirs", str(root))
    _, first = generate(webui, scheduler="AYS", steps=10)
    assert infotext_params(first)["AYS schedule"] == "sd15@v3"  # v1 and v2 are the shipped ones
    publish(root, "sd15", np.geomspace(14.6146412293, 0.0291671582, 21))
    _, second = generate(webui, scheduler="AYS", steps=10)
    assert infotext_params(second)["AYS schedule"] == "sd15@v4"


def test_xyz_grid_cells_sharing_extra_params_each_record_their_own_schedule(webui):
    """xyz_grid runs each cell as process_images(copy(p)): a shallow copy, one shared
    extra_generation_params dict (scripts/xyz_grid.py, A1111 1.10 / Forge)."""
    import copy

    base = webui.processing.StableDiffusionProcessing(scheduler="AYS", steps=10)
    cells = [("AYS", harness.FakeSDModel("sdxl"), "sdxl@v2"), ("AYS", harness.FakeSDModel("sd15"), "sd15@v2"),
             ("Karras", harness.FakeSDModel("sd15"), None)]
    for scheduler, model, ref in cells:
        webui.shared.sd_model = model
        cell = copy.copy(base)
        cell.scheduler = scheduler
        assert cell.extra_generation_params is base.extra_generation_params
        assert infotext_params(webui.processing.process_images(cell)).get("AYS schedule") == ref


# ---------------------------------------------------------------- infotext round trip

def test_pasting_the_infotext_restores_the_schedule_version(tmp_path, webui):
    _, original = generate(webui, scheduler="AYS", steps=10)
    params = infotext_params(original)
    assert params["Schedule type"] == "AYS" and params["AYS schedule"] == "sd15@v2"

    # later the user publishes a better sd15 schedule: automatic now picks v3 ...
    publish(tmp_path / "user-registry", "sd15", np.geomspace(14.6146412293, 0.0291671582, 11))
    webui.shared.opts.set("ays_registry_dirs", str(tmp_path / "user-registry"))
    _, later = generate(webui, scheduler="AYS", steps=10)
    assert infotext_params(later)["AYS schedule"] == "sd15@v3"

    # ... but pasting the old infotext pins sd15@v2 for that generation (override settings)
    overrides = webui.infotext_utils.get_override_settings(params)
    assert ("AYS schedule", "ays_schedule", "sd15@v2") in overrides
    _, pasted = generate(webui, scheduler=webui.sd_samplers.get_scheduler_from_infotext(params), steps=10,
                         override_settings={setting: value for _, setting, value in overrides})
    torch.testing.assert_close(pasted.first_pass_sigmas, original.first_pass_sigmas)
    assert infotext_params(pasted)["AYS schedule"] == "sd15@v2"
    assert webui.shared.opts.ays_schedule == "Automatic"  # the override was for that generation only


def test_infotexts_naming_sd15_v1_keep_their_sigmas(webui):
    """sd15@v1 (SD's noise table read at the published timesteps) stays in the registry: an image
    made before the published sigmas shipped as v2 is reproduced by pasting its infotext."""
    params = webui.infotext_utils.parse_generation_parameters("Steps: 10, Sampler: Euler, Schedule type: AYS, "
                                                              "AYS schedule: sd15@v1")
    overrides = {setting: value for _, setting, value in webui.infotext_utils.get_override_settings(params)}
    _, pasted = generate(webui, scheduler="AYS", steps=10, override_settings=overrides)
    v1 = load_schedule(REPO / "registry" / "sd15" / "v1.json").sigmas
    torch.testing.assert_close(pasted.first_pass_sigmas, expected(webui, v1, 10))
    assert pasted.first_pass_sigmas[2].item() == pytest.approx(3.8636746, rel=1e-6)  # not the published 3.861
    assert infotext_params(pasted)["AYS schedule"] == "sd15@v1"


def test_pasting_the_infotext_restores_the_hires_schedule_too(tmp_path, webui):
    hires_model = harness.FakeSDModel("sdxl")
    fields = {"scheduler": "AYS", "steps": 10, "enable_hr": True, "denoising_strength": 0.5}
    _, original = generate(webui, hr_sd_model=hires_model, **fields)
    params = infotext_params(original)
    first_ref, hires_ref = params["AYS schedule"], params["Hires AYS schedule"]
    assert first_ref.startswith("sd15@") and hires_ref.startswith("sdxl@")

    # a newer sdxl schedule appears: automatic now gives the hires pass other sigmas ...
    newer = publish(tmp_path / "user-registry", "sdxl", np.geomspace(14.6146412293, 0.0291671582, 11), family="sdxl")
    webui.shared.opts.set("ays_registry_dirs", str(tmp_path / "user-registry"))
    webui.shared.sd_model = harness.FakeSDModel("sd15")
    _, later = generate(webui, hr_sd_model=hires_model, **fields)
    assert infotext_params(later)["Hires AYS schedule"] == newer.ref
    assert not torch.equal(later.hires_sigmas, original.hires_sigmas)

    # ... pasting the old infotext pins both passes to what they used
    overrides = {setting: value for _, setting, value in webui.infotext_utils.get_override_settings(params)}
    assert overrides["ays_schedule"] == first_ref and overrides["ays_hires_schedule"] == hires_ref
    webui.shared.sd_model = harness.FakeSDModel("sd15")
    _, pasted = generate(webui, hr_sd_model=hires_model, override_settings=overrides, **fields)
    torch.testing.assert_close(pasted.hires_sigmas, original.hires_sigmas)
    torch.testing.assert_close(pasted.first_pass_sigmas, original.first_pass_sigmas)
    assert infotext_params(pasted)["Hires AYS schedule"] == hires_ref


# ---------------------------------------------------------------- never break the WebUI

def test_missing_and_corrupt_registries_fall_back_with_one_line(tmp_path, webui, capsys):
    corrupt = tmp_path / "corrupt"
    (corrupt / "sd15").mkdir(parents=True)
    (corrupt / "sd15" / "v7.json").write_text("{not json")
    (corrupt / "index.json").write_text("garbage")
    webui.shared.opts.set("ays_registry_dirs", f"{tmp_path / 'missing'};{corrupt}")
    _, processed = generate(webui, scheduler="AYS", steps=10)
    torch.testing.assert_close(processed.first_pass_sigmas, expected(webui, SD15, 10))
    err = capsys.readouterr().err
    assert f"{tmp_path / 'missing'} is missing or unreadable" in err
    assert "built-in" not in err and "Traceback" not in err  # the shipped registry still served
    assert all(line.startswith("AYS: ") for line in err.strip().splitlines())


def test_no_readable_registry_at_all_uses_the_builtin_family_schedule(tmp_path, monkeypatch, capsys):
    import ays_core.registry as registry_module
    import ays_core.selection as selection

    monkeypatch.setattr(selection, "SHIPPED_REGISTRY", tmp_path / "gone")
    monkeypatch.setattr(registry_module, "SHIPPED_REGISTRY", tmp_path / "gone")
    webui = harness.start_webui(sd_model=harness.FakeSDModel("sdxl"))
    try:
        _, processed = generate(webui, scheduler="AYS", steps=10)
        assert_sdxl_at_10_steps(processed.first_pass_sigmas)
        assert "built-in sdxl@v2" in capsys.readouterr().err
    finally:
        harness.stop_webui()


def test_scheduler_never_raises_into_a_generation(webui, capsys):
    webui.shared.opts.set("sigma_min", 20.0)  # above sigma_max: no valid AYS range
    _, processed = generate(webui, scheduler="AYS", steps=10)
    assert len(processed.first_pass_sigmas) == 11
    err = capsys.readouterr().err
    assert "default schedule" in err and "Traceback" not in err


# ---------------------------------------------------------------- settings

def test_settings_section(webui):
    labels = webui.shared.opts.data_labels
    for key in ("ays_registry_dirs", "ays_schedule", "ays_remote_url", "ays_a1111_convention"):
        assert labels[key].section == ("ays", "AYS")
    assert labels["ays_schedule"].infotext == "AYS schedule"
    choices = labels["ays_schedule"].component_args()["choices"]
    assert choices[0] == "Automatic" and {"sd15@v2", "sdxl@v2", "svd@v1"} <= set(choices)
    assert webui.shared.opts.ays_a1111_convention is False


# ---------------------------------------------------------------- pre-1.9 WebUIs

def test_legacy_webui_gets_sampler_entries(legacy_webui):
    names = [s.name for s in legacy_webui.sd_samplers.all_samplers]
    for base in ("Euler", "Euler a", "DPM++ 2M", "DPM++ 2M SDE", "DPM++ SDE", "Heun"):
        assert names.count(f"{base} AYS") == 1
        assert f"{base} AYS" in legacy_webui.sd_samplers.all_samplers_map
        assert f"{base} AYS" in [s.name for s in legacy_webui.sd_samplers.samplers]
    again = harness.start_webui(legacy=True)  # Reload UI
    assert [s.name for s in again.sd_samplers.all_samplers].count("Euler AYS") == 1


def test_legacy_sigmas_for_txt2img_img2img_and_hires(legacy_webui):
    _, processed = generate(legacy_webui, sampler_name="DPM++ 2M AYS", scheduler=None, steps=20,
                            enable_hr=True, hr_second_pass_steps=8, denoising_strength=0.4)
    torch.testing.assert_close(processed.first_pass_sigmas, expected(legacy_webui, SD15, 20))
    total = int(8 / 0.4)
    torch.testing.assert_close(processed.hires_sigmas, expected(legacy_webui, SD15, total)[total - 8:])
    assert infotext_params(processed)["AYS schedule"] == "sd15@v2"
    _, processed = generate(legacy_webui, sampler_name="Euler AYS", scheduler=None, steps=20, is_img2img=True,
                            denoising_strength=0.6)
    torch.testing.assert_close(processed.first_pass_sigmas, expected(legacy_webui, SD15, 20)[20 - 12 - 1:])
    _, plain = generate(legacy_webui, sampler_name="Euler", scheduler=None, steps=20)
    assert "AYS schedule" not in infotext_params(plain)


# ---------------------------------------------------------------- API

def test_nowebui_api_override_of_the_pinned_schedule():
    webui = harness.start_webui(ui=False)  # --nowebui: no settings UI is ever built
    try:
        _, processed = generate(webui, scheduler="AYS", steps=10, override_settings={"ays_schedule": "sdxl@v2"})
        assert_sdxl_at_10_steps(processed.first_pass_sigmas)
        assert infotext_params(processed)["AYS schedule"] == "sdxl@v2"
    finally:
        harness.stop_webui()


def test_api_routes_with_nowebui(webui):
    fastapi = pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    app = fastapi.FastAPI()
    webui.script_callbacks.app_started_callback(None, app)  # --nowebui passes no gradio demo
    client = TestClient(app)

    listing = client.get("/ays/v1/schedules").json()
    refs = [s["ref"] for s in listing["schedules"]]
    assert {"sd15@v2", "sdxl@v2", "svd@v1", "deepfloyd-if-1@v1"} <= set(refs)

    current = client.get("/ays/v1/schedule", params={"steps": 20}).json()
    assert current["schedule"] == "sd15@v2" and len(current["sigmas"]) == 21
    np.testing.assert_allclose(current["sigmas"], expected(webui, SD15, 20).numpy(), rtol=1e-6)
    tail = client.get("/ays/v1/schedule", params={"steps": 20, "denoise": 0.5}).json()
    np.testing.assert_allclose(tail["sigmas"], current["sigmas"][-11:], rtol=1e-12)

    bad = client.get("/ays/v1/schedule", params={"steps": 0})
    assert bad.status_code == 422 and "steps" in bad.json()["detail"]
