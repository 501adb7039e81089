"""ays_core.selection: which stored schedule a model gets (used by the WebUI extension)."""
import os

import numpy as np
import pytest

from ays_core.registry import RegistrySet, new_schedule_doc
from ays_core.selection import (DEFAULT_FAMILY, ModelInfo, Selector, choose_schedule, family_candidates,
                                normalize_pin, registry_roots)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(REPO, "registry")
SHA = "cd" * 32


@pytest.fixture
def shipped():
    return RegistrySet([SHIPPED])


def publish(root, schedule_id, steps=10, **model):
    doc = new_schedule_doc(schedule_id, np.geomspace(14.6146412293, 0.0291671582, steps + 1),
                           family=model.pop("family", "sd15"), prediction=model.pop("prediction", "eps"),
                           source="optimized", solver="euler", samples=8, data="test", **model)
    return RegistrySet([root, SHIPPED]).publish(doc)


@pytest.mark.parametrize("model, candidates", [
    (ModelInfo("sd2", "v"), ["sd2-v", "sd2", "sd15"]),
    (ModelInfo("sd2-v", "v"), ["sd2-v", "sd2", "sd15"]),
    (ModelInfo("sdxl", "eps"), ["sdxl", "sd15"]),
    (ModelInfo("sdxl", "v"), ["sdxl-v", "sdxl", "sd15"]),
    (ModelInfo(None, None), [DEFAULT_FAMILY]),
])
def test_family_candidates(model, candidates):
    assert family_candidates(model) == candidates


@pytest.mark.parametrize("family, ref", [("sd15", "sd15@v2"), ("sdxl", "sdxl@v2"), ("svd", "svd@v1"),
                                         ("deepfloyd-if", "deepfloyd-if-1@v1")])
def test_exact_family_match_has_no_warning(shipped, family, ref):
    prediction = "edm" if family == "svd" else "eps"
    choice = choose_schedule(shipped, ModelInfo(family, prediction))
    assert (choice.ref, choice.how, choice.warning) == (ref, "family", None)


@pytest.mark.parametrize("model, ref, words", [
    (ModelInfo("sd2", "v", name="v2-1_768.safetensors"), "sd15@v2", ["v2-1_768", "sd2", "v-prediction"]),
    (ModelInfo("sdxl", "v"), "sdxl@v2", ["sdxl", "v-prediction", "eps-prediction"]),
    (ModelInfo("flux", "flow"), "sd15@v2", ["flux", "flow-prediction", "rescaled"]),
    (ModelInfo(None, None, name="odd.ckpt"), "sd15@v2", ["cannot tell the family", "odd.ckpt"]),
])
def test_a_schedule_not_made_for_the_model_always_warns(shipped, model, ref, words):
    choice = choose_schedule(shipped, model)
    assert choice.ref == ref and choice.how == "fallback"
    assert all(word in choice.warning for word in words)


def test_checkpoint_schedule_by_sha256_or_shorthash_beats_family(tmp_path):
    publish(tmp_path, "my-model", sha256=SHA)
    registries = RegistrySet([tmp_path, SHIPPED])
    for model in (ModelInfo("sd15", "eps", sha256=SHA), ModelInfo("sd15", "eps", shorthash=SHA[:10]),
                  ModelInfo("sdxl", "eps", sha256=SHA)):
        choice = choose_schedule(registries, model)
        assert (choice.ref, choice.how, choice.warning) == ("my-model@v1", "checkpoint", None)
    assert choose_schedule(registries, ModelInfo("sd15", "eps", sha256="ef" * 32)).ref == "sd15@v2"


def test_checkpoint_schedule_is_not_used_as_the_family_schedule(tmp_path):
    publish(tmp_path, "someone-elses", sha256=SHA)
    assert choose_schedule(RegistrySet([tmp_path, SHIPPED]), ModelInfo("sd15", "eps")).ref == "sd15@v2"


def test_user_family_schedule_shadows_the_shipped_one(tmp_path):
    publish(tmp_path, "sd15")
    assert choose_schedule(RegistrySet([tmp_path, SHIPPED]), ModelInfo("sd15", "eps")).ref == "sd15@v3"


def test_v_prediction_family_schedule_is_preferred(tmp_path):
    publish(tmp_path, "sd2-v", family="sd2-v", prediction="v")
    choice = choose_schedule(RegistrySet([tmp_path, SHIPPED]), ModelInfo("sd2", "v"))
    assert (choice.ref, choice.warning) == ("sd2-v@v1", None)


