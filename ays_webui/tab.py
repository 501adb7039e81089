"""The "AYS" tab of the Stable Diffusion WebUI (AUTOMATIC1111 1.x, Forge): optimize a schedule for
the loaded checkpoint, and the same as API routes under /ays/v1/optimize.

A thin adapter over ays_core.tune.Job: the WebUI's loaded model (shared.sd_model, no second copy)
is wrapped by ays_core.models.ldm, with k-diffusion's CompVis wrappers in AUTOMATIC1111 and
through Forge's own UNet model (forge_objects.unet.model, kept on the GPU by Forge's memory
manager) in Forge; the job runs in a
background thread holding the WebUI's queue lock (modules.call_queue.queue_lock), so other
generations wait, and shared.state shows it busy. Stop (the tab's button, the API, or the WebUI's
Interrupt) ends it after the current batch; its state stays in the job folder, so "Resume"
continues it, also after a restart. When it finishes, the schedule is published to the first
AYS registry folder (setting "ays_registry_dirs", else $AYS_REGISTRY, else models/ays-registry), keyed
by the checkpoint's sha256, and the scheduler "AYS" picks it for this checkpoint.
Routes: POST /ays/v1/optimize (JSON settings) starts, GET /ays/v1/optimize reports,
POST /ays/v1/optimize/stop stops, POST /ays/v1/optimize/resume resumes; mounted with the WebUI's
API and behind its --api-auth (ays_core.webapi). Prompts files and image folders, from the tab or
the API, are read only inside the folders the owner allowed in Settings > AYS (none by default).
"""
import os

from ays_core.errors import AYSError, SettingError
from ays_core.settings import WEBUI_DEFAULTS, RunSettings
from ays_core.tune import DATA_CHOICES, check_readable, job_for, readable_folders, request_settings
from ays_core.webapi import Routes, as_http_error
from modules import shared

from .common import OPT_READABLE, option, roots

EXTENSION_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOB_FOLDER = os.path.join(EXTENSION_ROOT, "optimize-job")
NATIVE_PIXELS = {"sd15": 512, "sd2": 512, "sd2-v": 768, "sdxl": 1024, "sdxl-v": 1024}
JOB = job_for(JOB_FOLDER)  # one per process: "Reload UI" keeps a running job in reach
# The form's labels, by the setting each sets: the tab's messages call settings by these.
LABELS = {"prompts": "Prompts (one per line)",
          "prompts_file": "or a prompts file (inside a folder allowed in Settings > AYS)",
          "image_folder": "Image folder (inside a folder allowed in Settings > AYS)",
          "data_search_passes": "Passes of the search on the images (0: none; each pass adds time)",
          "steps": "Steps of the optimized stage", "cfg_scale": "CFG scale",
          "samples": "Sample budget (x0 samples of the KLUB)", "data_samples": "Latents to draw or encode",
          "mode": "Mode", "solver": "Solver the schedule is for", "resolution": "Resolution (0: the model's native)",
          "publish": "Publish to the registry when done"}
QUOTED_LABELS = {field: f'"{label}"' for field, label in LABELS.items()}


# ---------------------------------------------------------------- the WebUI side of a job

def loaded_checkpoint():
    """(sha256, name) of the loaded checkpoint; asks the WebUI to hash it when it has not yet."""
    info = getattr(shared.sd_model, "sd_checkpoint_info", None)
    if info is None:
        return None, None
    if not getattr(info, "sha256", None) and hasattr(info, "calculate_shorthash"):
        info.calculate_shorthash()  # A1111 computes (and caches) the full sha256 here
    return getattr(info, "sha256", None), getattr(info, "name", None) or getattr(info, "filename", None)


def load_forge_model():
    """Forge loads the selected checkpoint when a generation first needs it; do the same (under the
    queue lock, as a generation would). AUTOMATIC1111 has no such step."""
    from modules import sd_models

    reload = getattr(sd_models, "forge_model_reload", None)
    if reload is not None:
        from modules.call_queue import queue_lock

        with queue_lock:
            reload()


def loaded_denoiser():
    """The loaded model behind the denoiser contract (the same object: no copy in memory)."""
    from ays_core.models.ldm import LatentDiffusionDenoiser

    load_forge_model()
    if shared.sd_model is None:
        raise AYSError("no checkpoint is loaded")
    sha256, name = loaded_checkpoint()
    denoiser = LatentDiffusionDenoiser(shared.sd_model, info={"sha256": sha256, "name": str(name)[:256]})
    denoiser.set_resolution(NATIVE_PIXELS.get(denoiser.model_info["family"], 512))
    keep_forge_unet_loaded(denoiser)
    return denoiser


