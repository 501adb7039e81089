"""AYS for the Stable Diffusion WebUI (AUTOMATIC1111 1.9+/1.10 and older, Forge).

A thin adapter: the WebUI asks for N-step sigmas; ays_core chooses the stored schedule for the
loaded checkpoint (ays_core.selection) and resamples it (ays_core.interp). This file only knows
the WebUI's interfaces:
- 1.9+ and Forge: a scheduler "AYS" (name `ays`) in modules/sd_schedulers.py, called by
  KDiffusionSampler.get_sigmas with keywords n, sigma_min, sigma_max, inner_model, device; the
  WebUI itself cuts the img2img / hires tail and writes "Schedule type: AYS" in the infotext.
- before 1.9: sampler entries "<Sampler> AYS" in modules/sd_samplers.py whose sampler objects
  compute their sigmas here.
- settings in a section "AYS", infotext "AYS schedule: <id>@v<N>" and, when the hires pass used
  another, "Hires AYS schedule: <id>@v<N>" (pasting pins those versions through the settings'
  infotext names), GET routes under /ays/v1/ mounted with the WebUI's API (ays_core.webapi).
Nothing here may break the WebUI: problems become one console line and a fallback.
"""
import os
import sys
from typing import Optional

EXTENSION_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if EXTENSION_ROOT not in sys.path:
    # The WebUI puts the extension folder on sys.path only while it imports this file, so
    # everything needed from ays_core is imported right here.
    sys.path.insert(0, EXTENSION_ROOT)

from ays_core.errors import AYSError  # noqa: E402
from ays_core.selection import ModelInfo, Selector, builtin_schedule, normalize_pin, registry_roots  # noqa: E402
from ays_core.share import pull_in_background, pull_summary  # noqa: E402
from ays_core.userdirs import webui_registry  # noqa: E402
from ays_core.webui_model import describe_model, model_sigma_range  # noqa: E402
from ays_core.webapi import Routes, as_http_error, query_number  # noqa: E402
from modules import paths, script_callbacks, scripts, shared  # noqa: E402

SCHEDULER_NAME = "ays"
SCHEDULER_LABEL = "AYS"
LEGACY_SUFFIX = " AYS"
# Pre-1.9 samplers that get an "<name> AYS" twin (when the WebUI has them).
LEGACY_BASE_SAMPLERS = ("Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DPM++ 2S a", "DPM++ 2M",
                        "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 3M SDE", "Restart")

OPT_REGISTRIES = "ays_registry_dirs"
OPT_PIN = "ays_schedule"
OPT_HIRES_PIN = "ays_hires_schedule"
OPT_READABLE = "ays_readable_folders"
OPT_REMOTE = "ays_remote_url"
OPT_A1111 = "ays_a1111_convention"
OPT_PULL_NOW = "ays_pull_now"  # a button, stored nowhere
OPT_PULL_AT_START = "ays_pull_at_start"
INFOTEXT_SCHEDULE = "AYS schedule"
INFOTEXT_HIRES_SCHEDULE = "Hires AYS schedule"
INFOTEXT_A1111 = "AYS A1111 convention"
MAX_API_STEPS = 1000  # GET /ays/v1/schedule: the WebUI's own step slider stops at 150

def option(key, default):
    return getattr(shared.opts, key, default)


WARNED = set()


def warn(message):
    """Print each distinct problem once: a console line, never an exception."""
    if message not in WARNED:
        WARNED.add(message)
        print(f"AYS: {message}", file=sys.stderr)


# ---------------------------------------------------------------- the adapter

