"""The optimization path as one call (ays_core.pipeline): what every caller gets from it."""
import json

import numpy as np
import pytest

from ays_core import pipeline
from ays_core.errors import AYSError
from ays_core.models.ldm import LatentDiffusionDenoiser
from ays_core.models.toy import GaussianToy
from ays_core.refine import solver_stage_for
from ays_core.registry import Registry, load_schedule
from ays_core.search import optimize
from ays_core.settings import RunSettings
from tiny_ldm import TinyCompVisModel

QUICK = RunSettings(steps=3, refine=1, samples=256, validation_samples=64, step_counts="2", teacher_samples=8)


def latent(sha256="ab" * 32):
    return LatentDiffusionDenoiser(TinyCompVisModel(), info={"sha256": sha256, "name": "tiny.safetensors"})


def test_schedule_ids():
    assert pipeline.schedule_id_for(GaussianToy(), QUICK) == "toy-gaussian"
    assert pipeline.schedule_id_for(GaussianToy(), QUICK.replace(schedule_id="mine")) == "mine"
    assert pipeline.schedule_id_for(latent(), QUICK) == "sd15-abababab" + "ab"  # a checkpoint's own schedule
    assert pipeline.schedule_id_for(latent(sha256=None), QUICK) == "sd15"


def test_data_settings_fit_the_model():
    with pytest.raises(AYSError, match="prompts, resolution: only for latent diffusion models"):
        pipeline.check_data_settings(GaussianToy(), QUICK.replace(prompts="a cat", resolution=512))
    with pytest.raises(AYSError, match="needs x0 data"):
        pipeline.check_data_settings(latent(), QUICK)
    pipeline.check_data_settings(latent(), QUICK.replace(prompts="a cat"))


def test_run_writes_publishes_and_matches_the_search(tmp_path):
    outputs = pipeline.Outputs.beside(tmp_path / "g.json")
    assert (outputs.state, outputs.log) == (tmp_path / "g.state.json", tmp_path / "g.log.json")
    lines, phases = [], []
    hooks = pipeline.Hooks(report=lines.append, phase=phases.append, progress=False)
    outputs.state.write_text("{}")  # an earlier run's: replaced, and the caller is told
    outcome = pipeline.run(GaussianToy(), QUICK.replace(publish=True), outputs, registry_roots=[tmp_path / "reg"],
                           hooks=hooks, provenance={"model_spec": "toy:gaussian"})
    assert any("starting over" in line for line in lines) and phases == ["optimizing"]
    expected = optimize(GaussianToy(), QUICK, progress=False, solver_stage=solver_stage_for(QUICK))
    schedule = load_schedule(outputs.schedule)
    assert np.array_equal(schedule.sigmas, expected.sigmas) and np.array_equal(outcome.result.sigmas, expected.sigmas)
    recorded = schedule.doc["provenance"]["settings"]
    assert recorded["steps"] == 3 and recorded["validation_samples"] == 64 and recorded["model_spec"] == "toy:gaussian"
    assert "cfg_scale" not in recorded and schedule.doc["provenance"]["data"] == "samples of toy:gaussian"
    assert json.loads(outputs.log.read_text())["history"] and not outputs.state.exists()
    assert sorted(schedule.doc["step_schedules"]) == ["2", "3"]  # the solver stage's, beside the 12-step list
    assert outcome.published.ref == "toy-gaussian@v1" and Registry(tmp_path / "reg").versions("toy-gaussian") == [1]


def test_run_refuses_before_any_work(tmp_path):
    with pytest.raises(AYSError, match="does not exist"):
        pipeline.run(GaussianToy(), QUICK, pipeline.Outputs.beside(tmp_path / "no" / "g.json"))
    with pytest.raises(AYSError, match="steps"):
        pipeline.run(GaussianToy(), QUICK.replace(steps=1), pipeline.Outputs.beside(tmp_path / "g.json"))
    assert list(tmp_path.iterdir()) == []


def test_dry_run_counts_without_loading():
    lines = pipeline.dry_run("toy:gaussian", QUICK, "cpu")
    assert lines[0].startswith("ays optimize toy:gaussian: fast mode, 3 steps refined 1x, 256 samples")
    assert "race and refinement for 2, 3 steps on 8 teacher samples" in lines[0]
    # 48 grid points x 256 samples; the teacher: 8 samples of DPM++ 2M at 100 steps; the GITS-style
    # candidate: the same 8 draws through Heun on a 60-step grid; the data check: the converged
    # solution (the teacher's 100 steps) from its 512 noises
    assert "path table 12,288, teacher 800, GITS-style candidate 968, converged samples for the data check 51,200;" \
        in lines[1]
    with pytest.raises(AYSError, match="only for latent diffusion models"):
        pipeline.dry_run("toy:gaussian", QUICK.replace(prompts="a cat"), "cpu")
