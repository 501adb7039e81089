"""RunSettings (ays_core.settings): one object, defaults in one place, untrusted input refused
with a message naming the setting; the CLI and the tab build the same object."""
import pytest

from ays_core.cli.optimize import settings_from
from ays_core.cli import build_parser
from ays_core.errors import AYSError
from ays_core.settings import DEFAULT_PROMPT_SAMPLES, WEBUI_DEFAULTS, RunSettings, check_cfg_scale
from ays_core.tune import request_settings


def cli_settings(*flags):
    return settings_from(build_parser().parse_args(["optimize", "--model", "toy:gaussian", *flags]))


def test_the_cli_builds_the_settings_with_the_same_defaults():
    assert cli_settings() == RunSettings()
    assert cli_settings("--prompt", "a", "--prompt", "b", "--no-early-stop", "--resolution", "512", "--id", "mine") \
        == RunSettings(prompts="a\nb", early_stop=False, resolution=512, schedule_id="mine")


def test_a_tab_request_is_the_webui_defaults_plus_what_it_sets():
    settings = request_settings({"prompts": "a cat", "steps": 8})
    assert settings == RunSettings(prompts="a cat", steps=8, **WEBUI_DEFAULTS)
    images = request_settings({"data": "images", "image_folder": "pics", "prompts": "ignored"})
    assert images.image_folder == "pics" and images.prompts == "" and not images.data_free
    for body, message in (({"cache_dir": "/etc"}, "unknown setting"), ({"data": "video"}, "data must be"),
                          ({"data": "images"}, "image folder"), ({"prompts": " "}, "prompt")):
        with pytest.raises(AYSError, match=message):
            request_settings(body)


@pytest.mark.parametrize("values,message", [
    ({"steps": "10"}, "setting steps must be a int"), ({"early_stop": 1}, "early_stop must be a bool"),
    ({"sigma_min": "0.1"}, "sigma_min must be a float"), ({"steps": 1}, "steps must be a whole number between 2"),
    ({"refine": 10}, "refine"), ({"steps": 300, "refine": 2}, "more than 1000 steps"),
    ({"mode": "slow"}, "mode must be one of"), ({"start": "karras"}, "start must be one of"),
    ({"solver": "nope"}, "unknown sampler"), ({"cfg_scale": 31.0}, "CFG scale"), ({"sigma_max": -1.0}, "positive"),
    ({"max_memory_gb": float("nan")}, "positive"), ({"resolution": 100}, "multiple of 8"),
    ({"prompts": "x" * ((1 << 20) + 1)}, "longer than"), ({"schedule_id": "Bad Id"}, "invalid schedule id"),
    ({"image_folder": "pics", "prompts": "a cat"}, "not both"), ({"nope": 1}, "unknown setting"),
])
def test_bad_settings_name_what_is_wrong(values, message):
    with pytest.raises(AYSError, match=message):
        RunSettings.from_dict(values)


def test_from_dict_takes_whole_numbers_for_floats_and_none_where_allowed():
    settings = RunSettings.from_dict({"cfg_scale": 5, "validation_samples": None, "sigma_min": 1})
    assert settings.cfg_scale == 5.0 and type(settings.cfg_scale) is float and settings.sigma_min == 1.0
    with pytest.raises(AYSError, match="JSON object"):
        RunSettings.from_dict([1])


def test_what_the_settings_mean():
    assert RunSettings().latent_fields == []
    assert RunSettings(prompts="a", resolution=512).latent_fields == ["prompts", "resolution"]
    assert RunSettings(prompts="a").data_free and not RunSettings(image_folder="p", prompts="").data_free
    assert RunSettings().x0_count(True) == DEFAULT_PROMPT_SAMPLES and RunSettings(samples=99).x0_count(False) == 99
    assert RunSettings(data_samples=7).x0_count(True) == 7
    assert RunSettings(max_memory_gb=2.5).memory_budget_bytes() == 2_500_000_000
    assert check_cfg_scale(7) == 7.0
