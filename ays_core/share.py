"""Sharing schedules: pull from a remote registry over HTTP, serve one, import and export single files.

A remote registry is any static HTTP(S) folder with the local layout: `index.json` plus
`<id>/v<version>.json`. Everything that arrives is untrusted: downloads are streamed under a byte
cap with timeouts, a deadline per file (headers included) and one for the whole pull, retried with
backoff when the failure may be passing; redirects may not leave the host and port that the HTTP
client would actually connect to; each file must match the sha256 its index gives and pass the
schedule validator. Files reach the disk only through `Registry.install`: under the registry
lock, atomically, at the sender's version number, never over a different file of that version.
`serve` answers from a bounded set of connections, each with a timeout, and caches the index
until a file changes.
"""
import contextlib
import functools
import http.client
import http.server
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from .errors import AYSError, SettingError
from .fileio import MAX_JSON_BYTES, atomic_write, parse_json, read_capped, sha256_bytes
from .registry import (ID_PATTERN, MAX_INDEX_BYTES, SHIPPED_REGISTRY, VERSION_FILE, Registry, RegistrySet, dump_index,
                       dump_schedule,
                       file_holds, parse_ref, validate, validate_index)
from .version import __version__

MAX_REDIRECTS = 5
CHUNK_BYTES = 64 << 10


# ---------------------------------------------------------------- downloads

class _Passing(Exception):
    """A failure worth retrying: timeout, dropped connection, truncated body, HTTP 429/5xx."""


class PullDeadline(AYSError):
    """The whole pull ran past `Downloader.total`: nothing more is fetched."""


@dataclass
class Downloader:
    """GET small files over HTTP(S) without trusting the server.

    `timeout` bounds connecting and each wait for data; `deadline` one file from the request to
    its last byte, headers included (a server dripping one byte at a time defeats a read
    timeout); `total` a whole pull from its first request, retries included; `attempts` and
    `backoff` the retries (waits of backoff, 2*backoff, ...). A download past its deadline has its
    connection shut down by a watchdog, wherever it waits."""

    timeout: float = 10.0
    deadline: float = 120.0
    total: float = 600.0
    attempts: int = 3
    backoff: float = 0.5
    session: object = None
    ends: float = None  # time.monotonic() at which the whole pull stops; set by start()

    def start(self):
        """Start the clock of a whole pull (the first get starts it otherwise)."""
        self.ends = time.monotonic() + self.total

    def get(self, url, limit):
        """The body of `url`, at most `limit` bytes, or AYSError saying what went wrong."""
        if self.session is None:
            self.session = _watched_session()  # one per downloader: files reuse its connections
        if self.ends is None:
            self.start()
        problem = None
        for attempt in range(max(1, self.attempts)):
            if attempt:
                wait = self.backoff * 2 ** (attempt - 1)
                if time.monotonic() + wait >= self.ends:
                    raise self._out_of_time()
                time.sleep(wait)
            try:
                return self._get_watched(url, limit)
            except _Passing as exc:
                problem = exc
        tries = f" (after {attempt + 1} attempts)" if attempt else ""
        raise AYSError(f"{url}: {problem}{tries}")

    def _out_of_time(self):
        return PullDeadline(f"pull stopped: not complete within {self.total:g} s")

    def _get_watched(self, url, limit):
        """One attempt, its connection shut down when it runs past the file's or the pull's deadline."""
        now = time.monotonic()
        if now >= self.ends:
            raise self._out_of_time()
        ends = min(now + self.deadline, self.ends)
        with _Watchdog(ends - now) as watch:
            try:
                data = self._get_once(self.session, url, limit, ends)
            except Exception:
                if not (watch.fired or time.monotonic() >= ends):
                    raise
            else:  # a connection shut while headers arrive can look like an empty answer
                if not watch.fired:
                    return data
        if ends == self.ends:
            raise self._out_of_time()
        raise _Passing(f"too slow (not complete after {self.deadline:g} s)")

    def _get_once(self, session, url, limit, ends):
        import requests

        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = session.get(url, stream=True, allow_redirects=False, timeout=(self.timeout, self.timeout),
                                       headers={"Accept-Encoding": "identity", "User-Agent": _user_agent()})
            except requests.Timeout:
                raise _Passing(f"no answer within {self.timeout:g} s") from None
            except requests.ConnectionError as exc:
                raise _Passing(f"cannot connect ({_reason(exc)})") from None
            except requests.RequestException as exc:
                raise AYSError(f"{url}: {_reason(exc)}") from None
            with response:
                if response.is_redirect:
                    url = _redirect_target(url, response.headers["Location"])
                    continue
                if response.status_code == 429 or response.status_code >= 500:
                    raise _Passing(f"HTTP {response.status_code} {response.reason or ''}".rstrip())
                if response.status_code != 200:
                    raise AYSError(f"{url}: HTTP {response.status_code} {response.reason or ''}".rstrip())
                return self._read_body(response, url, limit, ends)
        raise AYSError(f"{url}: more than {MAX_REDIRECTS} redirects")

    def _read_body(self, response, url, limit, ends):
        import urllib3

        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise AYSError(f"{url}: too large ({declared} bytes, limit {limit})")
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):  # we ask for identity; decompressing would lift the cap
            raise AYSError(f"{url}: compressed answer ({encoding[:40]}) although none was asked for")
        # read1 returns what one socket read brings, so the deadline is checked while a server
        # drips bytes (iter_content would wait for a whole chunk); urllib3 1.26, pinned by the
        # WebUIs, lacks it, and its http.client response has it.
        read_some = getattr(response.raw, "read1", None) or response.raw._fp.read1
        chunks, size = [], 0
        while True:
            try:
                chunk = read_some(CHUNK_BYTES)
            except (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError) as exc:
                if "timed out" in str(exc).lower() or isinstance(exc, TimeoutError):
                    raise _Passing(f"no data for {self.timeout:g} s (after {size} bytes)") from None
                raise _Passing(f"download truncated (connection closed after {size} bytes)") from None
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise AYSError(f"{url}: too large (more than {limit} bytes)")
            if time.monotonic() > ends:
                raise _Passing("too slow")  # _get_watched says which deadline
            chunks.append(chunk)
        if declared.isdigit() and size != int(declared):
            raise _Passing(f"download truncated ({size} of {declared} bytes)")
        return b"".join(chunks)


