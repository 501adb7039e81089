"""The schedule registry: a folder of immutable, versioned schedule files plus a generated index.

Layout of a registry folder:

    schema/schedule-v1.json   the file format (shipped registry only)
    index.json                generated: every file's id, version, path, sha256 and model keys
    <id>/v<version>.json      one schedule per file, never overwritten once written

Everything read here is untrusted: files are size-capped, parsed strictly (no NaN/Infinity, no
repeated keys, integers only where the schema says integer) and validated against the JSON Schema
plus the checks JSON Schema cannot express. The registry never reads or writes through a link
inside it; every write ends by removing what a killed writer left and regenerating a stale index.
"""
import contextlib
import datetime
import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import AYSError
from .fileio import (MAX_JSON_BYTES, atomic_write, file_lock, is_link, is_temp_name, parse_json, read_capped,
                     read_json, refuse_link, sha256_bytes)
from .interp import resample
from .userdirs import user_data_dir
from .version import __version__

PACKAGE_DIR = Path(__file__).resolve().parent
# An installed package carries the shipped registry inside (pyproject.toml maps it there); a checkout,
# which is also the WebUI extension, has it beside the package.
SHIPPED_REGISTRY = next((p for p in (PACKAGE_DIR / "shipped_registry", PACKAGE_DIR.parent / "registry") if p.is_dir()),
                        PACKAGE_DIR.parent / "registry")
SCHEMA_DIR = SHIPPED_REGISTRY / "schema"
REGISTRY_ENV = "AYS_REGISTRY"
ID_PATTERN = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,63}\Z")  # \Z: "$" would let a trailing newline in
MAX_INDEX_BYTES = 32 << 20  # the index schema allows 100000 entries of ~300 bytes
VERSION_FILE = re.compile(r"\Av([1-9][0-9]{0,6})\.json\Z")
ENDS_RTOL = 1e-6
KEY_ORDER = ("schema_version", "id", "version", "description", "model", "sigmas", "timesteps", "step_schedules",
             "provenance")


def default_registry():
    """Your registry, where publish, pull and import write and every lookup looks first:
    $AYS_REGISTRY if set, else `registry` in the per-user data folder. Never the shipped one."""
    return Path(os.environ.get(REGISTRY_ENV) or user_data_dir() / "registry")


def search_order(registry=None):
    """The registries a lookup searches: yours (`registry` when given), then the shipped one."""
    return RegistrySet([registry or default_registry(), SHIPPED_REGISTRY])


# ---------------------------------------------------------------- parsing and validation

@functools.lru_cache(maxsize=None)
def _end_anchored(pattern):
    # JSON Schema patterns are ECMA-262, where "$" is the very end; Python's "$" also matches
    # before a final newline, which would let "sdxl\n" pass as an id.
    return re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern)


def _pattern_keyword(validator, pattern, instance, schema):
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _end_anchored(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _is_integer(checker, instance):
    # JSON Schema counts 2.0 as an integer; a file saying version 2.0 would then be stored and
    # listed as "v2.0" by code that formats what it read. Only JSON integers are integers here.
    return isinstance(instance, int) and not isinstance(instance, bool)


@functools.lru_cache(maxsize=None)
def _validator(name):
    from jsonschema import Draft202012Validator, validators

    with open(SCHEMA_DIR / name, encoding="utf-8") as f:
        schema = json.load(f)
    type_checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer)
    return validators.extend(Draft202012Validator, {"pattern": _pattern_keyword}, type_checker=type_checker)(schema)


def _first_schema_error(validator, doc):
    from jsonschema.exceptions import best_match

    error = best_match(validator.iter_errors(doc))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
    return f"{where}: {message}"


