"""Reading and writing files safely: the one place for atomic writes, file hashes and capped,
strict JSON reading. Every file the project writes and every JSON file it reads (schedules,
indexes, downloads, optimizer state, job files) goes through here.

Everything read is untrusted: a size cap, UTF-8, finite numbers only, bounded nesting.
"""
import contextlib
import errno
import hashlib
import json
import math
import os
import re
import stat
import tempfile
import time
from pathlib import Path

from .errors import AYSError

MAX_JSON_BYTES = 1 << 20  # a 1000-step schedule is ~30 kB; anything near 1 MiB is not a schedule
MAX_DEPTH = 32  # a schedule file nests 4 levels; free-form settings get some room, bombs do not
TEMP_SUFFIX = ".tmp"
TEMP_NAME = re.compile(r"\A\..+\.[a-z0-9_]{8}\.tmp\Z")  # atomic_write's: .<name>.<mkstemp's 8 chars>.tmp
LOCK_POLL_SECONDS = 0.05


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

def is_link(path):
    """Whether `path` itself is a symbolic link (or a Windows junction), whatever it points to."""
    return os.path.islink(path) or getattr(os.path, "isjunction", lambda _: False)(path)


def refuse_link(path, doing="read"):
    """AYSError naming `path` if it is a link: a registry is read and written only through its
    own files and folders, so a link (checked out from git, planted by someone) cannot send a
    write elsewhere nor make another file look like part of it."""
    if is_link(path):
        raise AYSError(f"{path} is a symbolic link; refusing to {doing} through it "
                       "(replace it with the file or folder itself)")


def read_capped(path, limit, what=None, follow_links=True):
    """The bytes of the file at `path`, or AYSError when it is missing, not a regular file,
    unreadable or larger than `limit` bytes (never reads more than limit + 1). With
    follow_links=False a link at `path` is refused, also one swapped in between a check and the
    read."""
    what = what or str(path)
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)  # opening a FIFO must not block
    if not follow_links:
        refuse_link(path)
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        with os.fdopen(os.open(path, flags), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise AYSError(f"{what}: not a regular file")
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise AYSError(f"{what}: no such file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link
            raise AYSError(f"{path} is a symbolic link; refusing to read through it") from None
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


def read_json(path, what=None, limit=MAX_JSON_BYTES, max_depth=MAX_DEPTH, follow_links=True):
    """The parsed JSON file at `path` (checked as `parse_json` checks), or AYSError."""
    what = what or str(path)
    return parse_json(read_capped(path, limit, what, follow_links), what, limit, max_depth)


# ---------------------------------------------------------------- writing

def _read_umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask can only be read by setting it


def is_temp_name(name):
    """Whether a file name is one of atomic_write's temporary files (left behind only by a
    process killed mid-write)."""
    return TEMP_NAME.match(name) is not None


def atomic_write(path, data):
    """Write bytes so that readers see the old file or the whole new one, never a torn one. A
    link at `path` is replaced, never written through (a rename does not follow it)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
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


# ---------------------------------------------------------------- locking

@contextlib.contextmanager
def file_lock(path, timeout, busy_message):
    """Hold an exclusive lock on the file `path` (created if missing) across processes. The lock
    file is opened without following a link and never truncated, so a planted link cannot make
    the lock create or empty another file. AYSError(busy_message) after `timeout` seconds."""
    refuse_link(path, "lock")
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AYSError(f"{path} is a symbolic link; refusing to lock through it") from None
        raise AYSError(f"cannot lock {path}: {exc.strerror or exc}") from None
    try:
        ends = time.monotonic() + timeout
        while not _try_lock(fd):
            if time.monotonic() > ends:
                raise AYSError(busy_message)
            time.sleep(LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


def _try_lock(fd):
    try:
        if os.name == "nt":
            import msvcrt

            os.lseek(fd, 0, os.SEEK_SET)  # msvcrt locks bytes from the current position
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, errno.EDEADLK):
            return False
        raise AYSError(f"cannot lock: {exc.strerror or exc}") from None
    return True


def _unlock(fd):
    if os.name == "nt":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)