def _user_agent():
    return f"ays/{__version__}"


def _reason(exc):
    """The innermost message of a requests/urllib3 error, without pool and connection reprs."""
    while exc.args and isinstance(exc.args[0], BaseException):
        exc = exc.args[0]
    reason = getattr(exc, "reason", None)
    text = str(reason if isinstance(reason, BaseException) else exc)
    return re.sub(r"^HTTPS?Connection(Pool)?\(.*?\): ", "", text)


def _as_requested(url):
    """(the URL as the HTTP client will send it, (scheme, host, port) it will connect to), parsed
    the way requests and urllib3 parse it. urllib.parse disagrees on hostile URLs: it reads
    'http://a:1\\@b:2/' as host b, while the client connects to a. (None, (None,) * 3) if the
    client cannot parse it."""
    from requests.models import PreparedRequest
    from urllib3.util import parse_url

    prepared = PreparedRequest()
    try:
        prepared.prepare_url(url, None)
        parts = parse_url(prepared.url)
    except Exception:  # noqa: BLE001 -- requests and urllib3 raise several types for a bad URL
        return None, (None, None, None)
    scheme = (parts.scheme or "").lower()
    return prepared.url, (scheme, (parts.host or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme))


def _origin(url):
    return _as_requested(url)[1]


def _redirect_target(url, location):
    """Where a redirect leads, as the client will request it, if it stays on the same host and
    port (an upgrade to https on the same host is fine)."""
    try:
        target = urllib.parse.urljoin(url, location)
    except ValueError:
        target = location
    scheme, host, port = _origin(url)
    requested, (new_scheme, new_host, new_port) = _as_requested(target)
    same_origin = (new_scheme, new_host, new_port) == (scheme, host, port)
    upgrade = (scheme, new_scheme) == ("http", "https") and new_host == host
    if requested is None or not (same_origin or upgrade):
        raise AYSError(f"{url}: redirect to another host refused ({target[:200]})")
    return requested


