import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ays_core import AYSError, Registry, RegistrySet, load_schedule, schedule
from ays_core.fileio import parse_json, sha256_bytes
from ays_core.registry import SHIPPED_REGISTRY, dump_schedule, new_schedule_doc, parse_ref, validate

PAPER = {  # the published lists (notes section 4), exactly as published
    "sd15": [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029],
    "sdxl": [14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029],
    "deepfloyd-if-1": [160.41, 8.081, 3.315, 1.885, 1.207, 0.785, 0.553, 0.293, 0.186, 0.030, 0.006],
    "svd": [700.00, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.002],
}
# v1 of sd15/sdxl (kept for infotexts that name it): SD's noise table at the published timesteps
NOISE_TABLE_V1 = {
    "sd15": [14.6146412293, 6.4745760956, 3.8636745985, 2.6946151520, 1.8841921177, 1.3943805092,
             0.9642583904, 0.6523686016, 0.3977456272, 0.1515232662, 0.0291671582],
    "sdxl": [14.6146412293, 6.3184485287, 3.7681790315, 2.1811480769, 1.3405244945, 0.8620721141,
             0.5550693289, 0.3798540708, 0.2332364134, 0.1114188177, 0.0291671582],
}
SHA = "ab" * 32


def doc_for(schedule_id="mine", sigmas=(10.0, 2.0, 0.5, 0.1), **extra):
    options = dict(family="edm", prediction="edm", source="optimized", solver="dpmpp_2m", samples=64, data="toy")
    options.update(extra)
    return new_schedule_doc(schedule_id, sigmas, **options)


def test_shipped_registry_is_sound():
    assert Registry(SHIPPED_REGISTRY).verify() == []
    ids = {e["id"] for e in Registry(SHIPPED_REGISTRY).read_index()["schedules"]}
    assert {"sd15", "sdxl", "svd", "deepfloyd-if-1"} <= ids


@pytest.mark.parametrize("schedule_id", sorted(PAPER))
def test_official_schedules_match_the_paper(schedule_id):
    s = Registry(SHIPPED_REGISTRY).get(schedule_id)  # the latest version: what "AYS" picks
    if schedule_id in ("sd15", "sdxl"):
        assert s.version == 2 and s.doc["sigmas"] == PAPER[schedule_id]  # the published sigmas, exactly
        assert list(schedule(schedule_id, 10)) == PAPER[schedule_id][:-1] + [0.0]
        v1 = Registry(SHIPPED_REGISTRY).get(schedule_id, 1)
        np.testing.assert_allclose(v1.sigmas, NOISE_TABLE_V1[schedule_id], rtol=5e-9)
        assert v1.doc["timesteps"] == s.doc["timesteps"]
    else:  # IF's smallest value is published as 0.006
        np.testing.assert_allclose(s.sigmas, PAPER[schedule_id], rtol=0.08, atol=5e-4)
    assert s.doc["provenance"]["source"] == "paper" and "2404.14507" in s.doc["provenance"]["reference"]
    np.testing.assert_allclose(schedule(schedule_id, 10)[:-1], s.sigmas[:-1])


def test_official_timesteps_recorded():
    assert Registry(SHIPPED_REGISTRY).get("sdxl").doc["timesteps"] == [999, 845, 730, 587, 443, 310, 193, 116, 53, 13, 0]


def test_publish_assigns_next_version_and_never_overwrites(tmp_path):
    reg = Registry(tmp_path / "reg")
    first = reg.publish(doc_for())
    second = reg.publish(doc_for(sigmas=(10.0, 1.0, 0.1)))
    assert (first.version, second.version) == (1, 2)
    assert reg.get("mine").version == 2 and reg.get("mine", 1).sigmas.tolist() == [10.0, 2.0, 0.5, 0.1]
    assert (tmp_path / "reg/mine/v1.json").read_bytes() == dump_schedule(first.doc)
    assert reg.verify() == []
    assert not [p for p in (tmp_path / "reg").rglob("*.tmp")]


def test_publishing_the_latest_content_again_writes_nothing(tmp_path):
    reg = Registry(tmp_path / "reg")
    first = reg.publish(doc_for())
    again = reg.publish({**doc_for(), "version": 9,
                         "provenance": {**doc_for()["provenance"], "created_at": "2030-01-01T00:00:00Z"}})
    assert first.just_published and not again.just_published
    assert again.ref == "mine@v1" and reg.versions("mine") == [1]
    reg.publish(doc_for(sigmas=(10.0, 1.0, 0.1)))
    assert reg.publish(doc_for()).ref == "mine@v3"  # the same as v1 but not as the latest: a new version


def test_publishing_what_the_shipped_registry_holds_writes_nothing(tmp_path):
    regs = RegistrySet([tmp_path / "mine", SHIPPED_REGISTRY])
    shipped = Registry(SHIPPED_REGISTRY).get("sd15")
    held = regs.publish(dict(shipped.doc))
    assert (held.ref, held.just_published, held.path) == (shipped.ref, False, shipped.path)
    assert not (tmp_path / "mine").exists()


