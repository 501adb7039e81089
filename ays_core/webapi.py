"""HTTP routes of the WebUI adapter (ays_webui/api.py, ays_webui/tab.py), mounted the way the
WebUI mounts its own API (modules/api/api.py, Api.add_api_route):

- only when the WebUI's API exists (`--api`, or `--nowebui`, which always serves it);
- with `--api-auth user:pass[,user:pass...]`, every route needs those HTTP Basic credentials,
  checked as the WebUI checks them (constant-time compare, 401 with WWW-Authenticate: Basic);
- POST routes accept only JSON bodies (Content-Type: application/json, at most MAX_JSON_BYTES): a
  cross-site HTML form cannot send that type without the browser asking the server first, and the
  WebUI answers no such question;
- a request a client got wrong is answered 4xx with a one-line `detail`; AYSError becomes 422.

Needs FastAPI (every WebUI has it); imported here only when routes are mounted.
"""
import json
from secrets import compare_digest

from .errors import AYSError

MAX_JSON_BYTES = 64 << 10


def api_enabled(cmd_opts):
    """Does this WebUI serve its own API? (`--api`, or `--nowebui`, which implies it.)"""
    return bool(getattr(cmd_opts, "api", False) or getattr(cmd_opts, "nowebui", False))


def parse_api_auth(value):
    """`--api-auth` as the WebUI reads it: "user:password" pairs separated by commas."""
    credentials = {}
    for pair in str(value or "").split(","):
        if pair:
            user, _, password = pair.partition(":")
            credentials[user] = password
    return credentials


def basic_auth(credentials):
    """A FastAPI dependency that lets a request through only with one of `credentials`."""
    from fastapi import Depends, HTTPException
    from fastapi.security import HTTPBasic, HTTPBasicCredentials

    def check(given: HTTPBasicCredentials = Depends(HTTPBasic())):
        expected = credentials.get(given.username)
        # bytes: compare_digest refuses non-ASCII str, and a wrong password must never be a 500
        if expected is not None and compare_digest(given.password.encode(), expected.encode()):
            return True
        raise HTTPException(status_code=401, detail="Incorrect username or password",
                            headers={"WWW-Authenticate": "Basic"})

    return check


async def json_body(request):
    """The request's JSON object ({} when the body is empty); 415/413/422 with one line otherwise."""
    from fastapi import HTTPException

    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(status_code=415, detail="send the body as JSON (Content-Type: application/json)")
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_JSON_BYTES:
            raise HTTPException(status_code=413, detail=f"the JSON body is larger than {MAX_JSON_BYTES} bytes")
    if not data.strip():
        return {}
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise HTTPException(status_code=422, detail="the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise HTTPException(status_code=422, detail="the body must be a JSON object")
    return value


def as_http_error(action):
    """Run `action()`; a user's mistake (AYSError) becomes a 422 with its one-line message."""
    from fastapi import HTTPException

    try:
        return action()
    except AYSError as exc:
        raise HTTPException(status_code=422, detail=str(exc).splitlines()[0] if str(exc) else "invalid request") from None


def query_number(text, name, kind, low, high):
    """A query parameter parsed and bounded here, so a bad one is a one-line 422 (never a 500)."""
    try:
        value = kind(text)
    except (TypeError, ValueError, OverflowError):
        raise AYSError(f"{name} must be a number, got {str(text)[:40]!r}") from None
    if not (low <= value <= high):  # also refuses NaN
        raise AYSError(f"{name} must be between {low} and {high}, got {str(text)[:40]}")
    return value


class Routes:
    """Mounts GET and POST routes on the WebUI's FastAPI app, with the WebUI's API rules above.
    POST endpoints receive the JSON object as their only argument."""

    def __init__(self, app, cmd_opts):
        from fastapi import Depends

        self.app = app
        self.enabled = api_enabled(cmd_opts)
        api_auth = getattr(cmd_opts, "api_auth", None)
        self.dependencies = [Depends(basic_auth(parse_api_auth(api_auth)))] if api_auth else []

    def get(self, path, endpoint):
        if self.enabled:
            self.app.add_api_route(path, endpoint, methods=["GET"], dependencies=self.dependencies)

    def post(self, path, endpoint):
        from fastapi import Depends, Request

        async def body_of(request: Request):
            return await json_body(request)

        def route(body: dict = Depends(body_of)):
            return endpoint(body)

        route.__name__ = route.__qualname__ = getattr(endpoint, "__name__", "ays_post")
        route.__doc__ = endpoint.__doc__
        if self.enabled:
            self.app.add_api_route(path, route, methods=["POST"], dependencies=self.dependencies)
