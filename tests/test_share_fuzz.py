"""Property tests: random and mutated schedule files fed to the checks that pull and import use.

The validator must never crash (only AYSError) and never accept a file that breaks the format,
as restated independently by `follows_the_format` below (the schema's rules plus the semantic
ones, written without jsonschema)."""
import json
import math
import os
import re

from hypothesis import HealthCheck, given, settings, strategies as st

from ays_core import AYSError
from ays_core.fileio import parse_json
from ays_core.registry import dump_schedule, validate_index
from ays_core.share import check_schedule_bytes

EXAMPLES = int(os.environ.get("AYS_FUZZ_EXAMPLES", "300"))  # raise it for a longer hunt

ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
HEX64, HEX10 = re.compile(r"[0-9a-f]{64}"), re.compile(r"[0-9a-f]{10}")
STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})")
PREDICTIONS = {"eps", "v", "x0", "edm", "flow"}
SOURCES = {"paper", "optimized", "imported"}


# ---------------------------------------------------------------- the format, restated

def _number(x, low=0.0, high=1e6):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and low < x <= high


def _whole(x, low, high):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and float(x).is_integer() and low <= x <= high


def _text(x, longest):
    return isinstance(x, str) and len(x) <= longest


def _keys(d, required, optional=()):
    return isinstance(d, dict) and set(required) <= d.keys() <= set(required) | set(optional)


def follows_the_format(doc):
    if not _keys(doc, ("schema_version", "id", "version", "sigmas", "model", "provenance"),
                 ("timesteps", "description")):
        return False
    sigmas, model, prov = doc["sigmas"], doc["model"], doc["provenance"]
    top = (doc["schema_version"] == 1 and not isinstance(doc["schema_version"], bool)
           and isinstance(doc["id"], str) and ID.fullmatch(doc["id"]) and _whole(doc["version"], 1, 10 ** 6)
           and _text(doc.get("description", ""), 2000))
    sigmas_ok = (isinstance(sigmas, list) and 2 <= len(sigmas) <= 1001 and all(map(_number, sigmas))
                 and all(b < a for a, b in zip(sigmas, sigmas[1:])))
    if not (top and sigmas_ok):
        return False
    if "timesteps" in doc:
        steps = doc["timesteps"]
        if not (isinstance(steps, list) and len(steps) == len(sigmas) and all(_whole(t, 0, 100000) for t in steps)):
            return False
    if not (_keys(model, ("family", "prediction", "sigma_min", "sigma_max"), ("sha256", "shorthash", "name"))
            and isinstance(model["family"], str) and ID.fullmatch(model["family"])
            and isinstance(model["prediction"], str) and model["prediction"] in PREDICTIONS
            and _number(model["sigma_min"]) and _number(model["sigma_max"])
            and model["sigma_min"] < model["sigma_max"]
            and abs(sigmas[0] - model["sigma_max"]) <= 1e-6 * model["sigma_max"]
            and abs(sigmas[-1] - model["sigma_min"]) <= 1e-6 * model["sigma_min"]
            and _text(model.get("name", ""), 256)):
        return False
    sha, short = model.get("sha256", "0" * 64), model.get("shorthash", "0" * 10)
    if not (isinstance(sha, str) and HEX64.fullmatch(sha) and isinstance(short, str) and HEX10.fullmatch(short)):
        return False
    if "sha256" in model and "shorthash" in model and not sha.startswith(short):
        return False
    return (_keys(prov, ("source", "solver", "samples", "data", "ays_version", "created_at"),
                  ("author", "license", "reference", "settings"))
            and isinstance(prov["source"], str) and prov["source"] in SOURCES
            and _text(prov["solver"], 64) and (prov["samples"] is None or _whole(prov["samples"], 0, 10 ** 9))
            and _text(prov["data"], 1000) and _text(prov["ays_version"], 64)
            and isinstance(prov["created_at"], str) and bool(STAMP.fullmatch(prov["created_at"]))
            and _text(prov.get("author", ""), 256) and _text(prov.get("license", ""), 128)
            and _text(prov.get("reference", ""), 1000)
            and (not isinstance(prov.get("settings"), dict) or len(prov["settings"]) <= 64)
            and isinstance(prov.get("settings", {}), dict))


def storable(doc):
    """What was accepted can be written and read back unchanged."""
    return parse_json(dump_schedule(doc)) == doc


# ---------------------------------------------------------------- random valid files

ids = st.from_regex(ID, fullmatch=True)
hexes = st.text("0123456789abcdef", min_size=64, max_size=64)
json_leaf = st.none() | st.booleans() | st.integers(-10 ** 6, 10 ** 6) | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(max_size=10)
json_values = st.recursive(json_leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                           max_leaves=10)


