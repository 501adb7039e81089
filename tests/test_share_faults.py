"""The registry and sharing under faults and attack (issue 15): each section is one defect found by
probing as an attacker or a crash would, and every test here failed before its fix."""
import json

import pytest

from ays_core import AYSError, Registry
from ays_core.cli import main
from ays_core.fileio import parse_json, sha256_bytes
from ays_core.registry import dump_schedule
from ays_core.share import import_file, make_server, pull, server_url
from remote_registry import doc_for
from test_share import fast


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def float_version_bytes(schedule_id="alpha", version=2):
    """A valid schedule file except that its version is written `2.0`."""
    text = dump_schedule(doc_for(schedule_id, version=version)).decode()
    return text.replace(f'"version": {version},', f'"version": {version}.0,').encode()


def serve_in_thread(registry):
    import threading

    server = make_server(registry, port=0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def get(url):
    import requests

    return requests.get(url, timeout=30)


# ---------------------------------------------------------------- 1. versions are JSON integers

def test_float_version_is_refused_by_import_and_publish(tmp_path, capsys):
    src = tmp_path / "two.json"
    src.write_bytes(float_version_bytes())
    reg = tmp_path / "reg"
    with pytest.raises(AYSError, match="version"):
        import_file(src, Registry(reg))
    code, _, err = run(capsys, "registry", "publish", str(src), "--registry", str(reg))
    assert code == 2 and "version" in err and "Traceback" not in err
    assert not reg.exists() or Registry(reg).versions("alpha") == []


def test_float_version_is_refused_by_pull(remote, tmp_path):
    data = float_version_bytes("alpha", 1)
    entry = {"id": "alpha", "version": 1, "path": "alpha/v1.json", "sha256": sha256_bytes(data), "family": "edm"}
    remote.routes["/alpha/v1.json"] = data
    remote.routes["/index.json"] = json.dumps({"schema_version": 1, "schedules": [entry]}).encode()
    report = pull(remote.url, Registry(tmp_path / "local"), downloader=fast())
    assert report.installed == [] and "version" in report.problems[0]
    remote.routes["/index.json"] = json.dumps({"schema_version": 1, "schedules": [{**entry, "version": 1.0}]}).encode()
    with pytest.raises(AYSError, match="index.json is invalid: schedules/0/version"):
        pull(remote.url, Registry(tmp_path / "local"), downloader=fast())


def test_float_schema_version_is_refused():
    text = dump_schedule(doc_for()).decode().replace('"schema_version": 1,', '"schema_version": 1.0,')
    from ays_core.registry import validate

    with pytest.raises(AYSError, match="schema_version"):
        validate(parse_json(text.encode()))


def test_a_float_version_on_disk_is_reported_and_the_rest_still_checked(tmp_path):
    """A file that an older AYS let in: verify names it, the index and serve leave it out, and
    the other files keep being checked against their sha256."""
    registry = Registry(tmp_path / "reg")
    registry.publish(doc_for("beta"))
    (registry.root / "alpha").mkdir()
    (registry.root / "alpha" / "v2.json").write_bytes(float_version_bytes("alpha", 2))
    assert [e["path"] for e in registry.write_index()["schedules"]] == ["beta/v1.json"]
    (registry.root / "beta" / "v1.json").write_bytes(dump_schedule(doc_for("beta", description="edited")))
    problems = registry.verify()
    assert any("alpha/v2.json" in p and "version" in p for p in problems), problems
    assert any("beta/v1.json: sha256 differs" in p for p in problems), problems
    server = serve_in_thread(registry)
    try:
        served = get(server_url(server) + "index.json").json()
    finally:
        server.shutdown()
        server.server_close()
    assert [(e["path"], type(e["version"])) for e in served["schedules"]] == [("beta/v1.json", int)]


# ---------------------------------------------------------------- 7. duplicate keys

@pytest.mark.parametrize("text", [
    b'{"a": 1, "a": 2}',
    b'{"outer": {"x": [1, {"k": 1, "k": 1}]}}',
])
def test_repeated_keys_are_refused(text):
    with pytest.raises(AYSError, match="appears twice"):
        parse_json(text)


def test_repeated_key_in_a_schedule_is_refused_by_import_and_pull(remote, tmp_path):
    honest = dump_schedule(doc_for("alpha")).decode()
    twice = honest.replace('"version": 1,', '"version": 1,\n  "version": 7,').encode()
    src = tmp_path / "twice.json"
    src.write_bytes(twice)
    with pytest.raises(AYSError, match="'version' appears twice"):
        import_file(src, Registry(tmp_path / "reg"))
    remote.publish(files={("alpha", 1): twice})
    report = pull(remote.url, Registry(tmp_path / "local"), downloader=fast())
    assert report.installed == [] and "appears twice" in report.problems[0]
    remote.routes["/index.json"] = b'{"schema_version": 1, "schedules": [], "schedules": []}'
    with pytest.raises(AYSError, match="appears twice"):
        pull(remote.url, Registry(tmp_path / "local"), downloader=fast())