class Adapter:
    """Chooses and resamples schedules for the WebUI; remembers the generation in progress so
    the scheduler function (which only gets n and the range) can write the infotext."""

    def __init__(self):
        self.selector = Selector()
        self.active_p = None

    def roots(self):
        return registry_roots(option(OPT_REGISTRIES, ""), own=self.own_registry())

    @staticmethod
    def own_registry():
        return webui_registry(paths.models_path)

    def convention(self):
        return "a1111" if option(OPT_A1111, False) else "ays"

    def pin(self, p=None):
        """The pinned schedule for this pass: the hires pin in a hires pass when one is set
        (restored by pasting "Hires AYS schedule"), else the pin."""
        hires_pin = normalize_pin(option(OPT_HIRES_PIN, "")) if getattr(p, "is_hr_pass", False) else None
        return hires_pin or normalize_pin(option(OPT_PIN, ""))

    def choice(self, p=None):
        roots = self.roots()
        for root in self.selector.missing_roots(roots, optional=[self.own_registry()]):
            warn(f"registry folder {root} is missing or unreadable; skipping it")
        choice = self.selector.choose(roots, describe_model(shared.sd_model), self.pin(p))
        if choice.warning:
            warn(choice.warning)
        return choice

    def sigmas(self, n, sigma_min, sigma_max, denoise=None, p=None):
        """(choice, convention, numpy sigmas) for an n-step request over [sigma_min, sigma_max]
        (p: the generation, whose hires pass may have its own pin)."""
        choice = self.choice(p)
        convention = self.convention()
        sigmas = choice.schedule.resample(n, convention=convention, sigma_min=sigma_min, sigma_max=sigma_max,
                                          denoise=denoise)
        return choice, convention, sigmas

    def begin(self, p):
        """A generation starts. The XYZ grid runs its cells on shallow copies of one p that share
        extra_generation_params, so entries from an earlier cell are dropped here."""
        self.active_p = p
        for key in (INFOTEXT_SCHEDULE, INFOTEXT_HIRES_SCHEDULE, INFOTEXT_A1111):
            p.extra_generation_params.pop(key, None)

    def end(self, p):
        if self.active_p is p:
            self.active_p = None

    def note_in_infotext(self, p, ref, convention):
        if p is None:
            return
        params = p.extra_generation_params
        first_pass_ref = params.get(INFOTEXT_SCHEDULE)
        if getattr(p, "is_hr_pass", False) and first_pass_ref is not None:
            if first_pass_ref != ref:
                params[INFOTEXT_HIRES_SCHEDULE] = ref
        else:
            params[INFOTEXT_SCHEDULE] = ref
        if convention == "a1111":
            params[INFOTEXT_A1111] = True

    def torch_sigmas(self, n, sigma_min, sigma_max, device, inner_model=None, p=None):
        """What a WebUI scheduler returns: n + 1 float32 sigmas on `device`. Never raises: on any
        problem the model's own default schedule (else the built-in SD1.5 one) is used and the
        problem printed once."""
        import torch

        p = p or self.active_p
        try:
            choice, convention, sigmas = self.sigmas(n, sigma_min, sigma_max, p=p)
            self.note_in_infotext(p, choice.ref, convention)
            return torch.tensor(sigmas, dtype=torch.float32).to(device)
        except Exception as exc:  # a generation must never fail because of AYS
            reason = str(exc) if isinstance(exc, AYSError) else f"{type(exc).__name__}: {exc}"
            warn(f"{reason}; using the model's default schedule instead")
            if inner_model is not None:
                return inner_model.get_sigmas(n).to(device)
            return torch.tensor(builtin_schedule(ModelInfo()).resample(max(int(n), 1)), dtype=torch.float32).to(device)


ADAPTER = Adapter()


def ays_scheduler(n, sigma_min, sigma_max, device="cpu", inner_model=None, **_other):
    """sd_schedulers entry point (1.9+, Forge): keyword-only call from get_sigmas."""
    return ADAPTER.torch_sigmas(n, sigma_min, sigma_max, device, inner_model=inner_model)


# ---------------------------------------------------------------- registration (1.9+, Forge)

def register_scheduler(sd_schedulers):
    """Add "AYS" to the scheduler list and map (name and label); on "Reload UI" the entry from
    the previous load is replaced in place, never duplicated. The built-in Align Your Steps is
    left alone."""
    entry = sd_schedulers.Scheduler(SCHEDULER_NAME, SCHEDULER_LABEL, ays_scheduler, need_inner_model=True)
    names = [s.name for s in sd_schedulers.schedulers]
    if SCHEDULER_NAME in names:
        sd_schedulers.schedulers[names.index(SCHEDULER_NAME)] = entry
    else:
        sd_schedulers.schedulers.append(entry)
    sd_schedulers.schedulers_map[SCHEDULER_NAME] = entry
    sd_schedulers.schedulers_map[SCHEDULER_LABEL] = entry
    forget_resolved_schedulers()


def forget_resolved_schedulers():
    """sd_samplers.get_sampler_and_scheduler is memoised: drop answers given before "AYS" existed."""
    try:
        from modules import sd_samplers
    except ImportError:
        return
    cache_clear = getattr(getattr(sd_samplers, "get_sampler_and_scheduler", None), "cache_clear", None)
    if cache_clear:
        cache_clear()


