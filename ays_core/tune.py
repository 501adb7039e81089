"""Optimize a schedule for an already-loaded latent diffusion checkpoint, as one resumable job:
what the WebUI's "AYS" tab and its API routes run (ays_webui/tab.py is the thin adapter).

A job lives in a folder: `job.json` (its settings and the checkpoint it is for, written before
it starts), the search's state file (written after every iteration), the log of KLUB and
validation curves, the finished schedule file and a plot. The latent cache keeps x0. So a job
that was stopped, crashed or cut by a WebUI restart resumes where it was, with the same result.

The caller supplies the denoiser (ays_core.models.ldm.LatentDiffusionDenoiser over the model it
already holds, no second copy) and `run_exclusive(fn)`, which runs fn while other generations
wait (the WebUI's queue lock). Nothing here imports a WebUI.
"""
import json
import os
import threading
import time
import traceback
from pathlib import Path

from .errors import AYSError, SettingError
from .fileio import atomic_write, parse_json
from .plots import plot_against_baselines
from .settings import WEBUI_DEFAULTS, RunSettings

JOB_FILE, STATE_FILE, LOG_FILE, RESULT_FILE, PLOT_FILE = "job.json", "state.json", "log.json", "schedule.json", "plot.png"
DATA_CHOICES = ("prompts", "images")
STATES = ("idle", "running", "stopping", "stopped", "failed", "done")


# What the tab and the API may set (the rest keeps RunSettings' and WEBUI_DEFAULTS' values: a
# request must not choose where files are written, say).
REQUEST_FIELDS = ("prompts", "prompts_file", "image_folder", "steps", "cfg_scale", "samples", "validation_samples",
                  "data_samples", "mode", "solver", "refine", "resolution", "seed", "negative_prompt", "publish",
                  "data_search_passes")
# What one request may ask for (a job holds the WebUI's queue lock while it runs; docs/WEBUI.md documents
# these): the paper's coarse-to-fine ends at 40 steps (10 -> 20 -> 40, refine 2) with 8,192 samples.
REQUEST_LIMITS = (("steps", 2, 40), ("samples", 2, 16_384), ("data_samples", 1, 8_192),
                  ("validation_samples", 1, 1_024), ("refine", 0, 2), ("resolution", 0, 2_048),
                  ("data_search_passes", 0, 4))


def request_settings(values):
    """The RunSettings of a tab or API request (untrusted JSON): REQUEST_FIELDS over the WebUI
    defaults, plus `data`, which of the x0 sources ("prompts" or "images") to use."""
    if not isinstance(values, dict):
        raise AYSError("settings must be a JSON object")
    values = dict(values)
    data = values.pop("data", "prompts")
    if data not in DATA_CHOICES:
        raise AYSError(f"data must be one of {', '.join(DATA_CHOICES)}, got {data!r}")
    unknown = sorted(set(values) - set(REQUEST_FIELDS))
    if unknown:
        raise AYSError(f"unknown setting(s): {', '.join(map(str, unknown))}")
    unused = ("prompts", "prompts_file") if data == "images" else ("image_folder",)
    for name, low, high in REQUEST_LIMITS:  # a number past these is told this range, not RunSettings' wider one
        value = values.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not low <= value <= high:
            raise SettingError(lambda n, v=value, lo=low, hi=high: f"{n} must be between {lo} and {hi} here, got {v}",
                               name)
    settings = RunSettings.from_dict({k: v for k, v in values.items() if k not in unused}, base=WEBUI_DEFAULTS)
    if data == "images" and not settings.image_folder.strip():
        raise AYSError("choose an image folder (or data 'prompts')")
    if data == "prompts" and not settings.data_free:
        raise AYSError("give at least one prompt (or data 'images')")
    return settings


def readable_folders(setting):
    """The owner's allow-list (folders separated by ';') as resolved paths; empty: none."""
    return [Path(os.path.realpath(os.path.expanduser(part.strip()))) for part in str(setting or "").split(";")
            if part.strip()]


def server_paths(settings):
    """(what, path) of every server file or folder a run with these settings reads."""
    if settings.image_folder.strip():
        return [("image folder", settings.image_folder.strip())]
    return [("prompts file", settings.prompts_file.strip())] if settings.prompts_file.strip() else []


