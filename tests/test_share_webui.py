"""The WebUI side of sharing (issue 6): the "Pull now" button and the optional pull at start in
Settings > AYS, against the stand-in WebUI in tests/webui_stub/ and a local remote registry."""
import threading
import types

import numpy as np
import pytest

from ays_core.registry import Registry, new_schedule_doc
from remote_registry import doc_for
from webui_stub import webui_harness as harness

SHA = "cd" * 32
pytestmark = pytest.mark.usefixtures("no_env_registry")


def join_pulls_at_start():
    """Wait for every pull the extension started in the background (its threads are 'ays-pull')."""
    for thread in threading.enumerate():
        if thread.name == "ays-pull":
            thread.join(900)
            assert not thread.is_alive()


def start(tmp_path, **settings):
    return harness.start_webui(sd_model=harness.FakeSDModel("sd15", sha256=SHA),
                               settings={"ays_registry_dirs": str(tmp_path / "mine"), **settings})


def finetune_doc():
    """A schedule for the fake checkpoint (by sha256), as someone else would publish it."""
    sigmas = np.geomspace(14.6146412293, 0.0291671582, 11)
    return new_schedule_doc("their-finetune", sigmas, family="sd15", prediction="eps", sha256=SHA,
                            source="optimized", solver="euler", samples=8, data="test")


def test_settings_offer_the_button_and_pull_at_start_off_by_default(tmp_path):
    webui = start(tmp_path)
    try:
        labels = webui.shared.opts.data_labels
        assert labels["ays_pull_at_start"].default is False
        assert webui.shared.opts.ays_pull_at_start is False
        button = labels["ays_pull_now"]
        assert button.do_not_save and "ays_pull_now" not in webui.shared.opts.data  # a button, not a value
    finally:
        harness.stop_webui()


def test_pull_now_installs_and_the_next_generation_uses_it(tmp_path, remote, capsys):
    remote.publish(finetune_doc())
    webui = start(tmp_path, ays_remote_url=remote.url)
    try:
        line = webui.ays.sharing.pull_now()
        assert line.startswith("AYS: pulled 1 new schedule file(s)") and "\n" not in line
        assert line in capsys.readouterr().err  # one console line
        assert Registry(tmp_path / "mine").versions("their-finetune") == [1]
        p = webui.processing.StableDiffusionProcessing(scheduler="AYS", steps=10)
        processed = webui.processing.process_images(p)
        params = webui.infotext_utils.parse_generation_parameters(processed.infotext)
        assert params["AYS schedule"] == "their-finetune@v1"
        assert webui.ays.sharing.pull_now().startswith("AYS: pulled 0 new")  # twice: nothing changes
    finally:
        harness.stop_webui()


def test_pull_now_failures_are_one_line(tmp_path, remote, capsys):
    webui = start(tmp_path)
    try:
        assert "remote registry URL" in webui.ays.sharing.pull_now()  # none set yet
        webui.shared.opts.set("ays_remote_url", remote.url)  # serves no index: HTTP 404
        line = webui.ays.sharing.pull_now()
        assert line.startswith("AYS: pull from") and "404" in line
        err = capsys.readouterr().err
        assert err.count("\n") == 2 and "Traceback" not in err
        assert not (tmp_path / "mine").exists()
    finally:
        harness.stop_webui()


def test_button_component_runs_a_pull_when_clicked(tmp_path, remote):
    remote.publish(doc_for("alpha"))
    webui = start(tmp_path, ays_remote_url=remote.url)
    try:
        import gradio

        info = webui.shared.opts.data_labels["ays_pull_now"]
        # how the settings page builds every setting's component
        button = info.component(label=info.label, value=info.default, elem_id="setting_ays_pull_now")
        assert isinstance(button, gradio.Button) and "label" not in button.kwargs  # Gradio 4 buttons take none
        assert button.args == () and button.kwargs["value"] == "Pull now"
        [(clicked, _inputs, _outputs)] = button.clicks
        clicked()
        assert Registry(tmp_path / "mine").versions("alpha") == [1]
    finally:
        harness.stop_webui()


def test_pull_at_start_runs_in_the_background(tmp_path, remote, capsys):
    remote.publish(doc_for("alpha"))
    index_held = remote.gate()
    remote.routes["/index.json"] = {"body": remote.routes["/index.json"], "gate": index_held}
    webui = start(tmp_path, ays_remote_url=remote.url, ays_pull_at_start=True)
    try:
        app = types.SimpleNamespace(add_api_route=lambda *args, **kwargs: None)
        webui.script_callbacks.app_started_callback(None, app)
        # start-up is over while the remote cannot have answered: it did not wait for the pull
        assert [t for t in threading.enumerate() if t.name == "ays-pull"]
        assert not Registry(tmp_path / "mine").versions("alpha")
        index_held.set()
        join_pulls_at_start()
        assert Registry(tmp_path / "mine").versions("alpha") == [1]
        assert "AYS: pulled 1 new" in capsys.readouterr().err
    finally:
        harness.stop_webui()


def test_no_pull_at_start_unless_asked(tmp_path, remote):
    remote.publish(doc_for("alpha"))
    webui = start(tmp_path, ays_remote_url=remote.url)
    try:
        webui.script_callbacks.app_started_callback(None, types.SimpleNamespace(add_api_route=lambda *a, **k: None))
        join_pulls_at_start()  # a pull started by mistake has now hit the remote
        assert remote.hits == []
    finally:
        harness.stop_webui()


def test_failed_pull_at_start_is_one_line_and_start_up_goes_on(tmp_path, capsys, closed_port_url):
    webui = start(tmp_path, ays_remote_url=closed_port_url, ays_pull_at_start=True)
    try:
        webui.script_callbacks.app_started_callback(None, types.SimpleNamespace(add_api_route=lambda *a, **k: None))
        join_pulls_at_start()
        err = capsys.readouterr().err
        assert err.count("AYS: pull from") == 1 and "cannot connect" in err and "Traceback" not in err
    finally:
        harness.stop_webui()