# ---------------------------------------------------------------- registration (before 1.9)

def legacy_get_sigmas(sampler, original, p, steps):
    """KDiffusionSampler.get_sigmas for an "<Sampler> AYS" entry, following the WebUI's own:
    the script override wins, the penultimate sigma is discarded where the sampler asks for it,
    and the user's sigma min/max settings replace the model range."""
    if getattr(p, "sampler_noise_scheduler_override", None):
        return original(p, steps)
    opts = shared.opts
    options = sampler.config.options if sampler.config is not None else {}
    discard = options.get("discard_next_to_last_sigma", False) or getattr(opts, "always_discard_next_to_last_sigma", False)
    table = sampler.model_wrap.sigmas  # ascending; these WebUIs kept sigmas on the model's device
    sigma_min = getattr(opts, "sigma_min", 0) or table[0].item()
    sigma_max = getattr(opts, "sigma_max", 0) or table[-1].item()
    sigmas = ADAPTER.torch_sigmas(steps + 1 if discard else steps, sigma_min, sigma_max, table.device,
                                  inner_model=sampler.model_wrap, p=p)
    if discard:
        import torch

        sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
    return sigmas


def with_ays_sigmas(base_constructor):
    def construct(model):
        sampler = base_constructor(model)
        original = getattr(sampler, "get_sigmas", None)
        if original is None:
            warn("this WebUI is too old for AYS samplers (no get_sigmas); update to 1.3 or newer")
            return sampler
        sampler.get_sigmas = lambda p, steps: legacy_get_sigmas(sampler, original, p, steps)
        return sampler
    return construct


def register_legacy_samplers(sd_samplers):
    """Pre-1.9 WebUIs: add "<Sampler> AYS" entries to all_samplers (replacing those of an
    earlier load) and rebuild the sampler lists the UI reads."""
    bases = [s for s in sd_samplers.all_samplers if s.name in LEGACY_BASE_SAMPLERS]
    for base in bases:
        entry = type(base)(base.name + LEGACY_SUFFIX, with_ays_sigmas(base.constructor),
                           [alias + "_ays" for alias in base.aliases], dict(base.options))
        names = [s.name for s in sd_samplers.all_samplers]
        if entry.name in names:
            sd_samplers.all_samplers[names.index(entry.name)] = entry
        else:
            sd_samplers.all_samplers.append(entry)
    if hasattr(sd_samplers, "all_samplers_map"):
        sd_samplers.all_samplers_map = {s.name: s for s in sd_samplers.all_samplers}
    sd_samplers.set_samplers()


def register():
    try:
        from modules import sd_schedulers
    except ImportError:
        from modules import sd_samplers

        register_legacy_samplers(sd_samplers)
    else:
        register_scheduler(sd_schedulers)


# ---------------------------------------------------------------- settings

def option_info(default, label, component=None, component_args=None, infotext=None, restrict_api=False, **kwargs):
    """shared.OptionInfo in the AYS section; `infotext` (1.7+) makes pasted infotext restore it;
    `restrict_api` (1.7+) keeps API clients (override_settings, A1111's /sdapi/v1/options) from
    changing it."""
    kwargs["section"] = ("ays", "AYS")
    newer = {k: v for k, v in (("infotext", infotext), ("restrict_api", restrict_api)) if v}
    if newer:
        try:
            return shared.OptionInfo(default, label, component, component_args, **newer, **kwargs)
        except TypeError:  # before 1.7
            pass
    return shared.OptionInfo(default, label, component, component_args, **kwargs)


def restrict_folder_setting(key):
    """A setting naming server folders: frozen by --hide-ui-dir-config like the WebUI's output
    folders, and out of the API's reach."""
    restricted = getattr(shared, "restricted_opts", None)
    if isinstance(restricted, set):
        restricted.add(key)


def pin_choices():
    try:
        refs = [s.ref for s in ADAPTER.selector.registries(ADAPTER.roots()).schedules()]
    except AYSError:
        refs = []
    return {"choices": ["Automatic", *refs]}