def test_publish_ignores_the_version_in_the_file(tmp_path):
    reg = Registry(tmp_path)
    assert reg.publish({**doc_for(), "version": 7}).version == 1


def test_index_lists_files_with_hashes_and_model_keys(tmp_path):
    reg = Registry(tmp_path)
    reg.publish(doc_for("ckpt", sha256=SHA, family="sd15", prediction="eps"))
    (entry,) = reg.read_index()["schedules"]
    assert entry["path"] == "ckpt/v1.json" and entry["checkpoint_sha256"] == SHA and entry["shorthash"] == SHA[:10]
    assert entry["sha256"] == sha256_bytes((tmp_path / "ckpt/v1.json").read_bytes())
    before = (tmp_path / "index.json").read_bytes()
    reg.write_index()
    assert (tmp_path / "index.json").read_bytes() == before  # deterministic


def test_lookup_by_hash_shorthash_family(tmp_path):
    reg = Registry(tmp_path)
    reg.publish(doc_for("sd15", family="sd15", prediction="eps"))
    reg.publish(doc_for("my-finetune", family="sd15", prediction="eps", sha256=SHA))
    assert reg.find(sha256=SHA).id == "my-finetune"
    assert reg.find(sha256=SHA.upper()).id == "my-finetune"
    assert reg.find(shorthash=SHA[:10]).id == "my-finetune"
    assert reg.find(sha256="cd" * 32, family="sd15").id == "sd15"  # unknown checkpoint: family
    assert reg.find(family="sd15").id == "sd15"  # never a checkpoint-specific one
    assert reg.find(family="sdxl") is None


def test_registry_set_searches_user_first_and_never_reuses_a_version(tmp_path, shipped_copy):
    user = tmp_path / "user"
    regs = RegistrySet([user, shipped_copy])
    mine = regs.publish(doc_for("sd15", family="sd15", prediction="eps"))
    assert mine.version == 3 and mine.path.parent.parent == user  # shipped holds sd15@v1 and v2
    assert regs.get("sd15").path == mine.path
    assert regs.get("sd15", 1).doc["provenance"]["source"] == "paper"
    assert regs.find(family="sdxl").id == "sdxl"


@pytest.mark.parametrize("ref, expected", [("sdxl", ("sdxl", None)), ("sdxl@2", ("sdxl", 2)), ("sdxl@v3", ("sdxl", 3))])
def test_parse_ref(ref, expected):
    assert parse_ref(ref) == expected


@pytest.mark.parametrize("ref", ["../etc", "a/b", "SDXL", "", "x@0", "x@v", "x@-1", "é", "a" * 65, "..", "a\\b"])
def test_bad_refs_rejected(ref):
    with pytest.raises(AYSError):
        parse_ref(ref)


def test_get_missing_and_mismatched(tmp_path):
    reg = Registry(tmp_path)
    with pytest.raises(AYSError, match="no schedule"):
        reg.get("nothing")
    reg.publish(doc_for())
    (tmp_path / "mine/v2.json").write_bytes((tmp_path / "mine/v1.json").read_bytes())
    with pytest.raises(AYSError, match="claims to be"):
        reg.get("mine", 2)


def test_verify_finds_tampering_and_strays(tmp_path):
    reg = Registry(tmp_path)
    reg.publish(doc_for())
    reg.publish(doc_for(author="someone else"))
    path = tmp_path / "mine/v1.json"
    path.write_text(path.read_text().replace("0.5", "0.6"))
    (tmp_path / "mine/v3.json").write_text("{broken")
    (tmp_path / "mine/v2.json").unlink()
    problems = "\n".join(reg.verify())
    assert "v1.json: sha256 differs" in problems
    assert "v3.json" in problems and "not valid JSON" in problems
    assert "lists mine/v2.json, which is missing" in problems


def test_unwritable_folder_is_a_clear_error(tmp_path):
    if os.geteuid() == 0:
        target = Path("/proc/ays-registry")  # even root cannot create folders in /proc
    else:
        target = tmp_path / "ro"
        target.mkdir(mode=0o500)
    with pytest.raises(AYSError, match="registry"):
        Registry(target).publish(doc_for())


def _publish_many(root, count):
    reg = Registry(root)
    for i in range(count):
        reg.publish(doc_for(author=f"process {os.getpid()}, schedule {i}"))