class _Watchdog:
    """Shuts down the connection of the download running in this thread when `seconds` have
    passed, whether it waits for a connection, for headers or for the body."""

    current = threading.local()

    def __init__(self, seconds):
        self.connection = None
        self.fired = False
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True

    def __enter__(self):
        _Watchdog.current.watch = self
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
        _Watchdog.current.watch = None

    def _fire(self):
        self.fired = True
        self.shut(self.connection)

    def shut(self, connection):
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):  # the plain socket's shutdown: safe for TLS sockets too
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    @classmethod
    def watch(cls, connection):
        """Called by each connection as it connects and sends a request."""
        watch = getattr(cls.current, "watch", None)
        if watch is not None:
            watch.connection = connection
            if watch.fired:
                watch.shut(connection)


@functools.lru_cache(maxsize=None)
def _watched_pools():
    """urllib3 pool classes whose connections report to the thread's _Watchdog."""
    import urllib3
    import urllib3.connection

    def watched(connection_class):
        class Watched(connection_class):
            def connect(self):
                _Watchdog.watch(self)
                super().connect()
                _Watchdog.watch(self)

            def request(self, *args, **kwargs):
                _Watchdog.watch(self)
                return super().request(*args, **kwargs)

        return Watched

    class Pool(urllib3.HTTPConnectionPool):
        ConnectionCls = watched(urllib3.connection.HTTPConnection)

    class TLSPool(urllib3.HTTPSConnectionPool):
        ConnectionCls = watched(urllib3.connection.HTTPSConnection)

    return {"http": Pool, "https": TLSPool}


def _watched_session():
    """A requests session (proxies, certificates as usual) whose connections a _Watchdog can shut."""
    import requests
    import requests.adapters

    class Adapter(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = _watched_pools()

        def proxy_manager_for(self, *args, **kwargs):
            manager = super().proxy_manager_for(*args, **kwargs)
            manager.pool_classes_by_scheme = _watched_pools()
            return manager

    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, Adapter())
    return session


def base_url(url):
    """The folder URL of a remote registry, ending in '/'; the URL of its index.json works too."""
    scheme, host, _ = _origin(str(url).strip())
    parts = urllib.parse.urlsplit(str(url).strip()) if host else None
    if scheme not in ("http", "https") or not host:
        raise AYSError(f"remote registry must be an http:// or https:// URL, got {str(url)[:200]!r}")
    if parts.query:
        raise AYSError(f"remote registry URL must not have a query (?...): {str(url)[:200]!r}")
    path = parts.path
    if path.endswith("/index.json"):
        path = path[:-len("index.json")]
    elif not path.endswith("/"):
        path += "/"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


# ---------------------------------------------------------------- checking what arrives

def check_schedule_bytes(data, what):
    """The validated document in untrusted schedule-file bytes (pull and import check the same way)."""
    doc = parse_json(data, what)
    validate(doc, what=what)
    return doc


def _registries(registries):
    """A RegistrySet whose first registry is the one written to, from a RegistrySet, a Registry,
    a folder, or a list of folders (the WebUI's search order)."""
    if isinstance(registries, RegistrySet):
        return registries
    return RegistrySet(registries if isinstance(registries, (list, tuple)) else [registries])


def _stored(registries, schedule_id, version):
    """The file (or whatever else) already holding id@version anywhere in the set, or None."""
    for registry in registries.registries:
        path = registry.path_of(schedule_id, version)
        if os.path.lexists(path):
            return path
    return None


def _stored_sha256(path):
    """sha256 of a stored file, None when it cannot be read without following a link."""
    try:
        return sha256_bytes(read_capped(path, MAX_JSON_BYTES, follow_links=False))
    except AYSError:
        return None