def validate(doc, what="schedule"):
    """Raise AYSError naming the first problem unless `doc` is a valid schedule document."""
    problem = _first_schema_error(_validator("schedule-v1.json"), doc)
    if problem:
        raise AYSError(f"{what} is invalid: {problem}")
    sigmas = doc["sigmas"]
    if any(b >= a for a, b in zip(sigmas, sigmas[1:])):
        raise AYSError(f"{what} is invalid: sigmas must be strictly descending (sigma_max first, no trailing 0)")
    model = doc["model"]
    if model["sigma_min"] >= model["sigma_max"]:
        raise AYSError(f"{what} is invalid: model.sigma_min must be below model.sigma_max")
    for end, key in ((sigmas[0], "sigma_max"), (sigmas[-1], "sigma_min")):
        if abs(end - model[key]) > ENDS_RTOL * model[key]:
            raise AYSError(f"{what} is invalid: sigmas must run from model.sigma_max to model.sigma_min "
                           f"({end!r} does not match {key} {model[key]!r})")
    if "shorthash" in model and "sha256" in model and not model["sha256"].startswith(model["shorthash"]):
        raise AYSError(f"{what} is invalid: model.shorthash must be the first 10 hex digits of model.sha256")
    for count, exact in doc.get("step_schedules", {}).items():
        if len(exact) != int(count) or any(b >= a for a, b in zip(exact, exact[1:])):
            raise AYSError(f"{what} is invalid: step_schedules[{count}] must hold {count} strictly descending sigmas")
        if abs(exact[0] - model["sigma_max"]) > ENDS_RTOL * model["sigma_max"] or \
                exact[-1] < model["sigma_min"] * (1 - ENDS_RTOL):
            raise AYSError(f"{what} is invalid: step_schedules[{count}] must start at model.sigma_max "
                           f"and stay above model.sigma_min")
    if "timesteps" in doc and len(doc["timesteps"]) != len(sigmas):
        raise AYSError(f"{what} is invalid: timesteps must have one entry per sigma")


def validate_index(index, what="index"):
    problem = _first_schema_error(_validator("index-v1.json"), index)
    if problem:
        raise AYSError(f"{what} is invalid: {problem}")


def check_id(schedule_id):
    if not isinstance(schedule_id, str) or not ID_PATTERN.match(schedule_id):
        raise AYSError(f"invalid schedule id {schedule_id!r}: use 1-64 of a-z, 0-9, '-', '_', starting with a letter or digit")
    return schedule_id


def parse_ref(ref):
    """'sdxl', 'sdxl@2' or 'sdxl@v2' -> ('sdxl', None | 2)."""
    schedule_id, _, version = str(ref).partition("@")
    check_id(schedule_id)
    if not version:
        return schedule_id, None
    digits = version[1:] if version.startswith("v") else version
    if not digits.isdigit() or int(digits) < 1:
        raise AYSError(f"invalid version in {ref!r}: use ID@N or ID@vN with N >= 1")
    return schedule_id, int(digits)


