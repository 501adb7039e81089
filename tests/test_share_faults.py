"""The registry and sharing under faults and attack (issue 15): each section is one defect found by
probing as an attacker or a crash would, and every test here failed before its fix."""
import json

import pytest

from ays_core import AYSError, Registry
from ays_core.cli import main
from ays_core.fileio import parse_json, sha256_bytes
from ays_core.registry import dump_schedule
from ays_core.share import Downloader, import_file, make_server, pull, server_url
from remote_registry import Remote, doc_for
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


def test_a_bad_index_entry_does_not_stop_verify_checking_the_others(tmp_path):
    """An index written by an older AYS that let `2.0` in: verify names it and still checks every
    other entry's sha256."""
    registry = Registry(tmp_path / "reg")
    registry.publish(doc_for("beta"))
    index = registry.read_index()
    good = index["schedules"][0]
    bad = {**good, "id": "alpha", "version": 2.0, "path": "alpha/v2.0.json"}
    (registry.root / "index.json").write_text(json.dumps({**index, "schedules": [bad, good]}))
    (registry.root / "beta" / "v1.json").write_bytes(dump_schedule(doc_for("beta", description="edited")))
    problems = registry.verify()
    assert any("index.json is invalid" in p for p in problems), problems
    assert any("beta/v1.json: sha256 differs" in p for p in problems), problems


# ---------------------------------------------------------------- 2. redirects and deadlines

def test_redirect_is_judged_by_where_the_client_connects(remote, tmp_path):
    """urllib.parse reads 'http://OTHER\\@HOST/' as HOST; requests connects to OTHER."""
    other = Remote()
    try:
        remote.publish(doc_for("alpha"))
        other.routes[f"/%5C@127.0.0.1:{remote.port}/alpha/v1.json"] = dump_schedule(doc_for("alpha"))
        hop = f"http://127.0.0.1:{other.port}\\@127.0.0.1:{remote.port}/alpha/v1.json"
        remote.routes["/alpha/v1.json"] = {"status": 302, "headers": {"Location": hop}}
        report = pull(remote.url, Registry(tmp_path / "local"), downloader=fast())
    finally:
        other.close()
    assert report.installed == [] and "redirect to another host refused" in report.problems[0]
    assert other.hits == []


class DrippingServer:
    """Answers every request with a status line and then one header byte every `drip` seconds,
    `count` bytes at most (a bounded loop on the loopback), never finishing the headers."""

    def __init__(self, drip=0.05, count=200):
        import socket
        import threading

        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.drip, self.count = drip, count
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        import threading

        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(connection,), daemon=True).start()

    def _drip(self, connection):
        import time

        with connection:
            try:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                for _ in range(self.count):
                    connection.sendall(b"a")
                    time.sleep(self.drip)
            except OSError:
                return  # the client hung up, as it should

    def close(self):
        self.listener.close()


def test_headers_dripped_byte_by_byte_hit_the_file_deadline(tmp_path):
    server = DrippingServer()
    try:
        # 10 s of headers, a byte each 0.05 s: far from the 5 s read timeout, far past the 1 s deadline
        with pytest.raises(AYSError, match=r"too slow \(not complete after 1 s\)"):
            pull(server.url, Registry(tmp_path / "local"), downloader=Downloader(timeout=5, deadline=1, attempts=1))
    finally:
        server.close()


def test_the_whole_pull_has_a_deadline(remote, tmp_path):
    docs = [doc_for(f"s{i}") for i in range(5)]
    remote.publish(*docs)
    never = remote.gate()
    for doc in docs[2:]:  # two files arrive at once, the third never: only the pull's deadline ends it
        remote.routes[f"/{doc['id']}/v1.json"] = {"body": dump_schedule(doc), "gate": never}
    downloader = Downloader(timeout=10, deadline=30, total=3.0, attempts=1)  # 3 s: the index is in by then
    report = pull(remote.url, Registry(tmp_path / "local"), downloader=downloader)
    assert len(report.installed) < len(docs)
    assert report.problems[-1].startswith("pull stopped: not complete within 3 s;"), report.problems
    assert f"{len(docs) - len(report.installed)} file(s) not fetched" in report.problems[-1]
    assert Registry(tmp_path / "local").verify() == []


def test_cli_pull_takes_both_deadlines(remote, tmp_path, capsys):
    remote.publish(doc_for("alpha"), doc_for("beta"))
    remote.routes["/alpha/v1.json"] = {"body": dump_schedule(doc_for("alpha")), "drip": 0.01}
    remote.routes["/beta/v1.json"] = {"body": dump_schedule(doc_for("beta")), "delay": 1.0}
    base = ["registry", "pull", remote.url, "--timeout", "5", "--retries", "0"]
    code, _, err = run(capsys, *base, "--registry", str(tmp_path / "a"), "--file-deadline", "0.5", "--id", "alpha")
    assert code == 2 and "too slow (not complete after 0.5 s)" in err
    code, _, err = run(capsys, *base, "--registry", str(tmp_path / "b"), "--pull-deadline", "0.5", "--id", "beta")
    assert code == 2 and "pull stopped: not complete within 0.5 s" in err


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