def _compare_stored(registries, doc):
    """None when id@version is stored nowhere; else "present" or a conflict message."""
    path = _stored(registries, doc["id"], doc["version"])
    if path is None:
        return None
    if file_holds(path, doc):
        return "present"
    return _conflict(doc, path)


def _conflict(doc, path):
    return (f"conflict: {doc['id']}@v{doc['version']} is stored in {path} with different content; "
            f"the local file was kept (versions are never overwritten)")


# ---------------------------------------------------------------- pull

@dataclass
class PullReport:
    source: str
    target: Path
    installed: list = field(default_factory=list)  # refs like "sdxl@v2"
    present: list = field(default_factory=list)
    problems: list = field(default_factory=list)  # one line each: "<ref>: <what is wrong>"
    holders: dict = field(default_factory=dict)  # registry folder -> refs of `present` it already holds

    def summary(self):
        text = f"pulled {len(self.installed)} new schedule file(s) from {self.source} into {self.target}"
        if self.present:
            where = "; ".join(f"{len(refs)} in {_describe(root)} ({', '.join(refs[:5])}{', ...' if len(refs) > 5 else ''})"
                              for root, refs in self.holders.items())
            text += f"; skipped {len(self.present)} already present with the same content: {where}"
        if self.problems:
            text += f"; {len(self.problems)} rejected (first: {self.problems[0]})"
        return text


def pull(url, registries, ids=None, downloader=None, progress=False):
    """Download a remote registry's index and the files it lists (only `ids` when given), check
    each against the index's sha256 and the schema, and install new versions into the first
    registry of `registries` (a Registry, a folder, a list of folders or a RegistrySet). A
    version stored anywhere in them with other content is a conflict: reported, never
    overwritten. Problems with one file go into the PullReport; a bad URL or index raises AYSError.
    `progress` shows a progress bar on a terminal."""
    from tqdm import tqdm

    registries = _registries(registries)
    target = registries.registries[0]
    downloader = downloader or Downloader()
    base = base_url(url)
    downloader.start()
    entries = _remote_entries(downloader, base, ids)
    report = PullReport(base, target.root)
    arrived = []
    for done, entry in enumerate(tqdm(entries, desc="pull", unit="file", leave=False,
                                      disable=None if progress else True)):
        ref = f"{entry['id']}@v{entry['version']}"
        try:
            doc = _fetch_new(downloader, base, entry, registries)
        except PullDeadline as exc:  # what arrived so far is still installed
            report.problems.append(f"{exc}; {len(entries) - done} file(s) not fetched (from {ref} on)")
            break
        except AYSError as exc:
            report.problems.append(f"{ref}: {exc}")
            continue
        if doc is None:
            report.present.append(ref)
            holder = _stored(registries, entry["id"], entry["version"]).parent.parent
            report.holders.setdefault(holder, []).append(ref)
        else:
            arrived.append(doc)
    # install also with nothing new: it heals what a killed writer left in an existing registry
    for doc, status in zip(arrived, target.install(arrived) if arrived or target.root.is_dir() else []):
        ref = f"{doc['id']}@v{doc['version']}"
        if status == "conflict":  # someone installed that version since we looked
            report.problems.append(f"{ref}: {_conflict(doc, target.path_of(doc['id'], doc['version']))}")
        else:
            (report.installed if status == "installed" else report.present).append(ref)
            if status != "installed":
                report.holders.setdefault(target.root, []).append(ref)
    return report


def _describe(root):
    return f"the registry shipped with AYS ({root})" if Path(root).resolve() == SHIPPED_REGISTRY.resolve() else str(root)


