"""Optimize a schedule for an already-loaded latent diffusion checkpoint, as one resumable job:
what the WebUI's "AYS" tab and its API routes run (scripts/ays_tab.py is the thin adapter).

A job lives in a folder: `job.json` (its settings and the checkpoint it is for, written before
it starts), the search's state file (written after every iteration), the log of KLUB and
validation curves, the finished schedule file and a plot. The latent cache keeps x0. So a job
that was stopped, crashed or cut by a WebUI restart resumes where it was, with the same result.

The caller supplies the denoiser (ays_core.models.ldm.LatentDiffusionDenoiser over the model it
already holds, no second copy) and `run_exclusive(fn)`, which runs fn while other generations
wait (the WebUI's queue lock). Nothing here imports a WebUI.
"""
import json
import threading
import time
import traceback
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from .errors import AYSError
from .fileio import atomic_write, parse_json
from .registry import dump_schedule, new_schedule_doc

JOB_FILE, STATE_FILE, LOG_FILE, RESULT_FILE, PLOT_FILE = "job.json", "state.json", "log.json", "schedule.json", "plot.png"
DATA_CHOICES = ("prompts", "images")
STATES = ("idle", "running", "stopping", "stopped", "failed", "done")


@dataclass
class JobSettings:
    """What the user chose in the tab (or posted to the API)."""

    data: str = "prompts"           # "prompts" (data-free) or "images"
    prompts: str = ""               # one prompt per line
    prompts_file: str = ""
    image_folder: str = ""
    steps: int = 10
    cfg_scale: float = 7.0
    samples: int = 1024             # x0 samples of the KLUB
    validation_samples: int = 64    # early stopping: samples compared with the many-step reference
    data_samples: int = 256         # latents to draw from the model or encode (at most)
    mode: str = "fast"
    solver: str = "dpmpp_2m"
    refine: int = 2
    resolution: int = 0             # 0: the model's native size
    seed: int = 0
    negative_prompt: str = ""
    publish: bool = True

    @classmethod
    def from_dict(cls, values):
        """Settings from untrusted input (API JSON, a job file): unknown keys and wrong types are refused."""
        if not isinstance(values, dict):
            raise AYSError("settings must be a JSON object")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise AYSError(f"unknown setting(s): {', '.join(unknown)}")
        clean = {}
        for key, value in values.items():
            kind = type(getattr(cls, key))
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if type(value) is not kind:
                raise AYSError(f"setting {key} must be a {kind.__name__}, got {value!r}")
            clean[key] = value
        settings = cls(**clean)
        settings.check()
        return settings

    def check(self):
        from .bench import get_sampler
        from .models.ldm import check_cfg_scale
        from .search import MODES

        if self.data not in DATA_CHOICES:
            raise AYSError(f"data must be one of {', '.join(DATA_CHOICES)}, got {self.data!r}")
        if self.data == "images" and not self.image_folder.strip():
            raise AYSError("choose an image folder (or data 'prompts')")
        if self.data == "prompts" and not (self.prompts.strip() or self.prompts_file.strip()):
            raise AYSError("give at least one prompt (or data 'images')")
        if self.mode not in MODES:
            raise AYSError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        get_sampler(self.solver)
        check_cfg_scale(self.cfg_scale)
        for name, low, high in (("steps", 2, 100), ("samples", 2, 1_000_000), ("data_samples", 1, 1_000_000),
                                ("validation_samples", 1, 100_000),
                                ("refine", 0, 4), ("seed", 0, 2 ** 31 - 1), ("resolution", 0, 4096)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise AYSError(f"{name} must be between {low} and {high}, got {value}")
        if self.resolution and (self.resolution % 8 or self.resolution < 64):
            raise AYSError(f"resolution must be 0 (native) or a multiple of 8 >= 64, got {self.resolution}")


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

    def __init__(self, folder, registry_roots):
        self.folder = Path(folder)
        self.registry_roots = list(registry_roots)
        self._lock = threading.Lock()
        self._thread = None
        self._stop = threading.Event()
        self._interrupted = lambda: False
        self._on_progress = None
        self._status = {"state": "idle", "message": "", "evaluations": 0, "expected_evaluations": None,
                        "phase": "", "result": None, "started_at": None}

    # -- what the UI and the API read
    def status(self):
        with self._lock:
            status = dict(self._status)
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
            settings = JobSettings.from_dict(saved["settings"])
        elif not isinstance(settings, JobSettings):
            settings = JobSettings.from_dict(settings)
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
        from . import search
        from .budget import count_evaluations, fit_rows, host_chunk_size
        from .data import images_bank, prompts_bank, read_prompts

        denoiser.cfg_scale = settings.cfg_scale
        denoiser.negative_prompt = settings.negative_prompt
        if settings.resolution:
            denoiser.set_resolution(settings.resolution)
        if denoiser.data_shape is None:
            raise AYSError("the latent size is unknown: set a resolution")
        self._set(message="", phase="measuring memory")
        denoiser.max_rows, _, _ = fit_rows(denoiser, denoiser.device)
        per_batch = max(1, denoiser.max_rows // denoiser.rows_per_sample)
        self._set(phase="preparing x0")
        cache = self.folder / "latents"

        def progress(done, total, what):
            self._set(phase=f"{what}: {done}/{total}")

        common = {"seed": settings.seed, "batch_size": per_batch, "cache_dir": cache, "should_stop": self._should_stop,
                  "on_progress": progress}
        if settings.data == "images":
            bank = images_bank(denoiser, settings.image_folder, resolution=denoiser.data_shape[1] * 8,
                               count=settings.data_samples, **common)
        else:
            prompts = read_prompts(settings.prompts, settings.prompts_file or None)
            bank = prompts_bank(denoiser, prompts, settings.data_samples, denoiser.data_shape, **common)
        defaults = search.optimize.__kwdefaults__
        expected = count_evaluations(steps=settings.steps, mode=settings.mode, samples=settings.samples,
                                     refine=settings.refine, early_stop=True, patience=defaults["patience"],
                                     max_iterations=defaults["max_iterations"], solver=settings.solver,
                                     validation_samples=settings.validation_samples,
                                     reference_steps=defaults["reference_steps"], grid_size=defaults["grid_size"])
        self._set(phase="optimizing", expected_evaluations=expected.low)
        denoiser.on_evaluate = self._count_evaluations
        result = search.optimize(denoiser, settings.steps, x0=bank, mode=settings.mode, solver=settings.solver,
                                 samples=settings.samples, seed=settings.seed, refine=settings.refine,
                                 validation_samples=settings.validation_samples, state_path=self.folder / STATE_FILE, resume=resume,
                                 progress=False, device=denoiser.device, max_batch=per_batch,
                                 chunk_size=host_chunk_size(defaults["grid_size"], int(np.prod(denoiser.data_shape)),
                                                            settings.samples))
        return self._finish(denoiser, settings, bank, result)

    def _count_evaluations(self, count):
        from .data import StopRequested

        if self._should_stop():
            raise StopRequested()
        with self._lock:
            self._status["evaluations"] += count
            done, expected = self._status["evaluations"], self._status["expected_evaluations"]
        if self._on_progress is not None:
            self._on_progress(done, expected)

    def _finish(self, denoiser, settings, bank, result):
        from .registry import RegistrySet

        info = denoiser.model_info
        schedule_id = f"{info['family']}-{info['sha256'][:10]}"
        doc = new_schedule_doc(
            schedule_id, result.sigmas, family=info["family"], prediction=info["prediction"], source="optimized",
            solver=settings.solver, samples=settings.samples, data=bank.description, sha256=info["sha256"],
            name=info.get("name"),
            settings={"mode": settings.mode, "seed": settings.seed, "steps": settings.steps, "refine": settings.refine,
                      "cfg_scale": settings.cfg_scale, "best_iteration": result.best_iteration, "klub": result.klub,
                      "denoiser_evaluations": result.evaluations, "made_with": "WebUI AYS tab"})
        atomic_write(self.folder / RESULT_FILE, dump_schedule(doc))
        atomic_write(self.folder / LOG_FILE, (json.dumps({"settings": result.settings, "history": result.history},
                                                         indent=1) + "\n").encode())
        plot = plot_against_baselines(doc, settings.steps, self.registry_roots, self.folder / PLOT_FILE)
        published = RegistrySet(self.registry_roots).publish(doc) if settings.publish else None
        where = f"published as {published.ref} ({published.path})" if published else f"saved to {self.folder / RESULT_FILE} (not published)"
        return {"message": f"done: {len(result.sigmas) - 1}-step schedule, {where}",
                "ref": published.ref if published else None, "path": str(published.path if published else self.folder / RESULT_FILE),
                "plot": str(plot) if plot else None, "sigmas": [float(s) for s in result.sigmas]}

    # -- bookkeeping
    def _should_stop(self):
        return self._stop.is_set() or bool(self._interrupted())

    def _set(self, **values):
        with self._lock:
            self._status.update(values)

    def _save_job(self, settings, info, state):
        self.folder.mkdir(parents=True, exist_ok=True)
        doc = {"settings": asdict(settings), "state": state,
               "checkpoint": {"sha256": info.get("sha256"), "name": info.get("name"), "family": info.get("family")}}
        atomic_write(self.folder / JOB_FILE, (json.dumps(doc, indent=1) + "\n").encode())


def plot_against_baselines(doc, steps, registry_roots, path):
    """The new schedule at `steps` steps beside the family's stored schedule and karras (rho 7),
    all over the model's range; returns the PNG path (None when matplotlib cannot draw)."""
    from .baselines import karras
    from .interp import resample
    from .plots import plot_schedules
    from .registry import RegistrySet

    model = doc["model"]
    lo, hi = model["sigma_min"], model["sigma_max"]
    curves = {f"new ({doc['id']})": resample(doc["sigmas"], steps)}
    family = RegistrySet(registry_roots).find(family=model["family"])
    if family is not None:
        curves[f"family ({family.ref})"] = family.resample(steps, sigma_min=lo, sigma_max=hi)
    curves["karras (rho 7)"] = karras(steps, lo, hi)
    try:
        return plot_schedules(curves, path, title=f"{steps}-step schedules for {model.get('name', model['family'])}")
    except Exception as exc:  # a plot is a nicety; the schedule is already made
        print(f"AYS: could not draw the schedule plot ({type(exc).__name__}: {exc})")
        return None