# ---------------------------------------------------------------- 3. links inside a registry

def outside_schedule(tmp_path, name="outside.json", schedule_id="alpha"):
    target = tmp_path / name
    target.write_bytes(dump_schedule(doc_for(schedule_id)))
    return target


def test_a_linked_id_folder_is_never_written_through(tmp_path, remote, capsys):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    registry = Registry(tmp_path / "reg")
    registry.publish(doc_for("beta"))
    (registry.root / "alpha").symlink_to(outside, target_is_directory=True)
    with pytest.raises(AYSError, match="alpha is a symbolic link; refusing to write"):
        registry.publish(doc_for("alpha"))
    src = tmp_path / "alpha.json"
    src.write_bytes(dump_schedule(doc_for("alpha")))
    code, _, err = run(capsys, "registry", "import", str(src), "--registry", str(registry.root))
    assert code == 2 and "symbolic link" in err and err.count("\n") == 1
    remote.publish(doc_for("alpha"))
    with pytest.raises(AYSError, match="alpha is a symbolic link"):
        pull(remote.url, registry, downloader=fast())
    assert list(outside.iterdir()) == []
    assert any("alpha is a symbolic link" in p for p in registry.verify())


def test_linked_schedule_files_are_refused_on_read_and_not_served(tmp_path):
    registry = Registry(tmp_path / "reg")
    registry.publish(doc_for("beta"))
    (registry.root / "alpha").mkdir()
    (registry.root / "alpha" / "v1.json").symlink_to(outside_schedule(tmp_path))
    (registry.root / "gamma").symlink_to(tmp_path / "elsewhere-missing", target_is_directory=True)
    with pytest.raises(AYSError, match=r"alpha/v1.json is a symbolic link"):
        registry.get("alpha")
    assert [s.ref for s in registry.schedules()] == ["beta@v1"]
    assert [e["path"] for e in registry.write_index()["schedules"]] == ["beta/v1.json"]
    problems = registry.verify()
    assert sum("symbolic link" in p for p in problems) == 2 and len(problems) == 2, problems
    server = serve_in_thread(registry)
    try:
        listed = [e["path"] for e in get(server_url(server) + "index.json").json()["schedules"]]
        served = {path: get(server_url(server) + path).status_code for path in ("alpha/v1.json", "beta/v1.json")}
    finally:
        server.shutdown()
        server.server_close()
    assert listed == ["beta/v1.json"] and served == {"alpha/v1.json": 404, "beta/v1.json": 200}


@pytest.mark.parametrize("dangling", [False, True])
def test_a_linked_lock_file_cannot_create_or_empty_another_file(tmp_path, dangling):
    registry = Registry(tmp_path / "reg")
    registry.root.mkdir()
    victim = tmp_path / "victim.txt"
    if not dangling:
        victim.write_bytes(b"precious")
    (registry.root / ".lock").symlink_to(victim)
    with pytest.raises(AYSError, match=r"\.lock is a symbolic link"):
        registry.publish(doc_for("alpha"))
    assert (victim.read_bytes() == b"precious") if not dangling else not victim.exists()
    assert registry.versions("alpha") == []


def test_a_linked_index_is_replaced_never_written_through(tmp_path):
    registry = Registry(tmp_path / "reg")
    registry.root.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (registry.root / "index.json").symlink_to(victim)
    registry.publish(doc_for("alpha"))
    assert victim.read_bytes() == b"precious"
    assert not (registry.root / "index.json").is_symlink() and registry.verify() == []


def test_a_lookup_in_a_linked_id_folder_names_the_link(tmp_path):
    registry = Registry(tmp_path / "reg")
    elsewhere = Registry(tmp_path / "elsewhere")
    elsewhere.publish(doc_for("alpha"))
    registry.root.mkdir()
    (registry.root / "alpha").symlink_to(elsewhere.root / "alpha", target_is_directory=True)
    for version in (None, 1):
        with pytest.raises(AYSError, match="alpha is a symbolic link; refusing to read"):
            registry.get("alpha", version)


# ---------------------------------------------------------------- 4. a publisher killed mid-write

CRASHING_PUBLISH = """
import json, os, sys
from ays_core.registry import Registry

real_replace = os.replace


def replace_or_die(src, dst, *args, **kwargs):
    if os.path.basename(str(dst)) == sys.argv[3]:
        os._exit(9)  # like kill -9: no finally block, no cleanup
    return real_replace(src, dst, *args, **kwargs)


os.replace = replace_or_die
Registry(sys.argv[1]).publish(json.loads(sys.argv[2]))
"""


