"""k-diffusion samplers (ays_core.samplers): honest NFE accounting."""
import pytest

from ays_core import samplers
from ays_core.baselines import karras
from ays_core.errors import AYSError
from ays_core.models.toy import GaussianToy


@pytest.mark.parametrize("name", sorted(samplers.SAMPLERS))
@pytest.mark.parametrize("nfe", [2, 3, 6, 10])
def test_nfe_used_fits_the_budget_and_matches_the_formula(name, nfe):
    model = GaussianToy(d=2)
    steps = samplers.steps_for_nfe(name, nfe)
    sigmas = karras(steps, model.sigma_min, model.sigma_max)
    x = samplers.initial_noise((2,), 4, model.sigma_max, seed=0)
    _, calls = samplers.run_sampler(model, name, sigmas, x, 0, (model.sigma_min, model.sigma_max))
    per_step = samplers.SAMPLERS[name].evals_per_step
    assert calls == samplers.sampler_nfe(name, steps) <= nfe
    assert nfe - calls < per_step  # no cheaper step count was left unused


def test_second_order_samplers_pay_two_calls_per_step_but_the_last():
    assert samplers.steps_for_nfe("heun", 10) == 5 and samplers.sampler_nfe("heun", 5) == 9
    assert samplers.steps_for_nfe("heun", 9) == 5
    assert samplers.steps_for_nfe("euler", 10) == 10 and samplers.sampler_nfe("dpmpp_2m", 10) == 10


@pytest.mark.parametrize("bad", [1, 0, -3, 2.5, True])
def test_bad_nfe_is_a_clear_error(bad):
    with pytest.raises(AYSError, match="NFE"):
        samplers.steps_for_nfe("euler", bad)
