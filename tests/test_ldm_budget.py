"""What `ays optimize` says a run will cost (ays_core.budget, --dry-run): evaluation counts that
match what the search does, memory measured on the meta device, batches that fit the budget."""
import re

import pytest
import torch

from ays_core.budget import (RESERVE_BYTES, RowCost, count_evaluations, host_chunk_size, meta_peak_bytes,
                             rows_that_fit, GIB)
from ays_core.cli import main
from ays_core.errors import AYSError
from ays_core.models import load_denoiser
from ays_core.search import optimize
from ays_core.settings import RunSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_counts_bracket_what_a_run_really_evaluates():
    model = load_denoiser("toy:gaussian")
    settings = RunSettings(steps=4, mode="paper", samples=16, refine=1, early_stop=True, patience=2, max_iterations=30,
                           solver="euler", validation_samples=16, reference_steps=20)
    count = count_evaluations(settings, plain_data=True)  # the toy has plain data: no reference run
    assert count.fixed == {}
    result = optimize(model, settings, progress=False)  # paper mode: validation of every stage-0 iterate
    done = result.evaluations["klub"] + result.evaluations["validation"]
    assert count.low <= done <= count.high


def test_paper_mode_counts_every_candidate_window():
    count = count_evaluations(RunSettings(steps=3, mode="paper", samples=10, refine=0, early_stop=False, patience=5,
                                          max_iterations=7, solver="euler", validation_samples=4, reference_steps=10))
    per_iteration = 2 * 10 * (11 * 2 + 1)  # 2 movable points x 11 candidates + the full-schedule record
    assert count.fixed == {} and count.low == per_iteration * 7 and count.high == per_iteration * 8


def test_meta_memory_grows_with_the_batch():
    layer = torch.nn.Sequential(torch.nn.Conv2d(4, 32, 3, padding=1, device="meta"), torch.nn.SiLU(),
                                torch.nn.Conv2d(32, 4, 3, padding=1, device="meta"))
    one, two = (meta_peak_bytes(layer, (torch.empty(rows, 4, 16, 16, device="meta"),), {}) for rows in (1, 2))
    assert one >= 32 * 16 * 16 * 4 and two == pytest.approx(2 * one)


def test_batches_fit_the_budget_or_fail_clearly():
    cost = RowCost(weight_bytes=4 * GIB, activation_bytes=GIB // 4, base_bytes=0)
    rows = rows_that_fit(cost, 12 * GIB)
    assert rows == (12 * GIB - 4 * GIB - RESERVE_BYTES) // (GIB // 4)
    with pytest.raises(AYSError, match="does not fit"):
        rows_that_fit(cost, 5 * GIB)
    assert host_chunk_size(96, 4 * 128 * 128, 4096) == 2 * GIB // (96 * 4 * 128 * 128 * 12)
    assert host_chunk_size(96, 8, 10) == 10


def test_dry_run_of_sd15_prints_calls_memory_and_time(capsys):
    assert main(["optimize", "--model", "arch:sd15?dtype=fp16", "--dry-run", "--samples", "1024"]) == 0
    printed = capsys.readouterr().out
    # 48 grid points x 1024 paths; 256 data-free draws x 50 steps; DPM++ 2M's teacher is those draws
    assert "path table: 49,152" in printed and "x0 drawn from the model: 12,800" in printed
    assert "teacher:" not in printed and "reference:" not in printed
    assert "859.5 M parameters" in printed and "latents: 4x64x64 (512px), float16" in printed
    rows = int(re.search(r"batches of (\d+) rows fit the 12.00 GiB budget", printed).group(1))
    assert rows >= 2  # an SD1.5 sample with guidance (2 rows) fits a 12 GB card
    assert re.search(r"time on cpu \(estimated from FLOPs.*\): .+ to .+", printed)


def test_dry_run_refuses_a_budget_the_model_cannot_fit(capsys):
    assert main(["optimize", "--model", "arch:sd15?dtype=fp16", "--dry-run", "--max-memory", "2"]) == 2
    assert "does not fit" in capsys.readouterr().err
    assert main(["optimize", "--model", "arch:sd15", "--steps", "4", "--publish"]) == 2
    assert "--dry-run" in capsys.readouterr().err


def test_sdxl_fits_a_12_gb_card_in_fp16(capsys):
    assert main(["optimize", "--model", "arch:sdxl?dtype=fp16", "--dry-run", "--max-memory", "12.88"]) == 0
    printed = capsys.readouterr().out  # 12.88 GB = 12 GiB
    assert "2,567.5 M parameters" in printed and "latents: 4x128x128 (1024px)" in printed
    rows = int(re.search(r"batches of (\d+) rows fit", printed).group(1))
    assert rows >= 2


def test_the_solver_stage_counts_bracket_what_it_evaluates():
    from ays_core.refine import solver_stage_for

    model = load_denoiser("toy:gaussian")
    settings = RunSettings(steps=4, samples=64, refine=1, solver="euler", reference_steps=20, grid_size=24,
                           step_counts="3", teacher_samples=16)
    count = count_evaluations(settings, plain_data=True)
    # the teacher: 16 samples of DPM++ 2M (the ODE's reference solver) at 20 steps; the GITS-style
    # candidate: Heun on its 60-step grid (then one Euler step) from the same 16 noise draws; the
    # data check's 512 samples of the converged solution (the teacher's schedule)
    assert count.fixed == {"path table": 24 * 64, "teacher": 16 * 20, "GITS-style candidate": 16 * (2 * 60 + 1),
                           "converged samples for the data check": 512 * 20}
    result = optimize(model, settings, progress=False, solver_stage=solver_stage_for(settings))
    done = result.evaluations["klub"] + result.evaluations["validation"]
    assert sorted(result.tuned) == ["3", "4"] and count.low <= done <= count.high


@pytest.mark.parametrize("model,solver", [("arch:sd15?dtype=fp16", "dpmpp_2m"), ("arch:sdxl?dtype=fp16", "dpmpp_2m_sde")])
def test_default_data_free_runs_plan_at_most_50k_to_100k_evaluations(capsys, model, solver):
    assert main(["optimize", "--model", model, "--solver", solver, "--dry-run", "--max-memory", "80"]) == 0
    low, high = (int(v.replace(",", "")) for v in
                 re.search(r"total: ([\d,]+) to ([\d,]+)", capsys.readouterr().out).groups())
    assert low <= 50_000 and high <= 100_000


@pytest.mark.parametrize("solver", ["euler", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde"])
def test_every_solver_fits_the_limits_with_the_defaults(solver):
    count = count_evaluations(RunSettings(solver=solver), x0_draws=256)
    assert count.low <= 50_000 and count.high <= 100_000
