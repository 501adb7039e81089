"""A damaged, edited or forged optimizer state file gives one line and exit status 2, never a
traceback; an edited one is refused by its checksum."""
import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ays_core import search
from ays_core.cli import main

EXAMPLES = int(os.environ.get("AYS_FUZZ_EXAMPLES", "300")) // 10  # an accepted state runs the optimizer
TINY = ["--model", "toy:gaussian", "--steps", "4", "--refine", "1", "--samples", "128", "--validation-samples", "16",
        "--max-iterations", "3", "--patience", "1"]


def run(folder, resume=True):
    """`ays optimize` in this process; (exit status, what it printed on stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["optimize", *TINY, "--out", str(folder / "g.json"), *(["--resume"] if resume else [])])
    return code, err.getvalue()


@pytest.fixture(scope="module")
def saved_state(tmp_path_factory):
    """The state file of a TINY run interrupted after a few iterations."""
    folder = tmp_path_factory.mktemp("interrupted")
    real_step, steps = search._Run._step, []

    def interrupt_later(self):
        steps.append(1)
        if len(steps) > 2:
            raise KeyboardInterrupt
        real_step(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search._Run, "_step", interrupt_later)
        assert run(folder, resume=False)[0] == 130  # the CLI's status for an interrupted run
    return (folder / "g.state.json").read_bytes()


def resume_from(data):
    folder = Path(tempfile.mkdtemp(prefix="ays-state-"))
    try:
        (folder / "g.state.json").write_bytes(data)
        return run(folder)
    finally:
        shutil.rmtree(folder)


def assert_one_line_or_resumed(code, err):
    if code == 0:
        return
    assert code == 2, err
    assert err.startswith("ays: error: corrupt resume state") and err.count("\n") == 1 and "Traceback" not in err, err


def test_the_saved_state_resumes(saved_state):
    assert resume_from(saved_state)[0] == 0


def test_an_edited_state_is_refused_by_its_checksum(saved_state):
    state = json.loads(saved_state)
    state["history"][-1]["klub"] *= 0.5
    code, err = resume_from(json.dumps(state).encode())
    assert code == 2 and "checksum does not match" in err and err.count("\n") == 1


def forged(state):
    return json.dumps({**state, "checksum": search.state_checksum(state)}).encode()


@pytest.mark.parametrize("data", [
    b'{"format": "ays-optimize-state-v1", "config": ' + b"[" * 100000 + b"]" * 100000 + b"}",
    b"\xff\xfe{}",
    b"",
])
def test_unreadable_states_are_one_line(data):
    assert_one_line_or_resumed(*resume_from(data))


@pytest.mark.parametrize("change", [
    {"history": "garbage"}, {"history": [None]}, {"history": [{"klub": "x"}]}, {"evaluations": {"klub": "x"}},
    {"evaluations": []}, {"best": {"sigmas": [1.0]}}, {"pending": {}}, {"pending": [[1, 2, 3]]}, {"stage": True},
    {"start": None}, {"descent_best": "x"}, {"width": 2.0}, {"sigmas": [[1.0], [2.0, 3.0]]}, {"table": "x"},
])
def test_forged_garbage_is_one_line(saved_state, change):
    code, err = resume_from(forged({**json.loads(saved_state), **change}))
    assert code == 2 and err.startswith("ays: error: corrupt resume state") and err.count("\n") == 1, err


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.binary(max_size=4)), min_size=1, max_size=4))
def test_damaged_bytes_are_one_line(saved_state, edits):
    data = bytearray(saved_state)
    for where, replacement in edits:
        at = int(where * len(data))
        data[at:at + max(1, len(replacement))] = replacement
    assert_one_line_or_resumed(*resume_from(bytes(data)))


GARBAGE = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=3), st.just([]), st.just({}), st.just([[1.0, 2.0], [3.0]]))


def _paths(value, prefix=()):
    """Every path into a JSON value, container first."""
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        yield from _paths(inner, prefix + (key,))


def _replace(value, path, new):
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


@pytest.mark.parametrize("sigmas", ["x", ["a", "b"], [1.0, 2.0], {"a": 1}])
def test_forged_history_sigmas_are_one_line(saved_state, sigmas):
    """The solver stage races history iterates on resume: their sigmas are checked like the rest."""
    state = json.loads(saved_state)
    state["history"][-1]["sigmas"] = sigmas
    code, err = resume_from(forged(state))
    assert code == 2 and err.startswith("ays: error: corrupt resume state") and err.count("\n") == 1, err


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_forged_states_are_one_line_or_resume(saved_state, data):
    """Someone who recomputes the checksum gets past it: the structural checks must then hold."""
    state = json.loads(saved_state)
    state.pop("checksum")
    paths = [p for p in _paths(state) if p and p[0] != "config"]  # another config is its own message
    path = data.draw(st.sampled_from(paths))
    assert_one_line_or_resumed(*resume_from(forged(_replace(state, path, data.draw(GARBAGE)))))


@pytest.mark.parametrize("words", [{"provenance": 5}, {"chosen": ["karras"]}, {"start": None}, {"search": 1}])
def test_forged_tuned_words_are_one_line(saved_state, words):
    """A tuned result's words end up in the schedule file's provenance: only text is accepted."""
    state = json.loads(saved_state)
    tuned = {"sigmas": [80.0, 10.0, 1.0, 0.1, 0.0], "start": "karras", "summary": "4 steps: ...", "moves": 0}
    state["tuned"] = {"4": {**tuned, **words}}
    code, err = resume_from(forged(state))
    assert code == 2 and err.startswith("ays: error: corrupt resume state") and err.count("\n") == 1, err
