"""Sharing schedules (issue 6): pull, serve, import, export, publish --to.

Remote registries are played by a local HTTP server on 127.0.0.1 whose every path can be made
hostile: wrong bytes, wrong hashes, endless or truncated bodies, stalls, redirects elsewhere."""
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ays_core import AYSError, Registry, RegistrySet
from ays_core.cli import main
from ays_core.fileio import MAX_JSON_BYTES
from ays_core.registry import dump_index, dump_schedule
from ays_core.share import (Downloader, base_url, export_file, import_file, make_server, pull, pull_in_background,
                            pull_summary, server_url)

from remote_registry import doc_for

REPO = Path(__file__).resolve().parent.parent
# Honest local answers come in milliseconds, but a loaded machine can stall a process for a good
# part of a second: only routes that stall on purpose (a gate never opened, bytes dripping for
# 20 s) meet short limits, still seconds long because the honest file beside them shares them;
# every other pull waits long enough that load can never make it time out.
PATIENT = dict(timeout=30.0, deadline=60.0, attempts=2, backoff=0.01)
IMPATIENT = dict(timeout=3.0, deadline=4.0, attempts=1)


def fast():
    """The downloader for servers that answer at once: its long timeouts cost nothing, and load
    cannot make them expire."""
    return Downloader(**PATIENT)


def impatient():
    return Downloader(**IMPATIENT)


def snapshot(folder):
    """Every file under `folder` with its bytes: to prove nothing else was written."""
    return {p: p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}


