"""RunSettings (ays_core.settings): one object, defaults in one place, untrusted input refused
with a message naming the setting; the CLI and the tab build the same object."""
import dataclasses

import pytest

from ays_core.cli.optimize import settings_from
from ays_core.cli import build_parser
from ays_core.errors import AYSError, SettingError
from ays_core.settings import (DEFAULT_PROMPT_SAMPLES, MAX_TEXT, WEBUI_DEFAULTS, RunSettings, check_cfg_scale,
                               field_kinds)
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
    ({"steps": "10"}, "setting steps must be a whole number, got '10'"), ({"early_stop": 1}, "early_stop must be true or false"),
    ({"sigma_min": "0.1"}, "sigma_min must be a number"), ({"steps": 1}, "steps must be a whole number between 2"),
    ({"refine": 10}, "refine"), ({"steps": 300, "refine": 2}, "more than 1000 steps"),
    ({"mode": "slow"}, "mode must be one of"), ({"start": "karras"}, "start must be one of"),
    ({"solver": "nope"}, "unknown sampler"), ({"cfg_scale": 31.0}, "CFG scale"), ({"sigma_max": -1.0}, "positive"),
    ({"max_memory_gb": float("nan")}, "positive"), ({"resolution": 100}, "multiple of 8"),
    ({"prompts": "x" * ((1 << 20) + 1)}, "longer than"), ({"schedule_id": "Bad Id"}, "invalid schedule id"),
    ({"image_folder": "pics", "prompts": "a cat"}, "not both"), ({"nope": 1}, "unknown setting"),
    ({"seed": 2 ** 32}, "seed must be a whole number between 0 and 4294967295"),
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


# ---------------------------------------------------------------- each front end's names for a setting

NOT_ON_THE_CLI = {"reference_steps", "grid_size", "start"}  # `ays optimize` has no flag for these


def cli_flags():
    return build_parser("optimize").parse_args(["optimize", "--model", "toy:gaussian"]).setting_flags


def wrong_value(name):
    """A value of field `name` that check() refuses, chosen from the field's type alone (so a new
    field is covered without being listed here)."""
    kind, _ = field_kinds()[name]
    return {int: -1, float: -1.0, str: "x" * (MAX_TEXT + 1), bool: "yes"}[kind]


@pytest.mark.parametrize("name", [field.name for field in dataclasses.fields(RunSettings)])
def test_every_setting_a_user_can_get_wrong_is_named_by_each_front_end(name):
    """check() names the field in the error (API clients write field names); the CLI names its
    flag instead (every field has one, or is listed above as not settable from the CLI); the tab
    its label."""
    with pytest.raises(SettingError) as caught:
        RunSettings(**{name: wrong_value(name)}).check()
    error = caught.value
    assert name in error.fields and name in str(error)
    if name in NOT_ON_THE_CLI:
        assert name not in cli_flags()
        return
    flag = cli_flags()[name]
    message = error.named(cli_flags())
    assert flag in message and f"{name} " not in message.replace(flag, "")


def test_each_flag_named_in_messages_sets_its_field():
    """The flag a message names for a field is the one that changes that field: each flag given a
    value of its own changes exactly its field."""
    values = {"early_stop": (), "publish": (), "mode": ("paper",), "solver": ("euler",), "step_counts": ("4",),
              "image_folder": ("pics",), "prompts": ("a cat",), "prompts_file": ("p.txt",),
              "default_caption": ("c",), "negative_prompt": ("n",), "cache_dir": ("cache",),
              "schedule_id": ("mine",), "sigma_min": ("0.5",), "sigma_max": ("5",), "cfg_scale": ("3",),
              "max_memory_gb": ("2",)}
    flags = cli_flags()
    for field in dataclasses.fields(RunSettings):
        if field.name in NOT_ON_THE_CLI:
            continue
        settings = cli_settings(flags[field.name], *values.get(field.name, ("77",)))
        changed = [f.name for f in dataclasses.fields(RunSettings) if getattr(settings, f.name) != getattr(RunSettings(), f.name)]
        assert changed == [field.name], (flags[field.name], changed)


def test_a_setting_error_spanning_several_settings_names_each():
    with pytest.raises(SettingError) as caught:
        RunSettings(image_folder="pics", prompts="a cat").check()
    assert str(caught.value) == "give x0 data as images (image_folder) or as prompts (prompts, prompts_file), not both"
    assert caught.value.named(cli_flags()) == \
        "give x0 data as images (--data) or as prompts (--prompt, --prompts-file), not both"
    with pytest.raises(SettingError) as caught:
        RunSettings(steps=300, refine=2).check()
    assert caught.value.named(cli_flags()) == "300 steps (--steps) refined 2 times (--refine) makes more than 1000 steps"


@pytest.mark.parametrize("argv, words", [
    (["--steps", "1"], "--steps must be a whole number between 2 and 1000, got 1"),
    (["--data", "pics"], "--data: only for latent diffusion models"),
    (["--cfg-scale", "31"], "--cfg-scale: CFG scale must be between 1 and 30"),
    (["--id", "Bad Id"], "--id: invalid schedule id"),
    (["--max-memory", "-1"], "--max-memory must be a positive number"),
    (["--step-counts", "1"], "--step-counts must lie between 2 and 100"),
])
def test_the_cli_prints_the_flag(tmp_path, capsys, argv, words):
    from ays_core.cli import main

    assert main(["optimize", "--model", "toy:gaussian", "--out", str(tmp_path / "s.json"), *argv]) == 2
    err = capsys.readouterr().err
    assert err == f"ays: error: {err[len('ays: error: '):]}" and words in err and err.count("\n") == 1
    assert not (tmp_path / "s.json").exists()


def test_a_range_end_the_user_set_is_named_alone():
    """--sigma-min above the model's top: the message names --sigma-min and the model's sigma_max,
    never a --sigma-max the user did not give."""
    from types import SimpleNamespace

    from ays_core.starts import schedule_range

    model = SimpleNamespace(sigma_min=0.03, sigma_max=14.6)
    with pytest.raises(SettingError) as caught:
        schedule_range(model, SimpleNamespace(sigma_min=20.0, sigma_max=None))
    assert caught.value.named(cli_flags()) == \
        "--sigma-min 20.0 leaves no range with the model's sigma_max 14.6 (need 0 < sigma_min < sigma_max)"
    with pytest.raises(SettingError) as caught:
        schedule_range(model, SimpleNamespace(sigma_min=None, sigma_max=0.01))
    assert caught.value.fields == ("sigma_max",) and "model's sigma_min 0.03" in str(caught.value)
    with pytest.raises(SettingError) as caught:
        schedule_range(model, SimpleNamespace(sigma_min=5.0, sigma_max=1.0))
    assert caught.value.fields == ("sigma_min", "sigma_max")
    assert schedule_range(model, SimpleNamespace(sigma_min=0.5, sigma_max=None)) == (0.5, 14.6)


def test_a_setting_error_survives_a_copy_as_its_text():
    import copy
    import pickle

    error = SettingError(lambda n: f"{n} must be positive", "samples")
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert isinstance(clone, AYSError) and str(clone) == "samples must be positive"


def test_a_failed_job_words_its_setting_error_as_the_front_end_asks(tmp_path):
    from ays_core.tune import Job

    job = Job(tmp_path / "job", [tmp_path / "registry"])
    job._error = SettingError(lambda n: f"set {n}", "resolution")
    job._set(state="failed", message=str(job._error))
    assert job.status()["message"] == "set resolution"  # the API's name
    assert job.status(names={"resolution": '"Resolution"'})["message"] == 'set "Resolution"'