def crash_publish(registry, doc, when):
    """Publish in a process that dies just before the rename that lands `when` (a file name)."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", CRASHING_PUBLISH, str(registry.root), json.dumps(doc), when],
                          cwd=repo, env={**__import__("os").environ, "PYTHONPATH": str(repo)}, timeout=900)
    assert done.returncode == 9


def leftovers(registry):
    return sorted(p.name for p in registry.root.rglob("*") if p.name.endswith(".tmp"))


def heal_by_publish(registry, remote, capsys):
    registry.publish(doc_for("beta"))


def heal_by_pull(registry, remote, capsys):
    remote.publish()  # a remote with nothing new
    assert pull(remote.url, registry, downloader=fast()).problems == []


def heal_by_index(registry, remote, capsys):
    assert run(capsys, "registry", "index", "--registry", str(registry.root))[0] == 0


@pytest.mark.parametrize("heal", [heal_by_publish, heal_by_pull, heal_by_index])
@pytest.mark.parametrize("when", ["v2.json", "index.json"])
def test_a_killed_publish_is_reported_and_healed_by_the_next_write(tmp_path, remote, capsys, when, heal):
    registry = Registry(tmp_path / "reg")
    registry.publish(doc_for("alpha"))
    crash_publish(registry, doc_for("alpha", version=2, description="second"), when)
    assert len(leftovers(registry)) == 1
    problems = registry.verify()
    assert any("temporary file of an interrupted write" in p for p in problems), problems
    if when == "index.json":
        assert any("alpha/v2.json is not in the index" in p for p in problems), problems
    heal(registry, remote, capsys)
    assert leftovers(registry) == [] and registry.verify() == []
    assert [e["version"] for e in registry.read_index()["schedules"] if e["id"] == "alpha"] == \
        ([1, 2] if when == "index.json" else [1])


# ---------------------------------------------------------------- 5. serve under many connections

SLOW_CLIENTS = 300  # idle and half-open connections: far more than the server below may hold


def test_serve_keeps_answering_under_idle_and_half_open_connections(tmp_path):
    """A real `ays registry serve` process that may open only 128 files (so a thread and a socket
    per connection, kept forever, exhausts it) gets SLOW_CLIENTS connections that send nothing or
    half a request, then an honest pull: it must be served."""
    import resource
    import socket
    import subprocess
    import sys
    from pathlib import Path

    registry = Registry(tmp_path / "reg")
    registry.publish(doc_for("alpha"))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    repo = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-m", "ays_core", "registry", "serve", "--port", "0", "--registry", str(registry.root)],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (128, hard)))
    held = []
    try:
        url = process.stdout.readline().split(" at ")[1].split()[0]
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        for i in range(SLOW_CLIENTS):
            connection = socket.create_connection(("127.0.0.1", port), timeout=30)
            if i % 2:
                connection.sendall(b"GET /index.json HTTP/1.1\r\nHost: x\r\n")  # the headers never end
            held.append(connection)
        answer = get(url + "index.json")
        assert answer.status_code == 200 and [e["path"] for e in answer.json()["schedules"]] == ["alpha/v1.json"]
        assert pull(url, Registry(tmp_path / "copy"), downloader=fast()).installed == ["alpha@v1"]
    finally:
        for connection in held:
            connection.close()
        process.terminate()
        process.wait(30)


def test_serve_drops_silent_connections(tmp_path):
    import socket

    registry = Registry(tmp_path / "reg")
    registry.publish(doc_for("alpha"))
    server = make_server(registry, port=0, quiet=True, timeout=0.2)
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(server.server_address[:2], timeout=60) as silent:
            assert silent.recv(1) == b""  # closed by the server, not by our 60 s guard
    finally:
        server.shutdown()
        server.server_close()


def test_served_index_is_cached_until_a_file_changes(tmp_path, monkeypatch):
    registry = Registry(tmp_path / "reg")
    registry.publish(doc_for("alpha"))
    builds = []
    real_build = Registry.build_index
    monkeypatch.setattr(Registry, "build_index", lambda self: builds.append(1) or real_build(self))
    server = serve_in_thread(registry)
    url = server_url(server) + "index.json"
    try:
        first = [get(url).content for _ in range(5)]
        assert len(set(first)) == 1 and len(builds) == 1
        registry.publish(doc_for("beta"))
        builds.clear()
        after = get(url).json()
        assert [e["path"] for e in after["schedules"]] == ["alpha/v1.json", "beta/v1.json"]
        assert len(builds) == 1
    finally:
        server.shutdown()
        server.server_close()

