import math

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from ays_core import AYSError, resample
from ays_core.interp import loglinear_interp, rescale, truncate
from ays_core.registry import load_schedule

REGISTRY = Path(__file__).resolve().parent.parent / "registry"

SD15 = np.array([14.6146412293, 6.4745760956, 3.8636745985, 2.6946151520, 1.8841921177, 1.3943805092,
                 0.9642583904, 0.6523686016, 0.3977456272, 0.1515232662, 0.0291671582])


def test_ays_convention_reproduces_paper_list_at_stored_resolution():
    sigmas = resample(SD15, 10)
    assert len(sigmas) == 11
    np.testing.assert_allclose(sigmas[:-1], SD15[:-1], rtol=1e-12)
    assert sigmas[-1] == 0.0


def test_a1111_convention_resamples_to_n_points_then_appends_zero():
    sigmas = resample(SD15, 10, convention="a1111")
    assert len(sigmas) == 11 and sigmas[-1] == 0.0
    assert sigmas[0] == pytest.approx(SD15[0]) and sigmas[-2] == pytest.approx(SD15[-1])
    # 10 points over the 11-point list: the interior falls between the stored values
    assert SD15[2] < sigmas[1] < SD15[1]


def test_one_step_runs_from_sigma_max_to_zero():
    np.testing.assert_allclose(resample(SD15, 1), [SD15[0], 0.0])
    # the WebUI's built-in resamples to one point, which its interpolation puts at sigma_min
    np.testing.assert_allclose(resample(SD15, 1, convention="a1111"), [SD15[-1], 0.0])


def test_more_steps_than_stored_interpolates_in_log_sigma():
    sigmas = resample(SD15, 20)
    assert len(sigmas) == 21
    np.testing.assert_allclose(sigmas[0:-1:2], SD15[:-1], rtol=1e-12)  # stored points kept
    mid = sigmas[1]
    assert mid == pytest.approx(math.sqrt(SD15[0] * SD15[1]))  # log-midpoint


def test_loglinear_interp_exact_at_same_resolution_and_one_point():
    np.testing.assert_array_equal(loglinear_interp(SD15, len(SD15)), SD15)
    np.testing.assert_allclose(loglinear_interp(SD15, 1), SD15[-1:], rtol=1e-12)  # as the WebUI's built-in


# The paper's published lists (AYS-NOTES §4), written out here independently of registry/.
PUBLISHED = {"sd15": [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029],
             "sdxl": [14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029]}
SD_RANGE = (0.0291675, 14.614642)  # SD's own noise-table range, a rounding away from the published ends


def webui_builtin_ays(n, family):
    """AUTOMATIC1111's get_align_your_steps_sigmas (modules/sd_schedulers.py, 1.9+, also in Forge),
    rewritten from its formula: log-linear interpolation over the reversed (ascending) list with
    numpy, the list itself when n equals its length, then 0 appended; float32."""
    sigmas = list(PUBLISHED[family])
    if n != len(sigmas):
        xs = np.linspace(0, 1, len(sigmas))
        ys = np.log(sigmas[::-1])
        sigmas = np.append(np.exp(np.interp(np.linspace(0, 1, n), xs, ys))[::-1].copy(), [0.0])
    else:
        sigmas.append(0.0)
    return torch.FloatTensor(sigmas)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_shipped_published_lists_and_the_a1111_convention_bit_for_bit(family):
    stored = load_schedule(REGISTRY / family / "v2.json")
    assert stored.doc["sigmas"] == PUBLISHED[family] and len(stored.doc["timesteps"]) == 11
    ten = stored.resample(10, sigma_min=SD_RANGE[0], sigma_max=SD_RANGE[1])
    assert list(ten) == PUBLISHED[family][:-1] + [0.0]  # the paper's list exactly, last value 0
    for n in range(1, 301):
        ours = torch.tensor(stored.resample(n, convention="a1111", sigma_min=SD_RANGE[0], sigma_max=SD_RANGE[1]),
                            dtype=torch.float32)
        assert torch.equal(ours, webui_builtin_ays(n, family)), n


def test_a_rounding_is_not_a_range_override():
    stored = np.array(PUBLISHED["sd15"])
    np.testing.assert_array_equal(resample(stored, 7, sigma_min=0.0291675, sigma_max=14.614642), resample(stored, 7))
    np.testing.assert_array_equal(resample(stored, 7, sigma_min=0.029 * 1.0099), resample(stored, 7))
    moved = resample(stored, 7, sigma_min=0.029 * 1.02)  # beyond a rounding: rescaled
    assert moved[-2] > resample(stored, 7)[-2] and moved[0] == pytest.approx(14.615)


