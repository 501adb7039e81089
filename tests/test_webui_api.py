"""The /ays/v1 API of the WebUI extension as a client meets it (FastAPI's test client on the
stand-in WebUI): mounted with the WebUI's API and behind its --api-auth, JSON-only POST, no server
files outside the owner's allow-list, capped sizes, one-line 4xx errors."""
import base64
import os

import pytest

from ays_core import data
from ays_core.errors import AYSError
from ays_core.tune import check_readable, job_for, readable_folders, request_settings
from tiny_ldm import TinyCompVisModel
from webui_stub import webui_harness as harness

pytest.importorskip("fastapi")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHA = "ef" * 32
GETS = ("/ays/v1/schedules", "/ays/v1/schedule?steps=10", "/ays/v1/optimize")
POSTS = ("/ays/v1/optimize/stop", "/ays/v1/optimize/resume", "/ays/v1/optimize")


def tiny_checkpoint():
    model = TinyCompVisModel()
    model.sd_checkpoint_info = harness.checkpoint_info(SHA, "tiny.safetensors")
    model.is_sd1, model.is_sd2, model.is_sdxl = True, False, False
    return model


def started(tmp_path, **flags):
    """Both extension scripts loaded (as the WebUI loads every script), the app started."""
    import fastapi
    from fastapi.testclient import TestClient

    webui = harness.start_webui(sd_model=tiny_checkpoint(), **flags)
    webui.ays.tab.JOB = job_for(tmp_path / "job")
    app = fastapi.FastAPI()
    webui.script_callbacks.app_started_callback(None, app)
    return webui, TestClient(app)


@pytest.fixture
def stop_webui(monkeypatch, tmp_path):
    monkeypatch.setenv("AYS_REGISTRY", str(tmp_path / "registry"))
    yield
    harness.stop_webui()


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def routes_of(client):
    return {(route.path, method) for route in client.app.routes for method in getattr(route, "methods", ())}


def test_with_api_auth_every_route_needs_the_credentials(tmp_path, stop_webui):
    tab, client = started(tmp_path, api_auth="alice:s3cret,bob:pa:ss")
    assert {("/ays/v1/schedules", "GET"), ("/ays/v1/schedule", "GET"), ("/ays/v1/optimize", "GET"),
            ("/ays/v1/optimize", "POST"), ("/ays/v1/optimize/stop", "POST"),
            ("/ays/v1/optimize/resume", "POST")} <= routes_of(client)
    for path in GETS:
        for headers in ({}, basic("alice", "wrong"), basic("mallory", "s3cret"), basic("alice", "s3crét")):
            response = client.get(path, headers=headers)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Basic", (path, headers)
        assert client.get(path, headers=basic("alice", "s3cret")).status_code == 200, path
        assert client.get(path, headers=basic("bob", "pa:ss")).status_code == 200, path
    for path in POSTS:
        response = client.post(path, json={})
        assert response.status_code == 401 and "alice" not in response.text, path
        # the credential check comes first: an anonymous form gets 401, not a hint about the body
        assert client.post(path, data={"x": "1"}).status_code == 401
    assert client.post("/ays/v1/optimize/stop", json={}, headers=basic("alice", "s3cret")).json()["state"] == "idle"
    assert tab.ays.tab.JOB.status()["state"] == "idle"


def test_without_api_auth_no_credentials_are_asked(tmp_path, stop_webui):
    _, client = started(tmp_path)
    for path in GETS:
        assert client.get(path).status_code == 200, path
    assert client.post("/ays/v1/optimize/stop", json={}).status_code == 200


def test_routes_exist_only_with_the_webuis_api(tmp_path, stop_webui):
    _, client = started(tmp_path, api=False)  # a WebUI started without --api serves no API
    assert not any(path.startswith("/ays/") for path, _ in routes_of(client))
    harness.stop_webui()
    _, client = started(tmp_path, api=False, ui=False)  # --nowebui always serves it
    assert client.get("/ays/v1/schedules").status_code == 200