def test_concurrent_publishers_never_share_a_version(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_publish_many, args=(str(tmp_path), 5)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(900)
        assert p.exitcode == 0
    reg = Registry(tmp_path)
    assert reg.versions("mine") == list(range(1, 16))
    assert reg.verify() == []
    assert [e["version"] for e in reg.read_index()["schedules"]] == list(range(1, 16))


# ---------------------------------------------------------------- hostile files

def test_load_schedule_round_trip(tmp_path):
    path = tmp_path / "s.json"
    path.write_bytes(dump_schedule(doc_for()))
    assert load_schedule(path).sigmas.tolist() == [10.0, 2.0, 0.5, 0.1]


def _mutated(**changes):
    doc = json.loads(json.dumps(doc_for(sha256=SHA)))
    for dotted, value in changes.items():
        target, *path = doc, *dotted.split(".")
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return doc


@pytest.mark.parametrize("changes, message", [
    ({"sigmas": [10.0, 0.5, 2.0, 0.1]}, "descending"),
    ({"sigmas": [10.0, 2.0, 2.0, 0.1]}, "descending"),
    ({"sigmas": [10.0, 2.0, 0.5, 0.0]}, "sigmas"),
    ({"sigmas": [10.0, -2.0, 0.5, 0.1]}, "sigmas"),
    ({"sigmas": [10.0]}, "sigmas"),
    ({"sigmas": [10.0, "2", 0.5, 0.1]}, "sigmas"),
    ({"sigmas": list(np.geomspace(10, 0.1, 5000))}, "sigmas"),
    ({"sigmas": [20.0, 2.0, 0.5, 0.1]}, "sigma_max"),
    ({"sigmas": [10.0, 2.0, 0.5, 0.2]}, "sigma_min"),
    ({"id": "../../etc"}, "id"), ({"id": "a/b"}, "id"), ({"id": "ＳＤ"}, "id"), ({"id": "x" * 300}, "id"),
    ({"version": 0}, "version"), ({"version": 1.5}, "version"), ({"version": "1"}, "version"),
    ({"schema_version": 2}, "schema_version"), ({"schema_version": KeyError}, "schema_version"),
    ({"model.family": KeyError}, "family"), ({"model.prediction": "magic"}, "prediction"),
    ({"model.sha256": "zz"}, "sha256"), ({"model.shorthash": "0123456789"}, "shorthash"),
    ({"provenance.source": "stolen"}, "source"), ({"provenance.created_at": "yesterday"}, "created_at"),
    ({"provenance": KeyError}, "provenance"), ({"extra": 1}, "extra"),
    ({"timesteps": [1, 2]}, "timesteps"),
])
def test_invalid_documents_rejected_with_a_reason(changes, message):
    with pytest.raises(AYSError, match=message):
        validate(_mutated(**changes))


@pytest.mark.parametrize("data, message", [
    (b'{"sigmas": [NaN]}', "NaN"), (b'{"sigmas": [Infinity]}', "Infinity"), (b'{"a": -Infinity}', "Infinity"),
    (b"[" * 100000 + b"]" * 100000, "nested"), (b"\xff\xfe", "JSON"), (b"", "JSON"),
    (b" " * (2 << 20), "too large"),
])
def test_parse_json_rejects_hostile_bytes(data, message):
    with pytest.raises(AYSError, match=message):
        parse_json(data)


def _independently_valid(doc):
    """The rules of a schedule file restated without the validator, for the property test."""
    try:
        sig, model, prov = doc["sigmas"], doc["model"], doc["provenance"]
        finite = all(isinstance(s, (int, float)) and not isinstance(s, bool) and 0 < s <= 1e6 for s in sig)
        return (doc["schema_version"] == 1 and isinstance(doc["version"], int) and not isinstance(doc["version"], bool)
                and doc["version"] >= 1 and 2 <= len(sig) <= 1001 and finite
                and all(b < a for a, b in zip(sig, sig[1:]))
                and abs(sig[0] - model["sigma_max"]) <= 1e-6 * model["sigma_max"]
                and abs(sig[-1] - model["sigma_min"]) <= 1e-6 * model["sigma_min"]
                and prov["source"] in ("paper", "optimized", "imported"))
    except (KeyError, TypeError, IndexError):
        return False


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                           max_leaves=12)
mutation_keys = st.sampled_from(["sigmas", "id", "version", "schema_version", "model", "provenance", "model.sigma_max",
                                 "model.sigma_min", "model.family", "provenance.source", "provenance.samples",
                                 "sigmas.0", "sigmas.2", "timesteps"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=st.lists(st.tuples(mutation_keys, json_values | st.just(KeyError)), max_size=3))
def test_property_validator_never_crashes_nor_accepts_invalid(mutations):
    doc = json.loads(json.dumps(doc_for(sha256=SHA)))
    for dotted, value in mutations:
        target, *path = doc, *dotted.split(".")
        try:
            for key in path[:-1]:
                target = target[int(key) if isinstance(target, list) else key]
            key = int(path[-1]) if isinstance(target, list) else path[-1]
            if value is KeyError:
                del target[key]
            else:
                target[key] = value
        except (KeyError, TypeError, IndexError, ValueError):
            continue
    try:
        validate(doc)
    except AYSError:
        return
    assert _independently_valid(doc), "validator accepted an invalid file"


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_property_parse_json_never_crashes(data):
    try:
        parse_json(data)
    except AYSError:
        pass