def assert_sound(registry):
    """No temp files, no half-written schedule, an index that matches the files."""
    leftovers = [p.name for p in registry.root.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    if registry.root.exists() and registry.ids():
        assert registry.verify() == []


# ---------------------------------------------------------------- pulling an honest registry

def test_pull_installs_new_versions_with_their_numbers_and_twice_is_a_no_op(remote, tmp_path):
    a1, a2, b7 = doc_for("alpha", 1), doc_for("alpha", 2, (12.0, 1.0, 0.1)), doc_for("beta", 7)
    remote.publish(a1, a2, b7)
    local = Registry(tmp_path / "local")
    report = pull(remote.url, local, downloader=fast())
    assert sorted(report.installed) == ["alpha@v1", "alpha@v2", "beta@v7"]
    assert report.problems == []
    assert local.versions("beta") == [7]  # the sender's number, not "next"
    assert local.path_of("alpha", 2).read_bytes() == dump_schedule(a2)
    assert_sound(local)
    index_before, hits_before = local.root.joinpath("index.json").read_bytes(), len(remote.hits)

    again = pull(remote.url + "index.json", local, downloader=fast())
    assert again.installed == [] and sorted(again.present) == ["alpha@v1", "alpha@v2", "beta@v7"]
    assert remote.hits[hits_before:] == ["/index.json"]  # nothing downloaded a second time
    assert local.root.joinpath("index.json").read_bytes() == index_before


def test_pull_only_the_ids_asked_for(remote, tmp_path):
    remote.publish(doc_for("alpha"), doc_for("beta"))
    local = Registry(tmp_path / "local")
    assert pull(remote.url, local, ids=["beta"], downloader=fast()).installed == ["beta@v1"]
    assert local.ids() == ["beta"]
    remote.publish(doc_for("alpha"), doc_for("alpha", 2), doc_for("beta"))
    assert pull(remote.url, local, ids=["alpha@2"], downloader=fast()).installed == ["alpha@v2"]
    with pytest.raises(AYSError, match="lists no schedule alpha@3"):
        pull(remote.url, local, ids=["alpha@3"], downloader=fast())
    with pytest.raises(AYSError, match="lists no schedule gamma"):
        pull(remote.url, local, ids=["gamma"], downloader=fast())
    with pytest.raises(AYSError, match="invalid schedule id"):
        pull(remote.url, local, ids=["../etc"], downloader=fast())


def test_conflicting_version_is_reported_and_never_overwritten(remote, tmp_path):
    local = Registry(tmp_path / "local")
    local.install([doc_for("alpha", 1, description="mine")])
    mine = local.path_of("alpha", 1).read_bytes()
    remote.publish(doc_for("alpha", 1, description="theirs"), doc_for("alpha", 2))
    report = pull(remote.url, local, downloader=fast())
    assert report.installed == ["alpha@v2"]
    assert len(report.problems) == 1 and "alpha@v1: conflict" in report.problems[0]
    assert local.path_of("alpha", 1).read_bytes() == mine
    assert_sound(local)


def test_conflict_with_another_registry_of_the_set(remote, tmp_path, shipped_copy):
    """The shipped sdxl@v1 and a different remote sdxl@v1 cannot both be `sdxl@v1`."""
    doc = json.loads(shipped_copy.joinpath("sdxl", "v1.json").read_bytes())
    doc["description"] = "changed"
    remote.publish(doc)
    local = Registry(tmp_path / "local")
    report = pull(remote.url, RegistrySet([local, Registry(shipped_copy)]), downloader=fast())
    assert report.installed == [] and "conflict" in report.problems[0]
    assert not local.root.exists()


def test_same_content_in_other_formatting_is_not_a_conflict(remote, tmp_path):
    doc = doc_for("alpha")
    local = Registry(tmp_path / "local")
    local.install([doc])
    remote.publish(files={("alpha", 1): json.dumps(doc).encode()})  # compact: other bytes, other sha256
    report = pull(remote.url, local, downloader=fast())
    assert report.present == ["alpha@v1"] and report.problems == []


def test_retries_a_passing_server_error(remote, tmp_path):
    remote.publish(doc_for("alpha"))
    remote.routes["/alpha/v1.json"] = {"body": remote.routes["/alpha/v1.json"], "fail_first": 1}
    report = pull(remote.url, Registry(tmp_path / "local"), downloader=fast())
    assert report.installed == ["alpha@v1"]
    assert remote.hits.count("/alpha/v1.json") == 2


def test_body_without_content_length_is_read_to_the_end(remote, tmp_path):
    remote.publish(doc_for("alpha"))
    remote.routes["/alpha/v1.json"] = {"body": remote.routes["/alpha/v1.json"], "no_length": True}
    assert pull(remote.url, Registry(tmp_path / "local"), downloader=fast()).installed == ["alpha@v1"]


def test_redirect_on_the_same_host_is_followed(remote, tmp_path):
    remote.publish(doc_for("alpha"))
    remote.routes["/mirror/alpha/v1.json"] = remote.routes.pop("/alpha/v1.json")
    remote.routes["/alpha/v1.json"] = {"status": 302, "headers": {"Location": "/mirror/alpha/v1.json"}}
    assert pull(remote.url, Registry(tmp_path / "local"), downloader=fast()).installed == ["alpha@v1"]


def test_base_url_forms():
    assert base_url("http://h/reg") == base_url("http://h/reg/") == base_url("http://h/reg/index.json") == "http://h/reg/"
    for bad in ("ftp://h/", "file:///etc/", "/local/folder", "http:///nohost", "http://h/?a=1", ""):
        with pytest.raises(AYSError):
            base_url(bad)


# ---------------------------------------------------------------- hostile remotes

HUGE_SIGMAS = [float(x) for x in reversed(range(1, 5002))]


def _bytes_with(**changes):
    doc = doc_for("alpha")
    doc.update(changes)
    return json.dumps(doc).encode()


HOSTILE_FILES = {  # name: (bytes or route served at /alpha/v1.json, words the rejection must contain)
    "not json": (b"<html>hello</html>", "not valid JSON"),
    "not utf-8": (b"\xff\xfe{}", "not valid JSON"),
    "json bomb": (b"[" * 50000 + b"]" * 50000, "nested too deeply"),
    "nan sigma": (_bytes_with().replace(b"2.0", b"NaN"), "NaN"),
    "infinite sigma": (_bytes_with().replace(b"2.0", b"Infinity"), "Infinity"),
    "overflowing sigma": (_bytes_with().replace(b"2.0", b"1e400"), "out of range"),
    "negative sigma": (_bytes_with(sigmas=[10.0, -2.0, 0.5, 0.1]), "sigmas"),
    "non-monotonic": (_bytes_with(sigmas=[10.0, 0.5, 2.0, 0.1]), "descending"),
    "thousands of steps": (_bytes_with(sigmas=HUGE_SIGMAS, model={**doc_for()["model"], "sigma_max": 5001.0,
                                                                  "sigma_min": 1.0}), "sigmas"),
    "traversal id inside": (_bytes_with(id="../../evil"), "id"),
    "other id inside": (_bytes_with(id="beta"), "not the alpha@v1"),
    "other version inside": (_bytes_with(version=2), "not the alpha@v1"),
    "lone surrogate": (_bytes_with(description="\ud800"), "surrogate"),
    "trailing newline id": (_bytes_with(id="alpha\n"), "id"),
}
HOSTILE_ROUTES = {  # bodies are a valid file so that only the transport is at fault
    "oversized, declared": ({"body": b" " * (MAX_JSON_BYTES + 1)}, "too large"),
    "oversized, streamed": ({"endless": b" " * 65536}, "too large"),
    "truncated": ({"truncate": 50}, "truncated"),
    "slow to answer": ({"stall": True}, "no answer within"),  # a gate opened only when the test ends
    "dripping bytes": ({"drip": 0.05}, "too slow"),  # never a gap near the read timeout: only the deadline ends it
    "redirect to another host": ({"status": 302, "headers": {"Location": "http://localhost:{port}/alpha/v1.json"}},
                                 "redirect to another host refused"),
    "redirect to another scheme": ({"status": 301, "headers": {"Location": "file:///etc/passwd"}}, "redirect"),
    "compressed anyway": ({"headers": {"Content-Encoding": "gzip"}}, "compressed"),
    "missing": ({"status": 404}, "404"),
    "server error": ({"status": 503}, "503"),
}


def served(remote, route):
    """A route as Remote serves it: `stall` becomes a gate, `{port}` in headers the remote's port."""
    if route.pop("stall", False):
        route["gate"] = remote.gate()
    if "headers" in route:
        route["headers"] = {k: v.format(port=remote.port) for k, v in route["headers"].items()}
    return route


def _expect_rejected_file(remote, tmp_path, route, words, sha_of=None):
    """Serve a good beta@v1 beside a bad alpha@v1: beta installs, alpha is rejected, nothing else moves."""
    good = doc_for("beta")
    data = route if isinstance(route, bytes) else dump_schedule(doc_for("alpha"))
    remote.publish(good, files={("alpha", 1): sha_of or data})
    downloader = fast()
    if not isinstance(route, bytes):
        if route.get("stall") or "drip" in route:
            downloader = impatient()  # the only pulls whose outcome a timeout decides
        route = served(remote, {**route, "body": route.get("body", data)})
    remote.routes["/alpha/v1.json"] = route
    before = snapshot(tmp_path)
    local = Registry(tmp_path / "local")
    report = pull(remote.url, local, downloader=downloader)
    assert report.installed == ["beta@v1"]
    assert len(report.problems) == 1 and report.problems[0].startswith("alpha@v1: "), report.problems
    assert words in report.problems[0]
    assert local.versions("alpha") == []
    changed = {p for p, data in snapshot(tmp_path).items() if before.get(p) != data}
    assert all(local.root in p.parents for p in changed)  # nothing written outside the registry
    assert_sound(local)
    return report.problems[0]


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_hostile_file_is_rejected_alone(remote, tmp_path, name):
    data, words = HOSTILE_FILES[name]
    _expect_rejected_file(remote, tmp_path, data, words)


@pytest.mark.parametrize("name", sorted(HOSTILE_ROUTES))
def test_hostile_transport_is_rejected_alone(remote, tmp_path, name):
    route, words = HOSTILE_ROUTES[name]
    _expect_rejected_file(remote, tmp_path, dict(route), words)


def test_wrong_sha256_is_rejected(remote, tmp_path):
    honest = dump_schedule(doc_for("alpha"))
    message = _expect_rejected_file(remote, tmp_path, dump_schedule(doc_for("alpha", sigmas=(10.0, 3.0, 0.1))),
                                    "differs from the index", sha_of=honest)
    assert "sha256" in message


def _index_with(**entry_changes):
    entry = {"id": "alpha", "version": 1, "path": "alpha/v1.json", "sha256": "0" * 64, "family": "edm"}
    entry.update(entry_changes)
    return {"schema_version": 1, "schedules": [entry]}


HOSTILE_INDEXES = {
    "dot-dot id": (_index_with(id="../evil"), "id"),
    "dot-dot path": (_index_with(path="../../evil.json"), "path"),
    "nested dot-dot path": (_index_with(path="alpha/../../v1.json"), "path"),
    "absolute path": (_index_with(path="/etc/passwd"), "path"),
    "url path": (_index_with(path="http://evil.example/alpha/v1.json"), "path"),
    "backslash path": (_index_with(path="alpha\\v1.json"), "path"),
    "backslash id": (_index_with(id="a\\b"), "id"),
    "cyrillic look-alike id": (_index_with(id="\u0430lpha"), "id"),
    "fullwidth id": (_index_with(id="\uff41lpha"), "id"),
    "very long id": (_index_with(id="a" * 5000), "id"),
    "very long path": (_index_with(path="a" * 5000 + "/v1.json"), "path"),
    "newline id": (_index_with(id="alpha\n"), "id"),
    "negative version": (_index_with(version=-1), "version"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_INDEXES))
def test_hostile_index_entries_rejected_before_any_download(remote, tmp_path, name):
    index, words = HOSTILE_INDEXES[name]
    remote.set_index(index)
    before = snapshot(tmp_path)
    with pytest.raises(AYSError, match="index.json is invalid") as error:
        pull(remote.url, Registry(tmp_path / "local"), downloader=fast())
    assert words in str(error.value).split("is invalid")[1]
    assert remote.hits == ["/index.json"]
    assert snapshot(tmp_path) == before and not (tmp_path / "local").exists()


def test_index_path_must_name_its_own_id_and_version(remote, tmp_path):
    remote.publish(doc_for("beta"))
    remote.set_index(_index_with(path="beta/v1.json"))
    report = pull(remote.url, Registry(tmp_path / "local"), downloader=fast())
    assert "is not 'alpha/v1.json'" in report.problems[0] and report.installed == []


@pytest.mark.parametrize("route, words", [
    (b"not json", "not valid JSON"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    (b'{"schema_version": 1, "schedules": [{"id": "a", "version": NaN}]}', "NaN"),
    (b'{"schema_version": 1, "schedules": {}}', "invalid"),
    ({"endless": b"[" * 65536}, "too large"),
    ({"status": 302, "headers": {"Location": "http://localhost:{port}/index.json"}}, "redirect to another host"),
    ({"stall": True}, "no answer"),
    ({"truncate": 10, "body": b'{"schema_version": 1, "schedules": []}'}, "truncated"),
])
def test_hostile_index_rejected(remote, tmp_path, route, words):
    downloader = impatient() if isinstance(route, dict) and route.get("stall") else fast()
    if isinstance(route, dict):
        route = served(remote, dict(route))
    remote.routes["/index.json"] = route
    with pytest.raises(AYSError, match=words):
        pull(remote.url, Registry(tmp_path / "local"), downloader=downloader)
    assert not (tmp_path / "local").exists()


def test_unreachable_remote_is_one_clear_error(tmp_path, closed_port_url):
    with pytest.raises(AYSError, match="cannot connect"):
        pull(closed_port_url, Registry(tmp_path / "local"), downloader=fast())


# ---------------------------------------------------------------- the CLI

def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_pull(remote, tmp_path, capsys):
    alpha = doc_for("alpha")
    remote.publish(alpha, files={("beta", 1): b"NaN"})
    reg = str(tmp_path / "local")
    code, out, err = run(capsys, "registry", "pull", remote.url, "--registry", reg, "--timeout", "30")
    assert code == 2
    assert "installed alpha@v1" in out and "pulled 1 new" in out
    assert err.count("\n") == 1 and err.startswith("ays: error: beta@v1: ") and "Traceback" not in err
    remote.publish(alpha)  # the bad file withdrawn
    assert run(capsys, "registry", "pull", remote.url, "--registry", reg)[0] == 0
    code, _, err = run(capsys, "registry", "pull", "not a url", "--registry", reg)
    assert code == 2 and err.startswith("ays: error: remote registry must be")


def test_cli_pull_rejects_bad_options(capsys):
    for args in (["--timeout", "0"], ["--timeout", "nan"], ["--retries", "-1"]):
        with pytest.raises(SystemExit) as exit_:
            main(["registry", "pull", "http://127.0.0.1:9/", *args])
        assert exit_.value.code == 2
    capsys.readouterr()


def test_cli_export_import_round_trip(tmp_path, capsys, shipped_copy):
    out_file = tmp_path / "shared" / "sdxl.json"
    out_file.parent.mkdir()
    code, out, _ = run(capsys, "registry", "export", "sdxl@1", str(out_file), "--registry", str(shipped_copy))
    assert code == 0 and "exported sdxl@v1" in out
    assert out_file.read_bytes() == shipped_copy.joinpath("sdxl", "v1.json").read_bytes()
    code, _, err = run(capsys, "registry", "export", "sdxl", str(out_file), "--registry", str(shipped_copy))
    assert code == 2 and "(use --force to replace it)" in err
    with pytest.raises(AYSError, match=r"\(use force to replace it\)"):  # the library's own parameter
        export_file("sdxl", out_file, [shipped_copy])
    assert run(capsys, "registry", "export", "sdxl", str(out_file), "--force")[0] == 0  # the latest: sdxl@v2
    code, out, _ = run(capsys, "registry", "export", "sd15", "-")
    assert json.loads(out)["id"] == "sd15"

    friend = Registry(tmp_path / "friend")
    assert import_file(out_file, friend) == (friend.path_of("sdxl", 2), "installed")
    assert import_file(out_file, friend)[1] == "present"
    assert friend.verify() == []
    code, out, _ = run(capsys, "registry", "import", str(out_file), "--registry", str(friend.root))
    assert code == 0 and "already present" in out


def test_import_keeps_the_version_and_refuses_conflicts(tmp_path, capsys):
    local = Registry(tmp_path / "local")
    theirs = tmp_path / "theirs.json"
    theirs.write_bytes(dump_schedule(doc_for("alpha", 5, description="theirs")))
    code, out, _ = run(capsys, "registry", "import", str(theirs), "--registry", str(local.root))
    assert code == 0 and "imported" in out and local.versions("alpha") == [5]
    kept = local.path_of("alpha", 5).read_bytes()
    theirs.write_bytes(dump_schedule(doc_for("alpha", 5, description="changed")))
    code, _, err = run(capsys, "registry", "import", str(theirs), "--registry", str(local.root))
    assert code == 2 and "conflict" in err and "Traceback" not in err
    assert local.path_of("alpha", 5).read_bytes() == kept
    assert_sound(local)


@pytest.mark.parametrize("name", sorted(set(HOSTILE_FILES) - {"other id inside", "other version inside"}))
def test_import_checks_like_pull(tmp_path, capsys, name):
    data, words = HOSTILE_FILES[name]
    bad = tmp_path / "bad.json"
    bad.write_bytes(data)
    local = tmp_path / "local"
    code, _, err = run(capsys, "registry", "import", str(bad), "--registry", str(local))
    assert code == 2 and err.startswith("ays: error: ") and err.count("\n") == 1
    assert words in err
    assert not local.exists()


def test_import_oversized_and_missing_files(tmp_path, capsys):
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (MAX_JSON_BYTES + 10))
    assert "too large" in run(capsys, "registry", "import", str(big), "--registry", str(tmp_path / "r"))[2]
    assert "no such file" in run(capsys, "registry", "import", str(tmp_path / "nope.json"))[2]


def test_export_errors(tmp_path, capsys):
    assert "no schedule" in run(capsys, "registry", "export", "nosuch", str(tmp_path / "x.json"))[2]
    assert "is a folder" in run(capsys, "registry", "export", "sdxl", str(tmp_path))[2]
    assert "cannot write" in run(capsys, "registry", "export", "sdxl", str(tmp_path / "no" / "dir.json"))[2]


# ---------------------------------------------------------------- publish --to a shared checkout

def _git_merge(base, ours, theirs):
    """git's three-way merge of one file: (clean?, merged bytes)."""
    result = subprocess.run(["git", "merge-file", "-p", str(ours), str(base), str(theirs)], capture_output=True)
    return result.returncode == 0, result.stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_publish_to_shared_checkouts_gives_merging_index_diffs(tmp_path, capsys):
    shared = tmp_path / "shared"
    base = Registry(shared)
    for schedule_id in ("alpha", "kappa", "omega"):
        base.publish(doc_for(schedule_id))
    clones = [tmp_path / "ann", tmp_path / "bob"]
    for clone in clones:
        shutil.copytree(shared, clone)
    for clone, schedule_id in zip(clones, ("delta", "sigma")):
        source = tmp_path / f"{schedule_id}.json"
        source.write_bytes(dump_schedule(doc_for(schedule_id)))
        code, out, _ = run(capsys, "registry", "publish", str(source), "--to", str(clone))
        assert code == 0 and f"published {schedule_id}@v1" in out  # numbered by the checkout alone
    clean, merged = _git_merge(shared / "index.json", clones[0] / "index.json", clones[1] / "index.json")
    assert clean
    shutil.copytree(clones[1] / "sigma", clones[0] / "sigma")
    assert merged == dump_index(Registry(clones[0]).build_index())  # same bytes as regenerating


def test_publish_to_needs_an_existing_folder(tmp_path, capsys):
    source = tmp_path / "a.json"
    source.write_bytes(dump_schedule(doc_for()))
    code, _, err = run(capsys, "registry", "publish", str(source), "--to", str(tmp_path / "typo"))
    assert code == 2 and "no such folder" in err and not (tmp_path / "typo").exists()


# ---------------------------------------------------------------- serve

def _get(url, path, method="GET"):
    host, port = url.split("//")[1].rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.request(method, path)  # sent as written: no client-side normalisation of "..", "//"
    response = connection.getresponse()
    return response.status, response.read()


def test_serve_is_read_only_and_only_serves_registry_files(tmp_path):
    registry = Registry(tmp_path / "reg")
    registry.publish(doc_for("alpha"))
    (tmp_path / "secret.txt").write_text("secret")
    (registry.root / "notes.json").write_text("{}")
    server = make_server(registry, port=0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = server_url(server)
    try:
        assert _get(url, "/index.json") == (200, registry.root.joinpath("index.json").read_bytes())
        assert _get(url, "/alpha/v1.json") == (200, registry.path_of("alpha", 1).read_bytes())
        assert _get(url, "/alpha/v1.json", "HEAD")[0] == 200
        for path in ("/", "/../secret.txt", "/alpha/../../secret.txt", "/%2e%2e/secret.txt", "/notes.json",
                     "/.lock", "/alpha/v01.json", "/alpha/v2.json", "/alpha//v1.json", "///v1.json",
                     "/ALPHA/v1.json", "/schema/schedule-v1.json", "/alpha/v1.json/", "/alpha\\v1.json"):
            assert _get(url, path)[0] == 404, path
        for method in ("PUT", "POST", "DELETE"):
            assert _get(url, "/alpha/v1.json", method)[0] == 501
        assert pull(url, Registry(tmp_path / "copy"), downloader=fast()).installed == ["alpha@v1"]
    finally:
        server.shutdown()
        server.server_close()


def test_serve_command_in_a_real_process(tmp_path):
    registry = Registry(tmp_path / "reg")
    registry.publish(doc_for("alpha"))
    process = subprocess.Popen([sys.executable, "-m", "ays_core", "registry", "serve", "--port", "0",
                                "--registry", str(registry.root)], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith(f"serving {registry.root} read-only at http://127.0.0.1:")
        url = line.split(" at ")[1].split()[0]
        assert pull(url, Registry(tmp_path / "copy"), downloader=fast()).installed == ["alpha@v1"]
        busy = subprocess.run([sys.executable, "-m", "ays_core", "registry", "serve", "--port", url.split(":")[2].strip("/"),
                               "--registry", str(registry.root)], cwd=REPO, capture_output=True, text=True, timeout=900)
        assert busy.returncode == 2 and "cannot listen" in busy.stderr
    finally:
        process.terminate()
        process.wait(900)


# ---------------------------------------------------------------- the pure part the WebUI calls

def test_pull_summary_is_one_line_and_never_raises(remote, tmp_path, closed_port_url):
    remote.publish(doc_for("alpha"))
    line = pull_summary(remote.url, tmp_path / "local", downloader=fast())
    assert line.startswith("AYS: pulled 1 new") and "\n" not in line
    assert "failed" in pull_summary(closed_port_url, tmp_path / "local", downloader=fast())
    assert "failed" in pull_summary("javascript:alert(1)", tmp_path / "local")
    assert "failed unexpectedly" in pull_summary(remote.url, object(), downloader=fast())


def test_pull_in_background_does_not_block(remote, tmp_path):
    remote.publish(doc_for("alpha"))
    index_held = remote.gate()
    remote.routes["/index.json"] = {"body": remote.routes["/index.json"], "gate": index_held}
    lines = []
    thread = pull_in_background(remote.url, tmp_path / "local", log=lines.append, downloader=fast())
    # back while the remote cannot have answered yet: the caller was not made to wait for the pull
    assert thread.is_alive() and lines == []
    index_held.set()
    thread.join(900)
    assert not thread.is_alive()
    assert len(lines) == 1 and lines[0].startswith("AYS: pulled 1 new")


# ---------------------------------------------------------------- real processes at once

PUBLISHER = """
import sys
from ays_core import Registry
from ays_core.registry import new_schedule_doc
root, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(count):
    doc = new_schedule_doc("mine", [10.0, 2.0, 0.5, 0.1], family="edm", prediction="edm", source="optimized",
                           solver="euler", samples=1, data="toy", description=f"{tag}-{i}")
    Registry(root).publish(doc)
"""
PULLER = """
import sys
from ays_core import Registry
from ays_core.share import Downloader, pull
root, url, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for _ in range(count):
    report = pull(url, Registry(root), downloader=Downloader(timeout=60, attempts=3, backoff=0.05))
    assert not [p for p in report.problems if "conflict" not in p], report.problems
"""
READER = """
import os, sys
from ays_core import Registry, AYSError
from ays_core.fileio import read_json
from ays_core.registry import validate_index
root, stop = sys.argv[1], sys.argv[2]
reads = 0
while not (reads and os.path.exists(stop)):  # until the writers are done, and at least one whole read
    try:
        index = read_json(root + "/index.json")
    except AYSError as exc:
        if "no such file" in str(exc):
            continue
        raise
    validate_index(index)
    for entry in index["schedules"]:
        Registry(root).get(entry["id"], entry["version"])  # every listed file whole and valid
    reads += 1
print(reads)
"""


def test_processes_publishing_and_pulling_at_once(remote, tmp_path):
    theirs = [doc_for("theirs", v, description=f"remote-{v}") for v in range(1, 7)]
    remote.publish(*theirs, doc_for("mine", 3, description="remote-mine"))
    root = str(tmp_path / "local")
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def start(code, *args):
        return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    stop = tmp_path / "writers-done"
    reader = start(READER, root, stop)
    writers = [start(PUBLISHER, root, "a", 6), start(PUBLISHER, root, "b", 6), start(PULLER, root, remote.url, 3)]
    for process in writers:
        _, err = process.communicate(timeout=900)
        assert process.returncode == 0, err
    stop.touch()
    out, err = reader.communicate(timeout=900)
    assert reader.returncode == 0, err
    assert int(out) > 0  # the reader read the index while it was written, never torn

    local = Registry(root)
    assert local.verify() == []
    assert local.versions("theirs") == list(range(1, 7))
    descriptions = [local.get("mine", v).doc.get("description") for v in local.versions("mine")]
    published = sorted(f"{tag}-{i}" for tag in "ab" for i in range(6))
    # every publish landed exactly once under its own version; the remote mine@v3 landed only if
    # v3 was still free when the puller got there (else it was reported as a conflict)
    assert sorted(d for d in descriptions if d != "remote-mine") == published
    assert len(local.versions("mine")) == len(descriptions) == len(set(local.versions("mine")))
    assert [p.name for p in local.root.rglob("*.tmp")] == []


# ---------------------------------------------------------------- failures while writing

def test_a_failed_write_leaves_nothing_behind(remote, tmp_path, monkeypatch):
    import ays_core.registry as registry_module

    remote.publish(doc_for("alpha"), doc_for("beta"))
    local = Registry(tmp_path / "local")
    real_replace = os.replace

    def disk_full_for_beta(src, dst):
        if "beta" in str(dst):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(registry_module.os, "replace", disk_full_for_beta)
    with pytest.raises(AYSError, match="No space left"):
        pull(remote.url, local, downloader=fast())
    monkeypatch.undo()
    assert [p.name for p in local.root.rglob("*") if p.name.endswith(".tmp")] == []
    assert local.versions("beta") == [] and local.verify() == []  # alpha landed whole and is indexed
    assert pull(remote.url, local, downloader=fast()).installed == ["beta@v1"]
    assert local.verify() == []