def test_post_routes_take_only_json(tmp_path, stop_webui):
    tab, client = started(tmp_path)
    for path in POSTS:
        for kwargs in ({"data": {"prompts": "a cat"}},                       # a cross-site HTML form
                       {"content": b"{}", "headers": {"Content-Type": "text/plain"}},  # also needs no preflight
                       {}):                                                   # no body, no type
            response = client.post(path, **kwargs)
            assert response.status_code == 415 and "application/json" in response.json()["detail"], (path, kwargs)
    for body, status, words in ((b"{not json", 422, "not valid JSON"), (b"[1, 2]", 422, "JSON object"),
                                (b"[" * 100_000, 413, "larger than"), (b'{"prompts": "' + b"x" * 70_000 + b'"}', 413, "larger")):
        response = client.post("/ays/v1/optimize", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == status and words in response.json()["detail"], body[:20]
        assert "\n" not in response.json()["detail"]
    assert tab.ays.tab.JOB.status()["state"] == "idle"


def test_steps_and_denoise_are_capped_with_one_line_errors(tmp_path, stop_webui):
    _, client = started(tmp_path)
    assert len(client.get("/ays/v1/schedule", params={"steps": 1000}).json()["sigmas"]) == 1001
    for params in ({"steps": 10 ** 12}, {"steps": 2_000_000}, {"steps": 1001}, {"steps": 0}, {"steps": "abc"},
                   {"steps": 10, "denoise": "nan"}, {"steps": 10, "denoise": 0}, {"steps": 10, "denoise": 1.5},
                   {"steps": 10, "denoise": "x"}):
        response = client.get("/ays/v1/schedule", params=params)
        detail = response.json()["detail"]
        assert response.status_code == 422 and isinstance(detail, str) and "\n" not in detail, params
        assert ("steps" if "denoise" not in params else "denoise") in detail


@pytest.mark.parametrize("setting, value", [("samples", 1_000_000), ("samples", 16_385), ("data_samples", 8_193),
                                            ("resolution", 4096), ("resolution", 2056), ("refine", 3), ("steps", 41),
                                            ("validation_samples", 1025)])
def test_optimize_caps(tmp_path, stop_webui, setting, value):
    _, client = started(tmp_path)
    response = client.post("/ays/v1/optimize", json={"prompts": "a cat", setting: value})
    assert response.status_code == 422 and setting in response.json()["detail"]


def test_server_paths_are_refused_unless_the_owner_allowed_their_folder(tmp_path, stop_webui):
    tab, client = started(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("a cat\n")
    details = []
    for body in ({"prompts_file": "/etc/passwd"}, {"prompts_file": str(secret)}, {"prompts_file": "/no/such/file"},
                 {"data": "images", "image_folder": "/"}):
        response = client.post("/ays/v1/optimize", json=body)
        assert response.status_code == 422 and "reading server files is off" in response.json()["detail"], body
        details.append(response.json()["detail"].split(":")[1])
    assert len(set(details[:3])) == 1  # an existing file and a missing one get the same answer

    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "prompts.txt").write_text("a cat\na dog\n")
    os.symlink(secret, allowed / "link.txt")  # a link inside that leads out
    tab.shared.opts.set("ays_readable_folders", f"{allowed} ; {tmp_path / 'other'}")
    for path in ("/etc/passwd", str(secret), str(allowed / "link.txt"), str(allowed / ".." / "secret.txt"),
                 str(tmp_path / "allowedX" / "p.txt")):
        response = client.post("/ays/v1/optimize", json={"prompts_file": path})
        assert response.status_code == 422 and "not inside a folder allowed" in response.json()["detail"], path
    response = client.post("/ays/v1/optimize", json={"prompts_file": str(allowed / "prompts.txt"), "steps": 3,
                                                     "samples": 16, "data_samples": 2, "refine": 0,
                                                     "resolution": 64, "validation_samples": 2, "publish": False})
    assert response.status_code == 200 and response.json()["state"] == "running"
    tab.ays.tab.JOB.stop()
    assert tab.ays.tab.JOB.wait(600)


def test_api_clients_cannot_widen_the_allow_list(tmp_path, stop_webui):
    tab, _ = started(tmp_path)
    p = tab.processing.StableDiffusionProcessing(scheduler="AYS", steps=4,
                                                 override_settings={"ays_readable_folders": "/",
                                                                    "ays_registry_dirs": "/tmp/elsewhere"})
    tab.processing.process_images(p)
    assert tab.shared.opts.ays_readable_folders == "" and tab.shared.opts.ays_registry_dirs == ""
    assert {"ays_readable_folders", "ays_registry_dirs"} <= tab.shared.restricted_opts  # --hide-ui-dir-config


def test_resume_rechecks_the_allow_list(tmp_path):
    settings = request_settings({"prompts_file": str(tmp_path / "p.txt")})
    check_readable(settings, readable_folders(str(tmp_path)))
    with pytest.raises(AYSError, match="not inside"):
        check_readable(settings, readable_folders(str(tmp_path / "sub")))
    check_readable(request_settings({"prompts": "inline only"}), [])
    # a prompts file named beside image data is never read, so it is not checked either
    check_readable(request_settings({"data": "images", "image_folder": str(tmp_path), "prompts_file": "/x"}),
                   readable_folders(str(tmp_path)))


def test_reads_are_capped(tmp_path, monkeypatch):
    big = tmp_path / "big.txt"
    big.write_bytes(b"a cat\n" * 100)
    monkeypatch.setattr(data, "MAX_PROMPTS_FILE_BYTES", 599)
    with pytest.raises(AYSError, match="too large"):
        data.read_prompts(path=big)
    monkeypatch.setattr(data, "MAX_PROMPTS_FILE_BYTES", 600)
    assert len(data.read_prompts(path=big)) == 100
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(AYSError, match="not a regular file"):  # and it did not block on the pipe
        data.read_prompts(path=tmp_path / "fifo")


def test_image_folders_are_walked_within_bounds(tmp_path, monkeypatch):
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.png"):
        (folder / name).write_bytes(b"x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "c.png").write_bytes(b"x")
    os.symlink(outside, folder / "linked-folder")       # not followed
    os.symlink(outside / "c.png", folder / "c.png")     # a file link leading out of the allowed folder
    listed = data.list_images(folder, within=readable_folders(str(folder)))
    assert [p.relative_to(folder).as_posix() for p in listed] == ["a.png", "sub/b.png"]
    assert len(data.list_images(folder)) == 3  # the CLI's own folders: file links are fine
    monkeypatch.setattr(data, "MAX_FOLDER_ENTRIES", 3)
    with pytest.raises(AYSError, match="more than 3"):
        data.list_images(folder)