@st.composite
def valid_docs(draw):
    sigmas = sorted(set(draw(st.lists(st.floats(1e-3, 1e3), min_size=2, max_size=30))), reverse=True)
    if len(sigmas) < 2:
        sigmas = [10.0, 0.1]
    model = {"family": draw(ids), "prediction": draw(st.sampled_from(sorted(PREDICTIONS))),
             "sigma_min": sigmas[-1], "sigma_max": sigmas[0]}
    if draw(st.booleans()):
        model["sha256"] = draw(hexes)
        model["shorthash"] = model["sha256"][:10]
    if draw(st.booleans()):
        model["name"] = draw(st.text(max_size=40))
    provenance = {"source": draw(st.sampled_from(sorted(SOURCES))), "solver": draw(st.text(max_size=20)),
                  "samples": draw(st.none() | st.integers(0, 10 ** 9)), "data": draw(st.text(max_size=30)),
                  "ays_version": "0.1.0", "created_at": "2026-01-02T03:04:05Z"}
    if draw(st.booleans()):
        provenance["settings"] = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4))
    doc = {"schema_version": 1, "id": draw(ids), "version": draw(st.integers(1, 10 ** 6)), "model": model,
           "sigmas": sigmas, "provenance": provenance}
    if draw(st.booleans()):
        doc["description"] = draw(st.text(max_size=60))
    if draw(st.booleans()):
        doc["timesteps"] = sorted(draw(st.lists(st.integers(0, 1000), min_size=len(sigmas), max_size=len(sigmas))),
                                  reverse=True)
    return doc


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=valid_docs(), compact=st.booleans())
def test_valid_files_are_accepted_and_stored_unchanged(doc, compact):
    data = json.dumps(doc).encode() if compact else dump_schedule(doc)
    assert follows_the_format(doc)
    assert check_schedule_bytes(data, "file") == doc
    assert storable(doc)


# ---------------------------------------------------------------- mutated files

PATHS = ["id", "version", "schema_version", "sigmas", "sigmas.0", "sigmas.1", "sigmas.-1", "model", "model.family",
         "model.prediction", "model.sigma_min", "model.sigma_max", "model.sha256", "model.shorthash", "timesteps",
         "description", "provenance", "provenance.source", "provenance.samples", "provenance.created_at",
         "provenance.settings", "extra", "model.extra", "provenance.extra"]
HOSTILE_VALUES = st.sampled_from([
    "../../etc/passwd", "/abs", "a\\b", "\u0430lpha", "\uff41", "alpha\n", "x" * 300, "", 0, -1, 1e-300, 1e6 + 1,
    2 ** 63, True, None, [], {}, [1.0], list(range(2000, 0, -1)), "NaN", 1.5, "1"])


def _set(doc, dotted, value):
    *parents, last = dotted.split(".")
    target = doc
    try:
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if value is KeyError and isinstance(target, list):
            del target[int(last)]
        elif isinstance(target, list):
            target[int(last)] = value
        elif value is KeyError:
            target.pop(last, None)
        else:
            target[last] = value
    except (KeyError, TypeError, IndexError, ValueError, AttributeError):
        pass  # the path no longer exists in the mutated document


def _accepts(data):
    try:
        return check_schedule_bytes(data, "file")
    except AYSError:
        return None


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=valid_docs(), mutations=st.lists(st.tuples(st.sampled_from(PATHS),
                                                      HOSTILE_VALUES | json_values | st.just(KeyError)),
                                            min_size=1, max_size=3))
def test_mutated_documents_never_crash_nor_pass_when_invalid(doc, mutations):
    for dotted, value in mutations:
        _set(doc, dotted, value)
    accepted = _accepts(json.dumps(doc).encode())
    if accepted is not None:
        assert follows_the_format(accepted), "accepted a file that breaks the format"
        assert storable(accepted)
    else:
        assert not follows_the_format(doc) or not storable(doc)


TOKENS = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1", b"0", b"[", b"]", b"{", b"}", b",", b":", b'"',
          b"\\ud800", b"\\u0000", b"\n", b"..", b"/", b"\\", b"\xff", b"\xd0\xb0", b"null", b"true", b"9" * 5000,
          b"[" * 100, b"\x00"]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=valid_docs(), edits=st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 8),
                                                  st.sampled_from(TOKENS) | st.binary(max_size=4)),
                                        min_size=1, max_size=4))
def test_mutated_bytes_never_crash_nor_pass_when_invalid(doc, edits):
    data = dump_schedule(doc)
    for where, cut, token in edits:
        where %= len(data) + 1
        data = data[:where] + token + data[where + cut:]
    accepted = _accepts(data)
    if accepted is not None:
        assert follows_the_format(accepted), "accepted a file that breaks the format"
        assert storable(accepted)


@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.binary(max_size=200) | st.builds(lambda v: json.dumps(v).encode(), json_values))
def test_random_bytes_as_index_never_crash(data):
    try:
        validate_index(parse_json(data, "index"))
    except AYSError:
        pass
