"""The oracle's direct search (ays_core/oracle.py) on a metric with a known minimum."""
import numpy as np
import pytest

from ays_core.oracle import OracleSettings, moved, search

TARGET = np.array([80.0, 9.0, 1.5, 0.2, 0.0])


def log_distance(sigmas):
    return float(np.abs(np.log(sigmas[1:-1]) - np.log(TARGET[1:-1])).sum())


def test_search_walks_towards_the_minimum_and_stays_valid():
    calls = []

    def evaluate(sigmas):
        calls.append(sigmas)
        return log_distance(sigmas)

    karras_like = np.array([80.0, 20.0, 3.0, 0.3, 0.0])
    bad = np.array([80.0, 60.0, 40.0, 20.0, 0.0])
    best, value, used = search(evaluate, [bad, karras_like], 0.002, OracleSettings(evaluations=200))
    assert value < log_distance(karras_like) / 10
    assert value == pytest.approx(log_distance(best))
    assert used <= 200 and len(calls) == used + 2
    for sigmas in calls:  # every schedule tried is descending, within the range, ends in 0
        assert sigmas[0] == 80.0 and sigmas[-1] == 0.0 and np.all(np.diff(sigmas) < 0) and sigmas[-2] >= 0.002


def test_budget_is_respected_and_the_best_start_is_never_lost():
    start = TARGET.copy()
    best, value, used = search(log_distance, [start], 0.002, OracleSettings(evaluations=5))
    assert used <= 5 and value == 0.0 and np.array_equal(best, TARGET)


def test_moved_goes_part_of_the_log_gap():
    sigmas = np.array([100.0, 10.0, 1.0, 0.0])
    assert moved(sigmas, 1, 0.5, 0.01)[1] == pytest.approx(np.sqrt(1000.0))
    assert moved(sigmas, 1, -0.5, 0.01)[1] == pytest.approx(np.sqrt(10.0))
    assert moved(sigmas, 2, -1.0, 0.01)[2] == pytest.approx(0.01)  # the last positive point stops at sigma_min
