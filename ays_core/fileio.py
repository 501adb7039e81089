"""Reading and writing files safely: the one place for atomic writes, file hashes and capped,
strict JSON reading. Every file the project writes and every JSON file it reads (schedules,
indexes, downloads, optimizer state, job files) goes through here.

Everything read is untrusted: a size cap, UTF-8, finite numbers only, bounded nesting.
"""
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

from .errors import AYSError

MAX_JSON_BYTES = 1 << 20  # a 1000-step schedule is ~30 kB; anything near 1 MiB is not a schedule
MAX_DEPTH = 32  # a schedule file nests 4 levels; free-form settings get some room, bombs do not


# ---------------------------------------------------------------- hashing

def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def file_sha256(path, progress=True):
    """sha256 of a (possibly multi-GB) file such as a checkpoint: the WebUI's checkpoint hash. A
    progress bar shows for files of 256 MiB and more."""
    from tqdm import tqdm

    path = Path(path)
    digest = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as f, tqdm(total=size, unit="B", unit_scale=True, desc=f"hashing {path.name}",
                                     disable=not progress or size < (256 << 20), leave=False) as bar:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


# ---------------------------------------------------------------- reading

def read_capped(path, limit, what=None):
    """The bytes of the file at `path`, or AYSError when it is missing, unreadable or larger
    than `limit` bytes (never reads more than limit + 1)."""
    what = what or str(path)
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise AYSError(f"{what}: no such file") from None
    except OSError as exc:
        raise AYSError(f"{what}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise AYSError(f"{what} is too large (more than {limit} bytes)")
    return data


def _reject_constant(name):
    raise ValueError(f"{name} is not allowed")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to inf, which could not be written back as JSON
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _unique_keys(pairs):
    """An object's dict, refusing a repeated key: parsers disagree on which one wins, so a file
    could mean one thing to a validator and another to its reader."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"key {repeated[:60]!r} appears twice in one object")
    return value


def _check_tree(value, what, max_depth):
    """Reject what json.loads lets through but we could not store: deep nesting, lone surrogates."""
    stack = [(value, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            raise AYSError(f"{what} is nested too deeply (more than {max_depth} levels)")
        if isinstance(value, dict):
            stack.extend((key, depth) for key in value)
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise AYSError(f"{what} is not valid JSON: a string holds an unpaired UTF-16 surrogate") from None


def parse_json(data, what="file", limit=MAX_JSON_BYTES, max_depth=MAX_DEPTH):
    """Parse untrusted JSON bytes strictly: size cap, UTF-8, finite numbers only, no repeated
    keys, bounded nesting. Numbers keep their JSON form: 2 is an int, 2.0 a float."""
    if len(data) > limit:
        raise AYSError(f"{what} is too large ({len(data)} bytes, limit {limit})")
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float,
                           object_pairs_hook=_unique_keys)
    except RecursionError:
        raise AYSError(f"{what} is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise AYSError(f"{what} is not valid JSON: {exc}") from None
    _check_tree(value, what, max_depth)
    return value


def read_json(path, what=None, limit=MAX_JSON_BYTES, max_depth=MAX_DEPTH):
    """The parsed JSON file at `path` (checked as `parse_json` checks), or AYSError."""
    what = what or str(path)
    return parse_json(read_capped(path, limit, what), what, limit, max_depth)


# ---------------------------------------------------------------- writing

def _read_umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask can only be read by setting it


def atomic_write(path, data):
    """Write bytes so that readers see the old file or the whole new one, never a torn one."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise AYSError(f"cannot write to {path.parent}: {exc.strerror or exc}") from None
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide shared registry files from a web server
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):  # disk full, a folder where the file should go, ...
            raise AYSError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