def add_settings():
    import gradio as gr

    shared.opts.add_option(OPT_REGISTRIES, option_info(
        "", "Registry folders searched first (separate with ;; pulls go to the first). Then $AYS_REGISTRY if set, models/ays-registry and the shipped registry",
        gr.Textbox, restrict_api=True))
    restrict_folder_setting(OPT_REGISTRIES)
    shared.opts.add_option(OPT_PIN, option_info(
        "Automatic", "Schedule: Automatic = the checkpoint's own, else its family's; or pin an id / id@vN",
        gr.Dropdown, pin_choices, infotext=INFOTEXT_SCHEDULE, refresh=ADAPTER.selector.invalidate))
    shared.opts.add_option(OPT_HIRES_PIN, option_info(
        "Automatic", "Hires pass schedule: Automatic = chosen like the first pass's; or pin an id / id@vN",
        gr.Dropdown, pin_choices, infotext=INFOTEXT_HIRES_SCHEDULE, refresh=ADAPTER.selector.invalidate))
    shared.opts.add_option(OPT_READABLE, option_info(
        "", "Folders the AYS tab and API may read (prompts files, image folders; separate with ;). Empty: none, prompts only inline",
        gr.Textbox, restrict_api=True))
    restrict_folder_setting(OPT_READABLE)
    shared.opts.add_option(OPT_REMOTE, option_info("", "Remote registry URL (for ays pull/share)", gr.Textbox))
    pull_button_option = option_info("Pull now", "Pull now from the remote registry URL (apply settings first)",
                                     pull_button)
    pull_button_option.do_not_save = True
    shared.opts.add_option(OPT_PULL_NOW, pull_button_option)
    shared.opts.add_option(OPT_PULL_AT_START, option_info(
        False, "Pull from the remote registry URL at start (in the background)", gr.Checkbox))
    shared.opts.add_option(OPT_A1111, option_info(
        False, "A1111 step convention: N points then 0, like the built-in Align Your Steps (off: N + 1 points, last set to 0)",
        gr.Checkbox, infotext=INFOTEXT_A1111))


# ---------------------------------------------------------------- sharing (ays_core.share)

def pull_now():
    """Pull from the saved remote registry URL into the first registry folder searched; the
    outcome, success or failure, is one console line (returned too, for the button's notice)."""
    url = str(option(OPT_REMOTE, "") or "").strip()
    if url:
        line = pull_summary(url, ADAPTER.roots())
        ADAPTER.selector.invalidate()
    else:
        line = "AYS: no remote registry URL to pull from (Settings > AYS; apply settings first)"
    print(line, file=sys.stderr)
    return line


def pull_button(label=None, value=None, elem_id=None, **_component_args):
    """The "Pull now" setting's component. The settings page calls every component with label
    and value; a Gradio 4 Button takes no label, so the value is its text."""
    import gradio as gr

    def clicked():
        line = pull_now()
        notice = getattr(gr, "Info", None)  # a toast, Gradio 3.40+
        if notice is not None:
            notice(line)

    button = gr.Button(value=value or label, elem_id=elem_id)
    button.click(fn=clicked, inputs=[], outputs=[])
    return button


def pull_at_start(_demo, _app):
    """Optional pull when the WebUI starts: on a background thread, so start-up never waits."""
    url = str(option(OPT_REMOTE, "") or "").strip()
    if option(OPT_PULL_AT_START, False) and url:
        pull_in_background(url, ADAPTER.roots(), log=log_pull)


def log_pull(line):
    print(line, file=sys.stderr)
    ADAPTER.selector.invalidate()


# ---------------------------------------------------------------- API

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
    roots = ADAPTER.roots()
    return {"registries": roots, "schedules": [schedule_summary(s) for s in ADAPTER.selector.registries(roots).schedules()]}


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


# ---------------------------------------------------------------- WebUI hooks

class AYSScript(scripts.Script):
    """Always on, no UI: tells the adapter which generation is running (for its infotext)."""

    def title(self):
        return "AYS"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        return []

    def process(self, p, *args):
        ADAPTER.begin(p)

    def postprocess(self, p, processed, *args):
        ADAPTER.end(p)


def at_startup(step, what):
    try:
        step()
    except Exception as exc:  # never break the WebUI's start-up
        warn(f"could not {what} ({type(exc).__name__}: {exc})")


at_startup(register, "add the AYS scheduler")
# Settings are added now as well as with the settings UI: under --nowebui there is no settings UI,
# and the WebUI refuses override_settings (API, pasted infotext) for keys it does not know.
at_startup(add_settings, "add the AYS settings")
script_callbacks.on_ui_settings(add_settings)
script_callbacks.on_app_started(add_api_routes)
script_callbacks.on_app_started(pull_at_start)