def test_range_override_rescales_log_affinely():
    sigmas = resample(SD15, 10, sigma_min=0.002, sigma_max=80.0)
    assert sigmas[0] == pytest.approx(80.0) and sigmas[-2] > 0.002
    stored = rescale(SD15, 0.002, 80.0)
    assert stored[-1] == pytest.approx(0.002) and stored[0] == pytest.approx(80.0)
    # relative positions in log-sigma are kept
    position = (np.log(SD15) - np.log(SD15[-1])) / (np.log(SD15[0]) - np.log(SD15[-1]))
    new_position = (np.log(stored) - np.log(0.002)) / (np.log(80.0) - np.log(0.002))
    np.testing.assert_allclose(position, new_position, atol=1e-12)


def test_range_override_equal_to_stored_range_is_identity():
    np.testing.assert_allclose(resample(SD15, 10, sigma_min=SD15[-1], sigma_max=SD15[0]), resample(SD15, 10))


def test_only_one_end_overridden():
    sigmas = resample(SD15, 10, sigma_max=20.0)
    assert sigmas[0] == pytest.approx(20.0) and sigmas[-2] == pytest.approx(SD15[-2] * 1.0, rel=0.2)


def test_denoise_keeps_tail():
    full = resample(SD15, 10)
    np.testing.assert_allclose(resample(SD15, 10, denoise=0.5), full[-6:])
    np.testing.assert_allclose(resample(SD15, 10, denoise=1.0), full)
    # close to 0 still runs one step, the last one
    np.testing.assert_allclose(resample(SD15, 10, denoise=1e-6), full[-2:])
    np.testing.assert_allclose(truncate(full, 0.04), full[-2:])


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0}, "steps"), ({"steps": -3}, "steps"), ({"steps": 2.5}, "steps"), ({"steps": True}, "steps"),
    ({"steps": 5, "denoise": 0.0}, "denoise"), ({"steps": 5, "denoise": 1.5}, "denoise"),
    ({"steps": 5, "denoise": float("nan")}, "denoise"),
    ({"steps": 5, "sigma_min": 5.0, "sigma_max": 1.0}, "sigma_min"),
    ({"steps": 5, "sigma_min": -1.0}, "sigma_min"), ({"steps": 5, "sigma_max": float("inf")}, "sigma_min"),
    ({"steps": 5, "convention": "comfy"}, "convention"),
])
def test_bad_arguments_raise_ays_error(kwargs, message):
    with pytest.raises(AYSError, match=message):
        resample(SD15, **kwargs)


@pytest.mark.parametrize("stored", [[1.0], [1.0, 2.0], [3.0, 1.0, 0.0], [3.0, float("nan"), 1.0], [3.0, 3.0, 1.0]])
def test_bad_stored_schedules_raise(stored):
    with pytest.raises(AYSError):
        resample(stored, 5)


# log-sigma steps of at least 1e-3: realistic schedules, no two points equal after exp()
stored_schedules = st.lists(st.floats(min_value=1e-3, max_value=2.0), min_size=1, max_size=60).flatmap(
    lambda gaps: st.floats(min_value=-7.0, max_value=3.0).map(
        lambda top: np.exp(top - np.concatenate([[0.0], np.cumsum(gaps)]))))


@settings(max_examples=200, deadline=None)
@given(stored=stored_schedules, steps=st.integers(1, 300), convention=st.sampled_from(["ays", "a1111"]))
def test_property_resample_shape_monotone_endpoints(stored, steps, convention):
    sigmas = resample(stored, steps, convention=convention)
    assert len(sigmas) == steps + 1
    assert sigmas[-1] == 0.0
    assert np.all(np.diff(sigmas) < 0), "strictly descending"
    first = stored[-1] if convention == "a1111" and steps == 1 else stored[0]  # the built-in's one point
    assert sigmas[0] == pytest.approx(first, rel=1e-12)
    if convention == "ays" and steps >= 2:
        assert sigmas[-2] >= stored[-1] * (1 - 1e-12)
    if convention == "a1111" and steps >= 2:
        assert sigmas[-2] == pytest.approx(stored[-1], rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(stored=stored_schedules)
def test_property_exact_at_stored_resolution(stored):
    sigmas = resample(stored, len(stored) - 1)
    np.testing.assert_allclose(sigmas[:-1], stored[:-1], rtol=1e-12)


@settings(max_examples=100, deadline=None)
@given(stored=stored_schedules, steps=st.integers(1, 100), denoise=st.floats(1e-9, 1.0))
def test_property_denoise_tail(stored, steps, denoise):
    full = resample(stored, steps)
    tail = resample(stored, steps, denoise=denoise)
    assert 2 <= len(tail) <= len(full)
    np.testing.assert_array_equal(tail, full[-len(tail):])
