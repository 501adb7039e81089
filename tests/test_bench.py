"""ays bench: metrics on known answers, honest NFE accounting, same noise, reports, CLI errors."""
import json
import math

import numpy as np
import pytest
import torch
from scipy import linalg

from ays_core import bench
from ays_core.cli import main
from ays_core.errors import AYSError
from ays_core.models.toy import GaussianToy, GridMixtureToy


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- metrics with known answers

def test_frechet_distance_identical_sets_is_zero():
    x = np.random.default_rng(0).standard_normal((500, 6))
    assert bench.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_diagonal_gaussians_is_analytic():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert bench.frechet_distance_from_moments(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected)


def test_frechet_distance_matches_the_sqrtm_formula_for_full_covariances():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    cov1, cov2 = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    mu1, mu2 = rng.standard_normal(4), rng.standard_normal(4)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(cov1 + cov2 - 2 * linalg.sqrtm(cov1 @ cov2).real)
    assert bench.frechet_distance_from_moments(mu1, cov1, mu2, cov2) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_of_shifted_gaussian_samples():
    rng = np.random.default_rng(2)
    shift = np.array([3.0, 0.0, 4.0])  # ||shift||^2 = 25, same covariance
    x, y = rng.standard_normal((20000, 3)), rng.standard_normal((20000, 3)) + shift
    assert bench.frechet_distance(x, y) == pytest.approx(25.0, rel=0.02)


def test_kid_is_about_zero_for_one_distribution_and_positive_for_shifted():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((800, 8)), rng.standard_normal((800, 8))
    same = bench.kernel_inception_distance(x, y)
    shifted = bench.kernel_inception_distance(x, y + 1.0)
    assert abs(same) < 0.05 * shifted and shifted > 0


def test_sliced_wasserstein_zero_for_identical_and_analytic_for_a_shift():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3000, 2))
    assert bench.sliced_wasserstein(x, x) == pytest.approx(0.0, abs=1e-12)
    # A shift m moves every 1-D projection on direction u by m.u; E (m.u)^2 = |m|^2 / d.
    shift = np.array([0.6, 0.8])
    assert bench.sliced_wasserstein(x, x + shift, projections=4000) == pytest.approx(1 / math.sqrt(2), rel=0.03)


def test_sliced_wasserstein_compares_unequal_sizes():
    rng = np.random.default_rng(5)
    assert bench.sliced_wasserstein(rng.standard_normal((500, 2)), rng.standard_normal((2000, 2))) < 0.1


def test_reference_distance_is_rms_per_coordinate():
    x = torch.zeros(3, 4)
    assert bench.reference_distance(x, x + 2.0) == pytest.approx(2.0)


def test_mean_and_interval_is_student_t():
    mean, half = bench.mean_and_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    mean, half = bench.mean_and_interval([5.0])
    assert mean == 5.0 and math.isnan(half)


# ---------------------------------------------------------------- NFE accounting

@pytest.mark.parametrize("name", sorted(bench.SAMPLERS))
@pytest.mark.parametrize("nfe", [2, 3, 6, 10])
def test_nfe_used_fits_the_budget_and_matches_the_formula(name, nfe):
    model = GaussianToy(d=2)
    steps = bench.steps_for_nfe(name, nfe)
    sigmas = bench.schedule_sigmas("karras", steps, model.sigma_min, model.sigma_max)
    x = bench.initial_noise((2,), 4, model.sigma_max, seed=0)
    _, calls = bench.run_sampler(model, name, sigmas, x, 0, (model.sigma_min, model.sigma_max))
    per_step = bench.SAMPLERS[name].evals_per_step
    assert calls == bench.sampler_nfe(name, steps) <= nfe
    assert nfe - calls < per_step  # no cheaper step count was left unused


def test_second_order_samplers_pay_two_calls_per_step_but_the_last():
    assert bench.steps_for_nfe("heun", 10) == 5 and bench.sampler_nfe("heun", 5) == 9
    assert bench.steps_for_nfe("heun", 9) == 5
    assert bench.steps_for_nfe("euler", 10) == 10 and bench.sampler_nfe("dpmpp_2m", 10) == 10


@pytest.mark.parametrize("bad", [1, 0, -3, 2.5, True])
def test_bad_nfe_is_a_clear_error(bad):
    with pytest.raises(AYSError, match="NFE"):
        bench.steps_for_nfe("euler", bad)


# ---------------------------------------------------------------- schedules and noise

