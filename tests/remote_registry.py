"""A remote registry for the sharing tests: a local HTTP server on 127.0.0.1 whose every path can
be made hostile (wrong bytes, wrong hashes, endless or truncated bodies, stalls, redirects)."""
import http.server
import threading
import time

from ays_core.fileio import sha256_bytes
from ays_core.registry import dump_index, dump_schedule, new_schedule_doc


def doc_for(schedule_id="mine", version=1, sigmas=(10.0, 2.0, 0.5, 0.1), description=None):
    doc = new_schedule_doc(schedule_id, sigmas, family="edm", prediction="edm", source="optimized",
                           solver="dpmpp_2m", samples=64, data="toy", description=description)
    return {**doc, "version": version}


class Remote:
    """Routes map a URL path to a behaviour: bytes (served whole), or a dict with any of
    body, status, headers, gate (a `Remote.gate()` Event awaited before answering: a stall the
    test ends when it chooses, or never), delay (s before answering: only where load can make
    the outcome no different, e.g. a deadline that must expire), drip (s between bytes), truncate
    (bytes actually sent of a declared body), endless (chunk repeated forever without a length),
    no_length, fail_first (answer 500 that many times first)."""

    def __init__(self):
        self.routes, self.hits, self.gates = {}, [], []
        remote = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                remote.hits.append(self.path)
                try:
                    remote.answer(self, remote.routes.get(self.path))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on us, as it should

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def answer(self, handler, route):
        if route is None:
            handler.send_error(404)
            return
        route = {"body": route} if isinstance(route, bytes) else route
        if route.get("fail_first", 0) > 0:
            route["fail_first"] -= 1
            handler.send_error(500)
            return
        if "gate" in route:
            route["gate"].wait()
        time.sleep(route.get("delay", 0))
        body = route.get("body", b"")
        handler.send_response(route.get("status", 200))
        headers = {"Content-Length": str(len(body)), **route.get("headers", {})}
        if route.get("endless") or route.get("no_length"):
            headers.pop("Content-Length")
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        if route.get("endless"):
            while True:
                handler.wfile.write(route["endless"])
        if "drip" in route:
            for byte in body:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(route["drip"])
            return
        handler.wfile.write(body[:route.get("truncate", len(body))])

    def publish(self, *docs, files=None):
        """Serve `docs` (and raw `files`: {(id, version): bytes}) with an index listing all."""
        files = dict(files or {})
        for doc in docs:
            files[(doc["id"], doc["version"])] = dump_schedule(doc)
        entries = []
        for (schedule_id, version), data in sorted(files.items()):
            path = f"{schedule_id}/v{version}.json"
            self.routes["/" + path] = data
            entries.append({"id": schedule_id, "version": version, "path": path, "sha256": sha256_bytes(data),
                            "family": "edm", "steps": 3})
        self.set_index({"schema_version": 1, "schedules": entries})
        return entries

    def set_index(self, index):
        self.routes["/index.json"] = dump_index(index)

    def gate(self):
        """An Event that holds back the answers of the routes it is given to until it is set
        (close() sets every gate, so no handler is left waiting)."""
        gate = threading.Event()
        self.gates.append(gate)
        return gate

    def close(self):
        for gate in self.gates:
            gate.set()
        self.server.shutdown()
        self.server.server_close()