@pytest.mark.parametrize("pin, ref", [("sdxl", "sdxl@v2"), ("sdxl@v2", "sdxl@v2"), ("sdxl@1", "sdxl@v1")])
def test_pin_overrides_the_lookup(shipped, pin, ref):
    choice = choose_schedule(shipped, ModelInfo("sd15", "eps"), pin=pin)
    assert (choice.ref, choice.how, choice.warning) == (ref, "pinned", None)


@pytest.mark.parametrize("pin", ["sdxl@v9", "nothing-here", "Not An Id!"])
def test_unresolvable_pin_falls_back_with_a_warning(shipped, pin):
    choice = choose_schedule(shipped, ModelInfo("sd15", "eps"), pin=pin)
    assert choice.ref == "sd15@v2" and pin in choice.warning


@pytest.mark.parametrize("value, pin", [("", None), (None, None), ("Automatic", None), (" none ", None),
                                        ("sdxl@v2", "sdxl@v2")])
def test_normalize_pin(value, pin):
    assert normalize_pin(value) == pin


def test_registry_roots_order(tmp_path, monkeypatch):
    monkeypatch.setenv("AYS_REGISTRY", str(tmp_path / "env"))
    roots = registry_roots(f"{tmp_path / 'a'} ; {tmp_path / 'b'}\n{tmp_path / 'a'}")
    assert roots == [str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "env"), os.path.realpath(SHIPPED)]
    assert registry_roots("", own=tmp_path / "webui") == [str(tmp_path / "env"), str(tmp_path / "webui"),
                                                         os.path.realpath(SHIPPED)]
    monkeypatch.delenv("AYS_REGISTRY")
    # Without settings: the WebUI's own folder (or the per-user one), never the shipped one, is written first
    assert registry_roots("", own=tmp_path / "webui") == [str(tmp_path / "webui"), os.path.realpath(SHIPPED)]
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert registry_roots("") == [str(tmp_path / "data" / "ays" / "registry"), os.path.realpath(SHIPPED)]


def test_selector_caches_until_a_registry_changes(tmp_path):
    selector = Selector(recheck_s=0)
    roots = [str(tmp_path), SHIPPED]
    model = ModelInfo("sd15", "eps")
    first = selector.choose(roots, model)
    assert selector.choose(roots, model) is first and first.ref == "sd15@v2"
    publish(tmp_path, "sd15")
    assert selector.choose(roots, model).ref == "sd15@v3"


def test_selector_sees_a_version_added_within_one_file_system_clock_tick(tmp_path):
    """Two publishes a few ms apart can leave every modification time as it was (the times move
    in clock ticks): played here by putting the times back after the second publish."""
    selector = Selector(recheck_s=0)
    model = ModelInfo("sd15", "eps")
    publish(tmp_path, "sd15")
    roots = [str(tmp_path), SHIPPED]
    assert selector.choose(roots, model).ref == "sd15@v3"  # after the shipped v1 and v2
    times = {path: os.stat(path).st_mtime_ns for path in (tmp_path, tmp_path / "index.json", tmp_path / "sd15")}
    publish(tmp_path, "sd15", author="another schedule")  # identical content would publish nothing (no v4)
    for path, mtime in times.items():
        os.utime(path, ns=(mtime, mtime))
    assert selector.choose(roots, model).ref == "sd15@v4"


def test_selector_rechecks_folders_at_most_every_recheck_s(tmp_path):
    selector = Selector(recheck_s=3600)
    roots = [str(tmp_path), SHIPPED]
    model = ModelInfo("sd15", "eps")
    assert selector.choose(roots, model).ref == "sd15@v2"
    publish(tmp_path, "sd15")
    assert selector.choose(roots, model).ref == "sd15@v2"  # cached: no file-system check yet
    selector.invalidate()
    assert selector.choose(roots, model).ref == "sd15@v3"


def test_selector_without_any_registry_uses_the_builtin_schedules(tmp_path):
    selector = Selector()
    choice = selector.choose([str(tmp_path / "nothing")], ModelInfo("sdxl", "eps"))
    assert choice.how == "builtin" and choice.ref == "sdxl@v2" and "built-in" in choice.warning
    shipped_sdxl = RegistrySet([SHIPPED]).get("sdxl", 2).sigmas
    np.testing.assert_array_equal(choice.schedule.sigmas, shipped_sdxl)
    assert selector.missing_roots([str(tmp_path / "nothing")]) == [str(tmp_path / "nothing")]


def test_unreadable_registry_folder_does_not_raise(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    publish(tmp_path / "user", "sd15")
    selector = Selector()
    roots = [str(not_a_folder), str(tmp_path / "user"), SHIPPED]
    choice = selector.choose(roots, ModelInfo("sd15", "eps"))
    assert (choice.ref, choice.how) == ("sd15@v3", "family")
    assert selector.missing_roots(roots) == [str(not_a_folder)]