def dump_schedule(doc):
    """Canonical bytes of a schedule document (fixed key order) so file hashes are reproducible."""
    ordered = {key: doc[key] for key in KEY_ORDER if key in doc}
    return (json.dumps(ordered, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def dump_index(index):
    """Canonical bytes of an index (sorted keys, fixed indent): the same files give the same bytes,
    so two people publishing into checkouts of one shared registry get diffs that merge."""
    return (json.dumps(index, indent=2, sort_keys=True) + "\n").encode("utf-8")


# ---------------------------------------------------------------- schedules

@dataclass(frozen=True)
class Schedule:
    """One validated schedule file. `sigmas` is the stored schedule (sigma_max ... sigma_min)."""

    doc: dict
    path: Path = None
    just_published: bool = False  # set by publish when it wrote this file (not when a version already held it)

    @property
    def id(self):
        return self.doc["id"]

    @property
    def version(self):
        return self.doc["version"]

    @property
    def ref(self):
        """How infotext and messages name it: 'sdxl@v1'."""
        return f"{self.id}@v{self.version}"

    @property
    def sigmas(self):
        return np.asarray(self.doc["sigmas"], dtype=np.float64)

    @property
    def model(self):
        return self.doc["model"]

    @property
    def step_schedules(self):
        """{N: the N nonzero sigmas made for N steps} (optional in a file)."""
        return {int(n): np.asarray(s, dtype=np.float64) for n, s in self.doc.get("step_schedules", {}).items()}

    def resample(self, steps, **options):
        """The N-step sampling schedule; options as ays_core.interp.resample. A schedule made for
        exactly N steps (step_schedules) is used as it is, in either convention."""
        return resample(self.sigmas, steps, exact=self.step_schedules.get(steps), **options)


def same_schedule(a, b):
    """Whether two schedule documents say the same thing: everything but the version number and
    the time of creation (an identical re-run publishes nothing new)."""
    def content(doc):
        provenance = {k: v for k, v in doc.get("provenance", {}).items() if k != "created_at"}
        return {**{k: v for k, v in doc.items() if k != "version"}, "provenance": provenance}

    return content(a) == content(b)


def publish_message(schedule):
    """What to tell the user after publish: the version written, or the one that already holds it."""
    if schedule.just_published:
        return f"published {schedule.ref} to {schedule.path}"
    return f"nothing published: {schedule.ref} ({schedule.path}) already holds this schedule"


def load_schedule(path):
    """Read and validate one schedule file from anywhere (the user's own file, a download)."""
    doc = read_json(path)
    validate(doc, what=str(path))
    return Schedule(doc, Path(path))


def new_schedule_doc(schedule_id, sigmas, *, family, prediction, source, solver, samples, data,
                     sha256=None, name=None, timesteps=None, description=None, version=1,
                     author=None, license=None, reference=None, settings=None, step_schedules=None):
    """A valid schedule document for a stored schedule `sigmas` (sigma_max ... sigma_min);
    step_schedules: {N: N nonzero sampling sigmas made for N steps}."""
    sigmas = [float(s) for s in sigmas]
    model = {"family": family, "prediction": prediction, "sigma_min": sigmas[-1], "sigma_max": sigmas[0]}
    if sha256:
        model["sha256"] = sha256.lower()
        model["shorthash"] = sha256.lower()[:10]
    if name:
        model["name"] = name
    provenance = {
        "source": source, "solver": solver, "samples": samples, "data": data, "ays_version": __version__,
        "created_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    for key, value in (("author", author), ("license", license), ("reference", reference), ("settings", settings)):
        if value is not None:
            provenance[key] = value
    doc = {"schema_version": 1, "id": schedule_id, "version": version, "model": model, "sigmas": sigmas,
           "provenance": provenance}
    if description:
        doc["description"] = description
    if timesteps is not None:
        doc["timesteps"] = [int(t) for t in timesteps]
    if step_schedules:
        doc["step_schedules"] = {str(int(n)): [float(v) for v in exact] for n, exact in sorted(step_schedules.items())}
    validate(doc)
    return doc


# ---------------------------------------------------------------- one registry folder

def file_holds(path, doc):
    """Whether the schedule file at `path` has the content of `doc` (formatting aside); a link
    there never does."""
    try:
        return read_json(path, follow_links=False) == doc
    except AYSError:  # a broken file is not the same content; `verify` reports it
        return False


class Registry:
    """One registry folder. Reads go through the files themselves; writes take a file lock."""

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else default_registry()

    def __repr__(self):
        return f"Registry({str(self.root)!r})"

    # -- reading
    def versions(self, schedule_id):
        """Sorted version numbers stored for an id (none in a linked folder: `verify` names it)."""
        folder = self.root / check_id(schedule_id)
        if is_link(folder):
            return []
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise AYSError(f"cannot read registry folder {folder}: {exc.strerror or exc}") from None
        return sorted(int(m.group(1)) for m in map(VERSION_FILE.match, names) if m)

    def ids(self):
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise AYSError(f"cannot read registry folder {self.root}: {exc.strerror or exc}") from None
        return sorted(n for n in names if ID_PATTERN.match(n) and not is_link(self.root / n)
                      and (self.root / n).is_dir())

    def path_of(self, schedule_id, version):
        return self.root / check_id(schedule_id) / f"v{int(version)}.json"

    def get(self, schedule_id, version=None):
        """The schedule `id` at `version` (latest when None). AYSError if absent or invalid."""
        if version is None:
            versions = self.versions(schedule_id)
            if not versions:
                refuse_link(self.root / schedule_id)
                raise AYSError(f"no schedule {schedule_id!r} in registry {self.root}")
            version = versions[-1]
        return self._load(schedule_id, version)[1]

    def file_bytes(self, schedule_id, version):
        """The bytes of a valid stored file (what `serve` hands out), or AYSError."""
        return self._load(schedule_id, version)[0]

    def _load(self, schedule_id, version):
        """(bytes, Schedule) of id@version; a link on the way, an invalid file or one that names
        another id or version is an AYSError."""
        path = self.path_of(schedule_id, version)
        refuse_link(path.parent)
        if not os.path.lexists(path):
            raise AYSError(f"no schedule {schedule_id}@v{version} in registry {self.root}")
        data = read_capped(path, MAX_JSON_BYTES, follow_links=False)
        doc = parse_json(data, str(path))
        validate(doc, what=str(path))
        schedule = Schedule(doc, path)
        if (schedule.id, schedule.version) != (schedule_id, version):
            raise AYSError(f"{path} claims to be {schedule.ref}; its path says {schedule_id}@v{version}")
        return data, schedule

    def _valid_files(self, latest_only=False):
        """(bytes, Schedule) of every valid file (invalid ones are skipped: `verify` reports them)."""
        for schedule_id in self.ids():
            versions = self.versions(schedule_id)
            for version in versions[-1:] if latest_only else versions:
                try:
                    yield self._load(schedule_id, version)
                except AYSError:
                    continue

    def schedules(self, latest_only=False):
        """Every valid schedule in the folder (invalid files are skipped: `verify` reports them)."""
        return [schedule for _, schedule in self._valid_files(latest_only)]

    def find(self, sha256=None, shorthash=None, family=None):
        """Latest schedule for a checkpoint (by sha256 or WebUI shorthash) or else for a family.

        A family lookup only considers generic schedules (no checkpoint hash) and prefers the one
        whose id is the family name itself."""
        latest = self.schedules(latest_only=True)
        sha256 = sha256.lower() if sha256 else None
        shorthash = (shorthash or (sha256 or "")[:10]).lower() or None
        for schedule in latest:
            model = schedule.model
            if sha256 and model.get("sha256") == sha256:
                return schedule
        if shorthash:
            for schedule in latest:
                if schedule.model.get("shorthash") == shorthash:
                    return schedule
        if family:
            generic = [s for s in latest if s.model["family"] == family and "sha256" not in s.model
                       and "shorthash" not in s.model]
            generic.sort(key=lambda s: (s.id != family, s.id))
            if generic:
                return generic[0]
        return None

    # -- index
    def build_index(self):
        """The index document for the folder as it is now (sorted, so its bytes are reproducible)."""
        entries = []
        for data, schedule in self._valid_files():
            entry = {"id": schedule.id, "version": schedule.version,
                     "path": f"{schedule.id}/v{schedule.version}.json", "sha256": sha256_bytes(data),
                     "family": schedule.model["family"], "steps": len(schedule.doc["sigmas"]) - 1}
            if "sha256" in schedule.model:
                entry["checkpoint_sha256"] = schedule.model["sha256"]
            if "shorthash" in schedule.model:
                entry["shorthash"] = schedule.model["shorthash"]
            entries.append(entry)
        entries.sort(key=lambda e: (e["id"], e["version"]))
        return {"schema_version": 1, "schedules": entries}

    def write_index(self):
        """Regenerate index.json (and remove what killed writers left); returns the index."""
        with self.lock():
            return self._repair()

    def read_index(self):
        index = read_json(self.root / "index.json", limit=MAX_INDEX_BYTES, follow_links=False)
        validate_index(index, what=str(self.root / "index.json"))
        return index

    # -- healing what a killed writer left
    def temp_files(self):
        """Temporary files of writes into this registry that never finished (root and id folders)."""
        found = []
        for folder in [self.root, *(self.root / i for i in self.ids())]:
            try:
                found += [folder / name for name in sorted(os.listdir(folder)) if is_temp_name(name)]
            except OSError:
                continue
        return found

    def links(self):
        """Links inside the registry (top level and id folders); the registry never follows them."""
        try:
            names = sorted(os.listdir(self.root))
        except OSError:
            return []
        found = []
        for name in names:
            path = self.root / name
            if is_link(path):
                found.append(path)
            elif ID_PATTERN.match(name) and path.is_dir():
                with contextlib.suppress(OSError):
                    found += [path / inner for inner in sorted(os.listdir(path)) if is_link(path / inner)]
        return found

    def fingerprint(self):
        """Something that changes whenever a file or folder of the registry does (names, sizes,
        times, inodes), cheap to compute: the key of the served index."""
        entries = []
        for inside, folder in [("", self.root), *((i, self.root / i) for i in self.ids())]:
            try:
                with os.scandir(folder) as found:
                    for entry in found:
                        info = entry.stat(follow_symlinks=False)
                        entries.append((inside, entry.name, info.st_mtime_ns, info.st_ctime_ns, info.st_size,
                                        info.st_ino))
            except OSError:
                continue
        return tuple(sorted(entries))

    def _repair(self):
        """What every write ends with, under the lock (so each temporary file found is a dead
        writer's): remove temporary files, regenerate index.json unless it matches the files.
        A publisher killed at any moment thus leaves a registry the next write makes sound."""
        for path in self.temp_files():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        index = self.build_index()
        data = dump_index(index)
        try:
            current = read_capped(self.root / "index.json", MAX_INDEX_BYTES, follow_links=False)
        except AYSError:
            current = None
        if current != data:
            atomic_write(self.root / "index.json", data)
        return index

    # -- writing
    @contextlib.contextmanager
    def lock(self, timeout=60):
        """Hold the registry's file lock: one publisher or indexer at a time, across processes."""
        self._check_writable()
        busy = f"registry {self.root} is busy (locked by another process for {timeout} s)"
        with file_lock(self.root / ".lock", timeout, busy):
            yield

    def _check_writable(self):
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AYSError(f"cannot create registry folder {self.root}: {exc.strerror or exc}") from None
        if not os.access(self.root, os.W_OK):
            raise AYSError(f"registry folder {self.root} is not writable")

    def publish(self, doc, taken_versions=()):
        """Add `doc` as the next version of its id and regenerate the index; returns the Schedule.

        Versions are immutable: the version in `doc` is replaced by one past the highest stored
        (or listed in `taken_versions`, e.g. the same id in another registry). When the latest
        version here already holds the same schedule (`same_schedule`), nothing is written and
        that version is returned (its `just_published` is False)."""
        validate(doc)
        with self.lock():
            stored = self.versions(doc["id"])
            if stored and stored[-1] > max(taken_versions, default=0):
                latest = self._get_or_none(doc["id"], stored[-1])
                if latest is not None and same_schedule(latest.doc, doc):
                    return latest
            version = max([0, *stored, *taken_versions]) + 1
            doc = {**doc, "version": version}
            validate(doc)
            path = self._folder_for(doc["id"]) / f"v{version}.json"
            if os.path.lexists(path):  # cannot happen under the lock unless someone bypassed it
                raise AYSError(f"{path} already exists; refusing to overwrite a published version")
            atomic_write(path, dump_schedule(doc))
            self._repair()
        return Schedule(doc, path, just_published=True)

    def _get_or_none(self, schedule_id, version):
        try:
            return self.get(schedule_id, version)
        except AYSError:  # a broken file holds nothing; `verify` reports it
            return None

    def _folder_for(self, schedule_id):
        """The id's folder, created if missing. A link there is refused: a write through it would
        land wherever it points."""
        folder = self.root / check_id(schedule_id)
        refuse_link(folder, "write")
        try:
            folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise AYSError(f"cannot create {folder}: {exc.strerror or exc}") from None
        return folder

    def install(self, docs):
        """Add schedules at the exact versions they carry (pull and import keep the sender's
        numbering) and regenerate the index once (also when nothing is new: it repairs what a
        killed writer left). Returns one status per doc: "installed", "present" (stored with the
        same content) or "conflict" (stored with different content, which is never overwritten)."""
        docs = list(docs)
        for doc in docs:
            validate(doc)
        statuses = []
        with self.lock():
            try:
                for doc in docs:
                    path = self.path_of(doc["id"], doc["version"])
                    if os.path.lexists(path):
                        statuses.append("present" if file_holds(path, doc) else "conflict")
                        continue
                    atomic_write(self._folder_for(doc["id"]) / path.name, dump_schedule(doc))
                    statuses.append("installed")
            finally:  # also after a failed write: the index lists what did land
                self._repair()
        return statuses

    def verify(self):
        """Problems found: every file re-validated, every index sha256 recomputed. Empty when sound."""
        links = self.links()
        problems = [f"{path} is a symbolic link; the registry neither reads nor writes through links "
                    "(replace it with the file or folder itself)" for path in links]
        problems += [f"{path}: temporary file of an interrupted write (`ays registry index` removes it)"
                     for path in self.temp_files()]
        valid = []
        for schedule_id in self.ids():
            for version in self.versions(schedule_id):
                if self.path_of(schedule_id, version) in links:
                    continue
                try:
                    valid.append(self.get(schedule_id, version))
                except AYSError as exc:
                    problems.append(str(exc))
        index_path = self.root / "index.json"
        if not os.path.lexists(index_path):
            return problems + [f"{index_path}: missing (run `ays registry index`)"]
        try:
            index = read_json(index_path, limit=MAX_INDEX_BYTES, follow_links=False)
        except AYSError as exc:
            return problems + [f"{exc} (run `ays registry index`)"]
        listed = _sound_entries(index, problems, str(index_path))
        for entry in listed:
            path = self.root / entry["path"]
            try:
                data = read_capped(path, MAX_JSON_BYTES, follow_links=False)
            except AYSError:
                problems.append(f"index lists {entry['path']}, which is missing or unreadable")
                continue
            if sha256_bytes(data) != entry["sha256"]:
                problems.append(f"{entry['path']}: sha256 differs from the index (file changed after publishing)")
        listed_paths = {e["path"] for e in listed}
        for schedule in valid:
            if f"{schedule.id}/v{schedule.version}.json" not in listed_paths:
                problems.append(f"{schedule.id}/v{schedule.version}.json is not in the index (run `ays registry index`)")
        return problems


def _sound_entries(index, problems, what):
    """The entries of an index that are valid on their own (one bad entry must not stop the
    others from being checked); what is wrong with the index goes to `problems`."""
    try:
        validate_index(index, what)
        return index["schedules"]
    except AYSError as exc:
        problems.append(f"{exc} (run `ays registry index`)")
    entries = index.get("schedules") if isinstance(index, dict) else None
    sound = []
    for entry in entries if isinstance(entries, list) else []:
        with contextlib.suppress(AYSError):
            validate_index({"schema_version": 1, "schedules": [entry]})
            sound.append(entry)
    return sound


class RegistrySet:
    """Several registries searched in order: the user's own first, the shipped one last.

    Publishing writes to the first, at a version above any the others hold for that id, so
    `id@vN` names one file across the whole set."""

    def __init__(self, roots):
        self.registries = []
        for root in roots:
            registry = root if isinstance(root, Registry) else Registry(root)
            if all(r.root.resolve() != registry.root.resolve() for r in self.registries):
                self.registries.append(registry)

    def get(self, schedule_id, version=None):
        if version is None:
            holders = [(r.versions(schedule_id)[-1], -i, r) for i, r in enumerate(self.registries)
                       if r.versions(schedule_id)]
            if not holders:
                raise AYSError(f"no schedule {schedule_id!r} in {self._where()}")
            version, _, registry = max(holders, key=lambda h: h[:2])
            return registry.get(schedule_id, version)
        for registry in self.registries:
            if version in registry.versions(schedule_id):
                return registry.get(schedule_id, version)
        raise AYSError(f"no schedule {schedule_id}@v{version} in {self._where()}")

    def find(self, sha256=None, shorthash=None, family=None):
        # Checkpoint matches anywhere beat family matches anywhere.
        if sha256 or shorthash:
            for registry in self.registries:
                found = registry.find(sha256=sha256, shorthash=shorthash)
                if found:
                    return found
        if family:
            for registry in self.registries:
                found = registry.find(family=family)
                if found:
                    return found
        return None

    def schedules(self, latest_only=False):
        seen, found = set(), []
        for registry in self.registries:
            for schedule in registry.schedules(latest_only=latest_only):
                if (schedule.id, schedule.version) not in seen:
                    seen.add((schedule.id, schedule.version))
                    found.append(schedule)
        return found

    def publish(self, doc):
        """Publish into the first registry (see Registry.publish), unless the latest version of
        the id anywhere in the set already holds the same schedule: then that one is returned."""
        schedule_id = check_id(doc.get("id"))
        try:
            latest = self.get(schedule_id)
        except AYSError:  # none yet, or a broken file (`verify` reports it)
            latest = None
        if latest is not None and same_schedule(latest.doc, doc):
            return latest
        taken = [v for r in self.registries[1:] for v in r.versions(schedule_id)]
        return self.registries[0].publish(doc, taken_versions=taken)

    def _where(self):
        return ", ".join(str(r.root) for r in self.registries)