def check_readable(settings, folders):
    """AYSError unless every server path in `settings` lies inside one of `folders` (after
    following links). The message never tells whether the path exists."""
    from .data import is_within

    for what, path in server_paths(settings):
        if not folders:
            raise AYSError(f"{what}: reading server files is off; send the prompts inline, or let the WebUI's "
                           "owner add a folder to 'Folders the AYS tab and API may read' (Settings > AYS)")
        if not is_within(os.path.expanduser(path), folders):
            raise AYSError(f"{what} {path[:200]} is not inside a folder allowed in Settings > AYS")


_JOBS = {}


def job_for(folder):
    """The one Job of a folder for the whole process: the WebUI's "Reload UI" re-runs the tab
    script, and the new script must see (and be able to stop) a job the old one started."""
    key = str(Path(folder).resolve())
    if key not in _JOBS:
        _JOBS[key] = Job(folder, [])
    return _JOBS[key]


class Job:
    """One optimization at a time for the checkpoint the caller holds; status() is safe to poll."""

    def __init__(self, folder, registry_roots, readable=()):
        self.folder = Path(folder)
        self.registry_roots = list(registry_roots)
        self.readable = list(readable)  # resolved folders the job may read files from (readable_folders)
        self._lock = threading.Lock()
        self._thread = None
        self._stop = threading.Event()
        self._interrupted = lambda: False
        self._on_progress = None
        self._status = {"state": "idle", "message": "", "evaluations": 0, "expected_evaluations": None,
                        "phase": "", "result": None, "started_at": None}
        self._error = None  # the AYSError a failed run ended with, worded per front end by status()

    # -- what the UI and the API read
    def status(self, names=None):
        """The job's state for the UI and the API; `names` ({field: name}) words a failed run's
        setting errors as that front end calls its settings (the API's are the field names)."""
        with self._lock:
            status, error = dict(self._status), self._error
        if names and error is not None and status["state"] == "failed":
            status["message"] = error.named(names)
        status["history"] = self.history()
        saved = self.saved_job()
        status["resumable"] = bool(saved) and status["state"] not in ("running", "stopping") and \
            saved.get("state") in ("running", "stopped")
        return status

    def history(self):
        """KLUB / validation per iteration so far (from the state file the search writes)."""
        for name in (STATE_FILE, LOG_FILE):
            path = self.folder / name
            try:
                doc = parse_json(path.read_bytes(), what=str(path), limit=64 << 20)
            except (OSError, AYSError):
                continue
            history = doc.get("history") if isinstance(doc, dict) else None
            if isinstance(history, list):
                return [{"stage": h.get("stage"), "steps": h.get("steps"), "iteration": h.get("iteration"),
                         "klub": h.get("klub"), "validation": h.get("validation")} for h in history
                        if isinstance(h, dict)]
        return []

    def saved_job(self):
        try:
            return parse_json((self.folder / JOB_FILE).read_bytes(), what="job file")
        except (OSError, AYSError):
            return None

    @property
    def running(self):
        return self._thread is not None and self._thread.is_alive()

    # -- control
    def start(self, denoiser, settings, run_exclusive, resume=False, interrupted=None, on_progress=None):
        """Start (or with resume=True continue the saved job) in a background thread.
        `interrupted()`, when given, is a second stop signal (the WebUI's Interrupt button);
        `on_progress(evaluations, expected)` hears of every denoiser call (the WebUI's progress)."""
        if self.running:
            raise AYSError("an AYS optimization is already running; stop it first")
        info = dict(denoiser.model_info)
        if resume:
            saved = self.saved_job()
            if not saved:
                raise AYSError("there is no stopped optimization to resume")
            if saved.get("checkpoint", {}).get("sha256") != info.get("sha256"):
                raise AYSError("the stopped optimization was for another checkpoint: load "
                               f"{saved.get('checkpoint', {}).get('name', 'it')} to resume it")
            saved_settings = saved.get("settings")
            # a job file of the version before RunSettings holds the request itself (with "data")
            old_request = isinstance(saved_settings, dict) and "data" in saved_settings
            settings = request_settings(saved_settings) if old_request else RunSettings.from_dict(saved_settings)
        elif not isinstance(settings, RunSettings):
            settings = request_settings(settings)
        check_readable(settings, self.readable)
        if not info.get("sha256"):
            raise AYSError("the loaded checkpoint has no sha256 yet (the WebUI computes it on first use); "
                           "its schedule could not be keyed to it")
        self.folder.mkdir(parents=True, exist_ok=True)
        if not resume:
            for name in (STATE_FILE, LOG_FILE, RESULT_FILE, PLOT_FILE):
                (self.folder / name).unlink(missing_ok=True)
        self._save_job(settings, info, "running")
        self._stop.clear()
        self._interrupted = interrupted or (lambda: False)
        self._on_progress = on_progress
        self._error = None
        self._set(state="running", message="waiting for the GPU (other generations finish first)",
                  evaluations=0, result=None, started_at=time.time(), phase="queued")
        self._thread = threading.Thread(target=self._run, args=(denoiser, settings, run_exclusive, resume),
                                        name="ays-optimize", daemon=True)
        self._thread.start()

    def stop(self):
        """Ask the job to stop at the next denoiser call; its progress is kept for resume."""
        if not self.running:
            return False
        self._stop.set()
        self._set(state="stopping", message="stopping after the current batch")
        return True

    def wait(self, timeout=None):
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    # -- the work
    def _run(self, denoiser, settings, run_exclusive, resume):
        from .data import StopRequested

        try:
            result = run_exclusive(lambda: self._optimize(denoiser, settings, resume))
        except StopRequested:
            self._save_job(settings, denoiser.model_info, "stopped")
            self._set(state="stopped", message="stopped; resume continues where it was", phase="")
        except AYSError as exc:
            self._save_job(settings, denoiser.model_info, "failed")
            self._error = exc
            self._set(state="failed", message=str(exc), phase="")
        except Exception as exc:  # the WebUI must keep running: report, never raise from the thread
            traceback.print_exc()
            self._save_job(settings, denoiser.model_info, "stopped")
            self._set(state="failed", message=f"{type(exc).__name__}: {exc} (resume continues from the last iteration)",
                      phase="")
        else:
            self._save_job(settings, denoiser.model_info, "done")
            self._set(state="done", message=result["message"], result=result, phase="")
        finally:
            denoiser.on_evaluate = None

    def _optimize(self, denoiser, settings, resume):
        from . import pipeline

        def data_progress(done, total, what):
            self._set(phase=f"{what}: {done}/{total}")

        self._set(message="")
        hooks = pipeline.Hooks(phase=lambda phase: self._set(phase=phase),
                               searching=lambda expected: self._set(expected_evaluations=expected),
                               data_progress=data_progress, should_stop=self._should_stop,
                               on_evaluate=self._count_evaluations, progress=False)
        outputs = pipeline.Outputs(self.folder / RESULT_FILE, self.folder / STATE_FILE, self.folder / LOG_FILE)
        settings = settings.replace(cache_dir=str(self.folder / "latents"))
        outcome = pipeline.run(denoiser, settings, outputs, registry_roots=self.registry_roots, resume=resume,
                               device=denoiser.device, hooks=hooks, provenance={"made_with": "WebUI AYS tab"},
                               readable=self.readable)
        return self._finish(outcome, settings)

    def _count_evaluations(self, count):
        from .data import StopRequested

        if self._should_stop():
            raise StopRequested()
        with self._lock:
            self._status["evaluations"] += count
            done, expected = self._status["evaluations"], self._status["expected_evaluations"]
        if self._on_progress is not None:
            self._on_progress(done, expected)

    def _finish(self, outcome, settings):
        doc, published = outcome.document, outcome.published
        plot = plot_against_baselines(doc, settings.steps, self.registry_roots, self.folder / PLOT_FILE)
        path = published.path if published else outcome.outputs.schedule
        where = f"published as {published.ref} ({path})" if published else f"saved to {path} (not published)"
        said = [f"done: {len(outcome.result.sigmas) - 1}-step schedule, {where}"]
        said += [t["summary"] for t in (outcome.result.tuned or {}).values()]  # which candidate won, per step count
        return {"message": "; ".join(said),
                "ref": published.ref if published else None, "path": str(path),
                "plot": str(plot) if plot else None, "sigmas": [float(s) for s in outcome.result.sigmas]}

    # -- bookkeeping
    def _should_stop(self):
        return self._stop.is_set() or bool(self._interrupted())

    def _set(self, **values):
        with self._lock:
            self._status.update(values)

    def _save_job(self, settings, info, state):
        self.folder.mkdir(parents=True, exist_ok=True)
        doc = {"settings": settings.as_dict(), "state": state,
               "checkpoint": {"sha256": info.get("sha256"), "name": info.get("name"), "family": info.get("family")}}
        atomic_write(self.folder / JOB_FILE, (json.dumps(doc, indent=1) + "\n").encode())