def _remote_entries(downloader, base, ids):
    url = base + "index.json"
    index = parse_json(downloader.get(url, MAX_INDEX_BYTES), what=url, limit=MAX_INDEX_BYTES)
    validate_index(index, what=url)
    entries = index["schedules"]
    if not ids:
        return entries
    wanted = [parse_ref(ref) for ref in ids]  # 'sdxl' (every version) or 'sdxl@2'

    def matches(entry, schedule_id, version):
        return entry["id"] == schedule_id and version in (None, entry["version"])

    missing = [ref for ref, (i, v) in zip(ids, wanted) if not any(matches(e, i, v) for e in entries)]
    if missing:
        raise AYSError(f"{url} lists no schedule {', '.join(missing)}")
    return [e for e in entries if any(matches(e, i, v) for i, v in wanted)]


def _fetch_new(downloader, base, entry, registries):
    """The checked document for an index entry, or None when the same file is already stored."""
    schedule_id, version = entry["id"], entry["version"]
    expected_path = f"{schedule_id}/v{version}.json"
    if entry["path"] != expected_path:
        raise AYSError(f"index gives path {entry['path']!r}, which is not {expected_path!r}")
    stored = _stored(registries, schedule_id, version)
    if stored is not None and _stored_sha256(stored) == entry["sha256"]:
        return None  # pulling twice downloads nothing
    url = base + expected_path
    data = downloader.get(url, MAX_JSON_BYTES)
    if sha256_bytes(data) != entry["sha256"]:
        raise AYSError(f"{url}: sha256 {sha256_bytes(data)} differs from the index's {entry['sha256']}")
    doc = check_schedule_bytes(data, what=url)
    if (doc["id"], doc["version"]) != (schedule_id, version):
        raise AYSError(f"{url} holds {doc['id']}@v{doc['version']}, not the {schedule_id}@v{version} its path names")
    state = _compare_stored(registries, doc)
    if state == "present":
        return None
    if state is not None:
        raise AYSError(state)
    return doc


def pull_summary(url, registries, ids=None, downloader=None):
    """Pull and describe the outcome in one line; never raises (for the WebUI, where a failed
    pull must not break start-up or the settings page)."""
    try:
        return "AYS: " + pull(url, registries, ids=ids, downloader=downloader).summary()
    except AYSError as exc:
        return f"AYS: pull from {str(url)[:200]} failed: {exc}"
    except Exception as exc:  # noqa: BLE001 -- a bug here must still cost only a console line
        return f"AYS: pull from {str(url)[:200]} failed unexpectedly: {type(exc).__name__}: {exc}"


def pull_in_background(url, registries, log=print, ids=None, downloader=None):
    """Run `pull_summary` on a daemon thread (a pull at WebUI start never delays start-up) and
    hand its one line to `log`. Returns the started thread."""
    thread = threading.Thread(target=lambda: log(pull_summary(url, registries, ids=ids, downloader=downloader)),
                              name="ays-pull", daemon=True)
    thread.start()
    return thread


# ---------------------------------------------------------------- import / export

def import_file(path, registries):
    """Check a schedule file ('-': standard input) exactly like a pulled one and install it at its
    own version into the first registry of `registries`. Returns (the stored file's path,
    "installed" or "present")."""
    registries = _registries(registries)
    target = registries.registries[0]
    what = "standard input" if str(path) == "-" else str(path)
    doc = check_schedule_bytes(_read_capped(path), what)
    state = _compare_stored(registries, doc)
    if state == "present":
        return _stored(registries, doc["id"], doc["version"]), "present"
    if state is not None:
        raise AYSError(f"{state}; to keep both, give the file another id or add it as the next version "
                       f"with `ays registry publish`")
    [status] = target.install([doc])
    path = target.path_of(doc["id"], doc["version"])
    if status == "conflict":
        raise AYSError(_conflict(doc, path))
    return path, status


def _read_capped(path):
    if str(path) == "-":
        return sys.stdin.buffer.read(MAX_JSON_BYTES + 1)  # parse_json refuses more than the cap
    return read_capped(path, MAX_JSON_BYTES)