def keep_forge_unet_loaded(denoiser):
    """Forge: its memory manager loads the UNet onto the compute device before each call (encoding
    prompts may have moved it off); a no-op when it is there already."""
    from ays_core.models.ldm import ForgeUNet

    if isinstance(denoiser.wrapped, ForgeUNet):
        from backend import memory_management

        unet_patcher = shared.sd_model.forge_objects.unet
        denoiser.wrapped.before_forward = lambda: memory_management.load_models_gpu([unet_patcher])


def run_exclusive(work):
    """Run `work` the way a generation runs: under the queue lock, with shared.state busy."""
    from modules.call_queue import queue_lock

    with queue_lock:
        shared.state.begin(job="ays_optimize")
        try:
            shared.state.textinfo = "AYS: optimizing a schedule"
            return work()
        finally:
            shared.state.end()


def show_progress(evaluations, expected):
    """The WebUI's own progress fields (console, /internal/progress, the live progress bar)."""
    shared.state.sampling_steps = max(int(expected or 0), evaluations)
    shared.state.sampling_step = evaluations
    shared.state.textinfo = f"AYS: {evaluations:,} of about {shared.state.sampling_steps:,} denoiser evaluations"


def start(settings, resume=False):
    JOB.registry_roots = roots()
    JOB.readable = readable_folders(option(OPT_READABLE, ""))
    if not resume:  # a bad request is refused before any model is touched
        settings = request_settings(settings)
        check_readable(settings, JOB.readable)
    JOB.start(loaded_denoiser(), settings, run_exclusive, resume=resume,
              interrupted=lambda: bool(getattr(shared.state, "interrupted", False)), on_progress=show_progress)
    return JOB.status()


# ---------------------------------------------------------------- API

def api_start(settings):
    """POST /ays/v1/optimize: start an optimization for the loaded checkpoint (JSON settings)."""
    return as_http_error(lambda: start(settings))


def api_resume(_body):
    """POST /ays/v1/optimize/resume: continue the stopped optimization."""
    return as_http_error(lambda: start(None, resume=True))


def api_status():
    """GET /ays/v1/optimize: state, message, progress, KLUB curve, result."""
    return JOB.status()


def api_stop(_body):
    """POST /ays/v1/optimize/stop: stop after the current batch (progress is kept)."""
    JOB.stop()
    return JOB.status()


def add_api_routes(_demo, app):
    routes = Routes(app, shared.cmd_opts)
    routes.post("/ays/v1/optimize", api_start)
    routes.get("/ays/v1/optimize", api_status)
    routes.post("/ays/v1/optimize/stop", api_stop)
    routes.post("/ays/v1/optimize/resume", api_resume)


# ---------------------------------------------------------------- the tab

def checkpoint_text():
    sha256, name = loaded_checkpoint() if shared.sd_model is not None else (None, None)
    if name is None:
        selected = getattr(shared.opts, "sd_model_checkpoint", None)  # Forge loads it on first use
        return f"Checkpoint **{selected}** is selected; it is loaded when a job starts." if selected else \
            "No checkpoint loaded."
    return f"Loaded checkpoint: **{name}** (sha256 {sha256[:10] if sha256 else 'not computed yet'})"


def status_text(status):
    lines = [f"State: {status['state']}" + (f" ({status['phase']})" if status.get("phase") else "")]
    if status.get("message"):
        lines.append(status["message"])
    if status.get("evaluations"):
        expected = status.get("expected_evaluations")
        lines.append(f"denoiser evaluations: {status['evaluations']:,}" + (f" (about {expected:,} expected)" if expected else ""))
    if status.get("resumable"):
        lines.append("A stopped optimization can be resumed.")
    return "\n".join(lines)


