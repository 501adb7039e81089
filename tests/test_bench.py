"""ays bench: summaries, same noise, reports, CLI errors (metrics: test_metrics.py; NFE: test_samplers.py)."""
import json
import math

import numpy as np
import pytest

from ays_core import bench, bench_report
from ays_core.cli import main
from ays_core.errors import AYSError
from ays_core.models.toy import GaussianToy, GridMixtureToy


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- summaries

def test_mean_and_interval_is_student_t():
    mean, half = bench.mean_and_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    mean, half = bench.mean_and_interval([5.0])
    assert mean == 5.0 and math.isnan(half)


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
    assert [m.key for m in result.metrics] == ["swd", "nll", "ref_dist"]
    assert len(result.rows) == 2 * 2 * 2 * 2 and len(result.summary) == 8
    heun = [row for row in result.summary if row["sampler"] == "heun" and row["nfe"] == 4]
    assert all(row["steps"] == 2 and row["nfe_used"] == 3 for row in heun)
    written = bench_report.write_report(result, tmp_path / "out")
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
    from ays_core.validation import ReferenceValidation

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
