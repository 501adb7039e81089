"""The verdict of a bench cell from constructed paired results (ays_core/verdict.py)."""
import math

import pytest

from ays_core.verdict import CellVerdict, cell_verdict, paired_difference, summary_line, verdicts, significant_best


def test_paired_difference_matches_a_hand_computed_t_interval():
    mean, half = paired_difference([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    # differences 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302653 -> 4.302653 / sqrt(3)
    assert mean == pytest.approx(2.0)
    assert half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)


def test_wins_only_when_better_than_every_baseline_beyond_the_ci():
    values = {"AYS": [1.0, 1.1, 0.9, 1.0], "karras": [2.0, 2.2, 1.9, 2.1], "exp": [1.5, 1.6, 1.4, 1.5]}
    assert cell_verdict(values, "AYS", ["karras", "exp"]).outcome == "wins"


def test_noise_shared_by_seeds_cancels_in_the_paired_comparison():
    """Seed-to-seed spread far larger than the difference: still a win, because it is paired."""
    shift = [0.0, 10.0, -7.0, 3.0, 20.0]
    values = {"AYS": [1.0 + s for s in shift], "karras": [1.1 + s for s in shift]}
    values["karras"][0] += 0.01
    assert cell_verdict(values, "AYS", ["karras"]).outcome == "wins"


def test_ties_when_one_baseline_is_within_the_ci():
    values = {"AYS": [1.0, 1.2, 0.8], "karras": [3.0, 3.1, 2.9], "exp": [1.1, 0.9, 1.05]}
    assert cell_verdict(values, "AYS", ["karras", "exp"]) == CellVerdict("ties")


def test_loses_names_the_baseline_it_loses_to_by_most():
    values = {"AYS": [2.0, 2.1, 1.9], "a": [1.5, 1.6, 1.4], "b": [1.0, 1.1, 0.9], "c": [5.0, 5.0, 5.1]}
    verdict = cell_verdict(values, "AYS", ["a", "b", "c"])
    assert verdict.outcome == "loses" and verdict.against == "b"
    assert verdict.difference == pytest.approx(1.0)
    assert verdict.words().startswith("loses to b by 1 ± ")


def test_a_single_seed_never_decides():
    values = {"AYS": [1.0], "karras": [5.0]}
    assert cell_verdict(values, "AYS", ["karras"]).outcome == "ties"


def test_verdicts_from_rows_leave_the_oracle_out_and_count():
    rows = []
    for seed, (ays, karras, oracle) in enumerate([(1.0, 2.0, 0.1), (1.1, 2.1, 0.2), (0.9, 1.9, 0.1)]):
        for schedule, value in (("AYS", ays), ("karras", karras), ("oracle", oracle)):
            rows.append({"seed": seed, "sampler": "euler", "nfe": 6, "schedule": schedule, "fd": value})
            rows.append({"seed": seed, "sampler": "euler", "nfe": 8, "schedule": schedule, "fd": value + 1.5 * (schedule == "AYS")})
    result = verdicts(rows, "fd", "AYS")
    assert result[("euler", 6)].outcome == "wins"
    assert result[("euler", 8)].outcome == "loses" and result[("euler", 8)].against == "karras"
    assert summary_line(result) == "AYS: 1 wins, 0 ties, 1 losses of 2 cells"


def test_significant_best_is_none_without_a_clear_winner():
    assert significant_best({"a": [1.0, 1.1, 0.9], "b": [1.05, 1.0, 0.95]}) is None
    assert significant_best({"a": [1.0, 1.1, 0.9], "b": [2.0, 2.1, 1.9], "oracle": [0.0, 0.0, 0.0]}) == "a"