def klub_figure(history):
    """The KLUB curve (log scale) over the iterations so far, or None before the first one."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3))
    axis.plot([h["klub"] for h in history], marker="o", markersize=3)
    axis.set_yscale("log")
    axis.set_xlabel("iteration")
    axis.set_ylabel("KLUB")
    axis.grid(True, alpha=0.3)
    figure.tight_layout()
    plt.close(figure)
    return figure


def refresh():
    status = JOB.status(names=QUOTED_LABELS)
    result = status.get("result") or {}
    return checkpoint_text(), status_text(status), klub_figure(status["history"]), result.get("plot")


def _number(value, field, kind):
    """A number field of the form; a cleared one (None) is told, not a traceback."""
    if value is None:
        raise SettingError(lambda n: f"{n} is empty; give a number", field)
    return kind(value)


def on_start(data, prompts, prompts_file, image_folder, data_search_passes, steps, cfg_scale, samples, data_samples,
             mode, solver, resolution, publish):
    def form():
        return {"data": data, "prompts": prompts or "", "prompts_file": prompts_file or "",
                "image_folder": image_folder or "",
                "data_search_passes": _number(data_search_passes, "data_search_passes", int),
                "steps": _number(steps, "steps", int),
                "cfg_scale": _number(cfg_scale, "cfg_scale", float), "samples": _number(samples, "samples", int),
                "data_samples": _number(data_samples, "data_samples", int), "mode": mode, "solver": solver,
                "resolution": int(resolution or 0), "publish": bool(publish)}
    return _ui_action(lambda: start(form()))


def on_resume():
    return _ui_action(lambda: start(None, resume=True))


def on_stop():
    JOB.stop()
    return refresh()


def _ui_action(action):
    try:
        action()
    except AYSError as exc:
        texts = refresh()
        return (texts[0], f"{texts[1]}\nError: {exc.named(QUOTED_LABELS)}", *texts[2:])
    return refresh()


def on_ui_tabs():
    import gradio as gr

    from ays_core.samplers import SAMPLERS
    from ays_core.settings import MODES

    defaults = RunSettings(**WEBUI_DEFAULTS)
    with gr.Blocks(analytics_enabled=False) as tab:
        checkpoint = gr.Markdown(value=checkpoint_text())
        with gr.Row():
            with gr.Column():
                data = gr.Radio(choices=list(DATA_CHOICES), value=DATA_CHOICES[0], label="x0 data",
                                info="prompts: drawn from the model itself; images: a folder (+ caption .txt files)")
                prompts = gr.Textbox(label=LABELS["prompts"], lines=4)
                prompts_file = gr.Textbox(label=LABELS["prompts_file"])
                image_folder = gr.Textbox(label=LABELS["image_folder"])
                data_search_passes = gr.Number(value=defaults.data_search_passes, precision=0,
                                               label=LABELS["data_search_passes"])
                steps = gr.Slider(minimum=2, maximum=40, value=defaults.steps, step=1, label=LABELS["steps"])
                cfg_scale = gr.Slider(minimum=1.0, maximum=30.0, value=defaults.cfg_scale, step=0.5, label=LABELS["cfg_scale"])
                samples = gr.Number(value=defaults.samples, precision=0, label=LABELS["samples"])
                data_samples = gr.Number(value=defaults.data_samples, precision=0, label=LABELS["data_samples"])
                mode = gr.Radio(choices=list(MODES), value=defaults.mode, label=LABELS["mode"])
                solver = gr.Dropdown(choices=sorted(SAMPLERS), value=defaults.solver, label=LABELS["solver"])
                resolution = gr.Number(value=defaults.resolution, precision=0, label=LABELS["resolution"])
                publish = gr.Checkbox(value=defaults.publish, label=LABELS["publish"])
                with gr.Row():
                    start_button = gr.Button(value="Start", variant="primary")
                    stop_button = gr.Button(value="Stop")
                    resume_button = gr.Button(value="Resume")
                    refresh_button = gr.Button(value="Refresh")
            with gr.Column():
                status = gr.Textbox(label="Status", lines=5, interactive=False)
                curve = gr.Plot(label="KLUB")
                schedule_plot = gr.Image(label="New schedule vs family schedule and karras", type="filepath")
        outputs = [checkpoint, status, curve, schedule_plot]
        inputs = [data, prompts, prompts_file, image_folder, data_search_passes, steps, cfg_scale, samples, data_samples,
                  mode, solver, resolution, publish]
        start_button.click(on_start, inputs=inputs, outputs=outputs)
        stop_button.click(on_stop, outputs=outputs)
        resume_button.click(on_resume, outputs=outputs)
        refresh_button.click(refresh, outputs=outputs)
        try:
            tab.load(refresh, outputs=outputs, every=2)  # live progress while the tab is open
        except TypeError:  # a Gradio without `every`: the Refresh button remains
            tab.load(refresh, outputs=outputs)
    return [(tab, "AYS", "ays_optimize")]