def export_file(ref, dest, registries, force=False):
    """Write schedule `ref` ('sdxl', 'sdxl@2') to the file `dest` ('-': standard output) in the
    canonical form; an existing file is only replaced with force. Returns the Schedule."""
    schedule_id, version = parse_ref(ref)
    schedule = _registries(registries).get(schedule_id, version)
    data = dump_schedule(schedule.doc)
    if str(dest) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return schedule
    dest = Path(dest)
    if dest.is_dir():
        raise AYSError(f"{dest} is a folder; give a file name such as {dest / (schedule_id + '.json')}")
    if dest.exists() and not force:
        raise SettingError(lambda f: f"{dest} already exists (use {f} to replace it)", "force")
    atomic_write(dest, data)
    return schedule


# ---------------------------------------------------------------- serve

class _ReadOnlyHandler(http.server.BaseHTTPRequestHandler):
    """GET/HEAD of index.json (generated from the files) and <id>/v<N>.json; nothing else."""

    registry = None  # set per server by make_server
    quiet = False
    server_version = "ays-registry"
    timeout = 10  # seconds of silence before a connection is dropped (socket timeout)

    def do_GET(self):
        self._answer(with_body=True)

    def do_HEAD(self):
        self._answer(with_body=False)

    def _answer(self, with_body):
        data = self._content(urllib.parse.unquote(urllib.parse.urlsplit(self.path).path))
        if data is None:
            self.send_error(404, "not a file of this registry")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if with_body:
            self.wfile.write(data)

    def _content(self, path):
        if path == "/index.json":
            try:
                return self.server.index_bytes()
            except AYSError:
                return None
        parts = path.split("/")
        match = VERSION_FILE.match(parts[-1])
        if len(parts) != 3 or parts[0] or not ID_PATTERN.match(parts[1]) or not match:
            return None
        try:  # exactly the files the index lists: valid, and no link on the way
            return self.registry.file_bytes(parts[1], int(match.group(1)))
        except AYSError:
            return None

    def log_message(self, format, *args):
        if not self.quiet:
            super().log_message(format, *args)


class _RegistryServer(http.server.ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` at once: the oldest connection is shut
    down to make room for a new one, so idle and half-open connections (each also dropped after
    the handler's timeout) cannot crowd out the clients that come next. The index is built once
    and kept until a file of the registry changes."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, handler, max_connections):
        self.max_connections = max_connections
        self._open = {}  # socket -> None, oldest first
        self._guard = threading.Lock()
        self._index = (None, None)  # (registry fingerprint, index bytes)
        self._index_guard = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        with self._guard:
            self._open[request] = None
            while len(self._open) > self.max_connections:
                oldest = next(iter(self._open))
                del self._open[oldest]
                with contextlib.suppress(OSError):
                    oldest.shutdown(socket.SHUT_RDWR)  # its thread sees the end and finishes
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._guard:
            self._open.pop(request, None)
        super().shutdown_request(request)

    def index_bytes(self):
        registry = self.RequestHandlerClass.registry
        with self._index_guard:
            fingerprint = registry.fingerprint()
            if self._index[0] != fingerprint:
                self._index = (fingerprint, dump_index(registry.build_index()))
            return self._index[1]


def _default_max_connections():
    """Connections served at once: 256, fewer where the process may open few files (each one is
    a file descriptor, and files read to answer need some too)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 256
    return 256 if soft == resource.RLIM_INFINITY else max(4, min(256, soft // 2 - 16))


def make_server(registry, host="127.0.0.1", port=8000, quiet=False, timeout=10, max_connections=None):
    """An HTTP server (not yet serving) that shares `registry` read-only; port 0 picks a free one.
    `timeout`: seconds a connection may stay silent; `max_connections`: served at once (default
    from the open-file limit), the oldest dropped to make room."""
    registry = registry if isinstance(registry, Registry) else Registry(registry)
    if not registry.root.is_dir():
        raise AYSError(f"no registry folder {registry.root}")
    handler = type("Handler", (_ReadOnlyHandler,), {"registry": registry, "quiet": quiet, "timeout": timeout})
    try:
        return _RegistryServer((host, port), handler, max_connections or _default_max_connections())
    except OSError as exc:
        raise AYSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def server_url(server):
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"
