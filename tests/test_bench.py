"""ays bench: summaries, same noise, reports, CLI errors (metrics: test_metrics.py; NFE: test_samplers.py)."""
import dataclasses
import json
import math
import sys

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


def _constructed_result(values_by_schedule):
    """A BenchResult from per-seed values of one metric in one cell (euler, 6 NFE)."""
    from ays_core.scoring import Metric

    metric = Metric("fd", "FD")
    rows = [{"seed": seed, "sampler": "euler", "nfe": 6, "steps": 6, "nfe_used": 6, "schedule": name, "fd": value}
            for name, values in values_by_schedule.items() for seed, value in enumerate(values)]
    config = {"candidate": next(iter(values_by_schedule)), "samplers": ["euler"], "nfe": [6], "seeds": [0, 1, 2],
              "samples": 10, "reference_steps": 100}
    return bench.BenchResult(config, (metric,), rows, bench.summarize(rows, (metric,)), {}, {}, None, [])


def test_bold_only_where_a_schedule_beats_every_other_beyond_the_paired_ci():
    clear = bench_report.markdown_table(_constructed_result({"AYS": [1.0, 1.1, 0.9], "karras": [2.0, 2.2, 1.9]}))
    assert "| AYS | **1 ± " in clear and "**2." not in clear
    close = bench_report.markdown_table(_constructed_result({"AYS": [1.0, 1.1, 0.9], "karras": [1.05, 1.0, 0.97]}))
    assert "**" not in close.split("\n\n")[0]


def test_verdict_table_and_words_say_who_won():
    result = _constructed_result({"AYS": [2.0, 2.1, 1.9], "karras": [1.0, 1.1, 0.9], "oracle": [0.5, 0.6, 0.4]})
    table = bench_report.verdict_table(result)
    assert "**loses to karras by 1 ± " in table and "| -0.5 |" in table and "| **oracle better by 1.5 ± " in table
    close = bench_report.verdict_table(_constructed_result({"AYS": [1.0, 1.1, 0.9], "oracle": [1.02, 1.05, 0.95]}))
    assert "| within CI: -0.00667 ± 0.13 |" in close
    ahead = bench_report.verdict_table(_constructed_result({"AYS": [0.2, 0.3, 0.25], "oracle": [1.02, 1.05, 0.95]}))
    assert "| **better than the oracle by 0.757 ± " in ahead
    assert "euler (FD): AYS: 0 wins, 0 ties, 1 losses of 1 cells" in table
    (words,) = bench_report.verdict_words(result)
    assert words.startswith("euler at 6 NFE: AYS loses: karras is better by 1 ± ") and words.endswith(" FD.")
    result = dataclasses.replace(result, metrics=(dataclasses.replace(result.metrics[0], label="Frechet dist."),))
    assert bench_report.verdict_words(result)[0].endswith(" Frechet dist.")  # one full stop, not two


def test_bench_computes_gits_and_the_oracle_and_keeps_the_oracle_out_of_the_verdict(tmp_path):
    from ays_core.gits import GitsSettings
    from ays_core.oracle import OracleSettings

    peers = bench.PeerSettings(gits=GitsSettings(trajectories=16, grid_steps=12),
                               oracle=OracleSettings(samples=64, evaluations=3))
    result = bench.run_bench(GridMixtureToy(), ["kl_optimal:ays", "karras", "gits", "oracle"], samplers=["euler"],
                             nfes=[4], samples=64, seeds=2, seed=1000, progress=False, peers=peers)
    assert {row["schedule"] for row in result.rows} == {"kl_optimal:ays", "karras", "gits", "oracle"}
    oracle = np.array(result.config["oracle"]["euler@4"])
    assert len(oracle) == 5 and oracle[-1] == 0 and np.all(np.diff(oracle) < 0)
    assert len(result.reference_rows) == 2
    written = bench_report.write_report(result, tmp_path)
    again = bench_report.read_result(written["json"])
    assert bench_report.verdict_table(again) == bench_report.verdict_table(result)
    assert "oracle" not in bench_report.verdict_table(result).split("|---")[1].replace("oracle gain", "")


def test_the_schedule_chart_is_drawn_without_matplotlib(tmp_path, monkeypatch):
    result = dataclasses.replace(_constructed_result({"AYS": [1.0, 1.1, 0.9], "karras": [2.0, 2.2, 1.9]}),
                                 schedules={"AYS": [80.0, 5.0, 0.5, 0.0], "karras": [80.0, 3.0, 0.2, 0.0]})
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    written = bench_report.write_report(result, tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["schedules.png"]
    assert written["schedules_plot"] == tmp_path / "schedules.png"
