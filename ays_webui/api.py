"""GET routes under /ays/v1/ mounted with the WebUI's API (ays_core.webapi: its --api-auth, one-line
4xx errors): the schedules in the registry folders, and the sigmas the loaded model gets."""
from typing import Optional

from ays_core.webapi import Routes, as_http_error, query_number
from ays_core.webui_model import describe_model, model_sigma_range
from modules import shared

from .adapter import ADAPTER
from .common import roots

MAX_API_STEPS = 1000  # GET /ays/v1/schedule: the WebUI's own step slider stops at 150


def schedule_summary(schedule):
    model = schedule.model
    summary = {"ref": schedule.ref, "id": schedule.id, "version": schedule.version,
               "family": model["family"], "prediction": model["prediction"],
               "sigma_min": model["sigma_min"], "sigma_max": model["sigma_max"],
               "steps": len(schedule.sigmas) - 1, "description": schedule.doc.get("description")}
    for key in ("sha256", "shorthash", "name"):
        if key in model:
            summary[key] = model[key]
    return summary


def api_schedules():
    """GET /ays/v1/schedules: every schedule in the registry folders, in search order."""
    searched = roots()
    return {"registries": searched, "schedules": [schedule_summary(s) for s in ADAPTER.selector.registries(searched).schedules()]}


def api_schedule(steps: str = "20", denoise: Optional[str] = None):
    """GET /ays/v1/schedule?steps=N[&denoise=D]: the sigmas the loaded model gets for N steps
    (1 to MAX_API_STEPS; over its own sigma range and the user's sigma min/max settings), the
    img2img tail at strength D in (0, 1], and from which schedule."""
    return as_http_error(lambda: current_schedule(query_number(steps, "steps", int, 1, MAX_API_STEPS),
                                                  None if denoise is None else query_number(denoise, "denoise", float, 1e-6, 1.0)))


def current_schedule(steps, denoise):
    sd_model = shared.sd_model
    sigma_range = model_sigma_range(sd_model) or (None, None)
    sigma_min = getattr(shared.opts, "sigma_min", 0) or sigma_range[0]
    sigma_max = getattr(shared.opts, "sigma_max", 0) or sigma_range[1]
    choice, convention, sigmas = ADAPTER.sigmas(steps, sigma_min, sigma_max, denoise=denoise)
    return {"schedule": choice.ref, "how": choice.how, "warning": choice.warning, "model": describe_model(sd_model).describe(),
            "steps": steps, "denoise": denoise, "convention": convention, "sigmas": [float(s) for s in sigmas]}


def add_api_routes(_demo, app):
    routes = Routes(app, shared.cmd_opts)
    routes.get("/ays/v1/schedules", api_schedules)
    routes.get("/ays/v1/schedule", api_schedule)