def test_baseline_conventions():
    plain = bench.schedule_sigmas("karras", 10, 0.002, 80.0)
    ays = bench.schedule_sigmas("karras:ays", 10, 0.002, 80.0)
    assert len(plain) == len(ays) == 11 and plain[-1] == ays[-1] == 0
    assert plain[-2] == pytest.approx(0.002) and ays[-2] > 0.002 and ays[0] == pytest.approx(80.0)


def test_registry_schedule_is_rescaled_to_the_model_range():
    sigmas = bench.schedule_sigmas("sd15", 10, 0.002, 80.0)
    assert sigmas[0] == pytest.approx(80.0) and sigmas[-1] == 0 and len(sigmas) == 11


def test_same_noise_for_every_schedule_and_rerun():
    model = GridMixtureToy()
    kwargs = dict(samplers=["dpmpp_2m_sde"], nfes=[4], samples=16, seeds=1, progress=False)
    first = bench.run_bench(model, ["karras", "exponential"], **kwargs)
    again = bench.run_bench(model, ["exponential", "karras"], **kwargs)
    by_label = {row["schedule"]: row for row in again.rows}
    for row in first.rows:
        assert row == by_label[row["schedule"]]


def test_toy_bench_scores_and_report(tmp_path):
    result = bench.run_bench(GridMixtureToy(), ["karras", "sd15"], samplers=["euler", "heun"], nfes=[3, 4],
                             samples=32, seeds=2, progress=False)
    assert [m.key for m in result.metrics] == ["nll", "swd", "ref_dist"]
    assert len(result.rows) == 2 * 2 * 2 * 2 and len(result.summary) == 8
    heun = [row for row in result.summary if row["sampler"] == "heun" and row["nfe"] == 4]
    assert all(row["steps"] == 2 and row["nfe_used"] == 3 for row in heun)
    written = bench.write_report(result, tmp_path / "out")
    table = written["table"].read_text()
    assert "| heun | 3 | 2 | sd15 |" in table
    data = json.loads(written["json"].read_text())
    assert len(data["rows"]) == 16 and set(data["schedules"]) == {"karras", "sd15"}
    for key in ("schedules_plot", "nll_plot", "samples_euler"):
        assert written[key].stat().st_size > 1000


# ---------------------------------------------------------------- the command

def test_cli_bench_writes_table_and_plots(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "bench", "--model", "toy:gaussian", "--schedules", "karras,kl_optimal",
                           "--samplers", "euler", "--nfe", "3", "--samples", "16", "--seeds", "2",
                           "--out", str(tmp_path / "b"), "--no-progress")
    assert code == 0 and "| euler | 3 | 3 | kl_optimal |" in out
    assert (tmp_path / "b" / "results.csv").is_file() and (tmp_path / "b" / "schedules.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["--samplers", "warp_drive"], "unknown sampler"),
    (["--nfe", "six"], "whole numbers"),
    (["--nfe", "1"], ">= 2"),
    (["--nfe", "6,,8"], "empty"),
    (["--schedules", "no-such-schedule"], "no-such-schedule"),
    (["--schedules", "karras,karras"], "distinct"),
    (["--samples", "1"], "samples"),
    (["--seeds", "0"], "seeds"),
    (["--model", "missing.safetensors"], "not found"),
    (["--model", "toy:nothing"], "unknown toy"),
])
def test_cli_bench_errors_are_one_line(capsys, tmp_path, args, message):
    base = {"--model": "toy:gaussian", "--samples": "8", "--nfe": "2", "--samplers": "euler"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    argv = ["bench", "--out", str(tmp_path / "o"), "--no-progress"] + [x for kv in base.items() for x in kv]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and err.startswith("ays: error:") and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_early_stopping_judges_every_solver_on_distribution():
    from ays_core.search import ReferenceValidation

    model = GridMixtureToy()
    args = (10, 64, 0, model.sigma_min, model.sigma_max, 20, (2,), "cpu")
    sde = ReferenceValidation(model, "dpmpp_2m_sde", *args, x0_source=model.sample_data)
    ode = ReferenceValidation(model, "euler", *args, x0_source=model.sample_data)
    assert sde.real is not None and ode.real is not None and not hasattr(ode, "reference")
    ascending = bench.schedule_sigmas("exponential", 10, model.sigma_min, model.sigma_max)[:-1][::-1]
    assert np.isfinite(sde(ascending)) and np.isfinite(ode(ascending))  # a KL estimate: may dip below 0


def test_cli_bench_rejects_an_out_path_that_is_a_file(capsys, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    code, _, err = run_cli(capsys, "bench", "--model", "toy:gaussian", "--samples", "8", "--nfe", "2",
                           "--samplers", "euler", "--out", str(target), "--no-progress")
    assert code == 2 and "not a folder" in err and target.read_text() == "keep me"
