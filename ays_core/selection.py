"""Which stored schedule a model gets: pinned id, then the checkpoint's own, then its family's.

Pure logic for adapters such as the WebUI extension, which describe the loaded model with a
`ModelInfo` and ask a `Selector` for a `Choice`. Nothing here imports a WebUI.

Rules (in order):
1. A pin ('sdxl', 'sdxl@v2') names the schedule; a pin that does not resolve is reported in the
   warning and the automatic choice is used instead.
2. A schedule published for the checkpoint (sha256, else the WebUI's 10-digit shorthash).
3. The family's generic schedule, trying '<family>-v' first for v-prediction models, then the
   family's relatives (FAMILY_FALLBACKS), then DEFAULT_FAMILY. Anything but an exact family and
   prediction match carries a warning: a schedule is never silently applied to a model it was
   not made for. Callers rescale it to the model's own sigma range (interp.resample does).
4. If no registry yields a usable schedule, the paper's SD1.5/SDXL schedules built in here
   (the same values as the shipped sd15@v1 and sdxl@v1), with a warning.
"""
import os
import time
from dataclasses import dataclass
from typing import Optional

from .errors import AYSError
from .registry import REGISTRY_ENV, SHIPPED_REGISTRY, RegistrySet, Schedule, default_registry, parse_ref

# Relatives tried, in order, when a family has no schedule of its own. SD2 shares SD1's noise
# table, so SD1.5's schedule covers the same range; the others fall through to DEFAULT_FAMILY.
FAMILY_FALLBACKS = {"sd2-v": ("sd2", "sd15"), "sd2": ("sd15",), "sdxl-v": ("sdxl",)}
DEFAULT_FAMILY = "sd15"


@dataclass(frozen=True)
class ModelInfo:
    """What an adapter knows about the loaded model; every field may be unknown (None)."""

    family: Optional[str] = None       # registry family id: 'sd15', 'sd2', 'sd2-v', 'sdxl', ...
    prediction: Optional[str] = None   # 'eps', 'v', 'edm', 'flow', ...
    sha256: Optional[str] = None
    shorthash: Optional[str] = None
    name: Optional[str] = None         # for messages only

    def describe(self):
        kind = self.family or "unknown family"
        if self.prediction and self.prediction != "eps":
            kind += f", {self.prediction}-prediction"
        return f"{self.name} ({kind})" if self.name else kind


@dataclass(frozen=True)
class Choice:
    schedule: Schedule
    how: str                        # 'pinned', 'checkpoint', 'family', 'fallback' or 'builtin'
    warning: Optional[str] = None

    @property
    def ref(self):
        return self.schedule.ref


def registry_roots(folders="", own=None):
    """Registry folders to search, in order: the user's (a ';'- or newline-separated string or a
    list), then $AYS_REGISTRY if set, then `own` (the WebUI extension's registry, userdirs.webui_registry;
    default: the per-user one `ays` uses), then the shipped registry. Pulls and publishes write to the first."""
    if isinstance(folders, str):
        folders = folders.replace("\n", ";").split(";")
    roots = [os.path.abspath(os.path.expanduser(f.strip())) for f in folders if f and f.strip()]
    if os.environ.get(REGISTRY_ENV):
        roots.append(os.path.abspath(os.environ[REGISTRY_ENV]))
    roots += [os.path.abspath(own or default_registry()), str(SHIPPED_REGISTRY)]
    return list(dict.fromkeys(roots))


def normalize_pin(value):
    """A pin setting's value as 'id' / 'id@vN', or None for automatic ('', 'Automatic', 'none')."""
    value = (value or "").strip()
    return None if value.lower() in ("", "automatic", "auto", "none") else value


def family_candidates(model):
    """Family ids to try for `model`, best first, ending with DEFAULT_FAMILY."""
    names = []
    if model.family:
        if model.prediction == "v" and not model.family.endswith("-v"):
            names.append(model.family + "-v")
        names.append(model.family)
        names.extend(FAMILY_FALLBACKS.get(model.family, ()))
    names.append(DEFAULT_FAMILY)
    return list(dict.fromkeys(names))


def fits(schedule, model):
    """Whether `schedule` was made for this kind of model (family and prediction both match)."""
    made_for = schedule.model
    family_ok = made_for["family"] in (model.family, f"{model.family}-v")
    prediction_ok = model.prediction is None or made_for["prediction"] == model.prediction
    return family_ok and prediction_ok


def mismatch_warning(schedule, model):
    made_for = schedule.model
    problem = (f"no AYS schedule for {model.describe()} in the registry" if model.family
               else f"cannot tell the family of the loaded model {model.name or ''}".rstrip())
    return (f"{problem}; using {schedule.ref} (made for {made_for['family']}, {made_for['prediction']}-prediction), "
            f"rescaled to the model's sigma range")


def choose_automatic(registries, model):
    """The checkpoint's own schedule, else the best family schedule (see module docstring)."""
    if model.sha256 or model.shorthash:
        found = registries.find(sha256=model.sha256, shorthash=model.shorthash)
        if found is not None:
            return Choice(found, "checkpoint")
    for family in family_candidates(model):
        found = registries.find(family=family)
        if found is not None:
            if fits(found, model):
                return Choice(found, "family")
            return Choice(found, "fallback", mismatch_warning(found, model))
    fallback = builtin_schedule(model)
    return Choice(fallback, "builtin", f"no usable schedule in the AYS registry; using the built-in {fallback.ref}")


def choose_schedule(registries, model, pin=None):
    """The Choice for `model`; `pin` ('id' or 'id@vN', '' for none) overrides the lookup."""
    if pin:
        try:
            schedule_id, version = parse_ref(pin)
            return Choice(registries.get(schedule_id, version), "pinned")
        except AYSError as exc:
            choice = choose_automatic(registries, model)
            note = f"pinned schedule {pin!r} unavailable ({exc}); using {choice.ref} instead"
            return Choice(choice.schedule, choice.how, note if not choice.warning else f"{note}; {choice.warning}")
    return choose_automatic(registries, model)


# ---------------------------------------------------------------- last resort

# The paper's published schedules as stored in the shipped registry (sd15@v2, sdxl@v2): used only
# when no registry folder can be read, so a broken install still samples with the right family.
_BUILTIN_SIGMAS = {
    "sd15": [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029],
    "sdxl": [14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029],
}


def builtin_schedule(model):
    family = "sdxl" if model.family in ("sdxl", "sdxl-v") else "sd15"
    sigmas = _BUILTIN_SIGMAS[family]
    doc = {"id": family, "version": 2, "sigmas": sigmas,
           "model": {"family": family, "prediction": "eps", "sigma_min": sigmas[-1], "sigma_max": sigmas[0]}}
    return Schedule(doc)


# ---------------------------------------------------------------- caching

def folder_stamp(roots):
    """What changes whenever a schedule is added to one of `roots`: the modification times of the
    folder, its index.json and each id folder, and the file names in each id folder (file
    systems keep times in clock ticks of a few ms, so two publishes within one tick leave the
    times as they were). A few stat and listdir calls, cheap enough per request."""
    stamp = []
    for root in roots:
        try:
            stamp.append((root, os.stat(root).st_mtime_ns))
            with os.scandir(root) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    if entry.name == "index.json":
                        stamp.append((entry.path, entry.stat().st_mtime_ns))
                    elif entry.is_dir():
                        stamp.append((entry.path, entry.stat().st_mtime_ns, tuple(sorted(os.listdir(entry.path)))))
        except OSError:
            stamp.append((root, None))
    return tuple(stamp)


def readable_folder(path):
    return os.path.isdir(path) and os.access(path, os.R_OK | os.X_OK)


class Selector:
    """Chooses schedules with the registries read once and cached.

    The cache is keyed by the registry folders, the model and the pin, and dropped when a folder
    changes: checked on every request by default (folder_stamp, ~20 us for the shipped
    registry), or at most every `recheck_s` seconds where stat calls are slow."""

    def __init__(self, recheck_s=0.0):
        self.recheck_s = recheck_s
        self._roots = None
        self._stamp = None
        self._checked_at = float("-inf")
        self._registries = None
        self._choices = {}

    def choose(self, roots, model, pin=None):
        self._refresh(tuple(str(r) for r in roots))
        key = (model, pin or "")
        if key not in self._choices:
            self._choices[key] = self._choose_uncached(model, pin)
        return self._choices[key]

    def _choose_uncached(self, model, pin):
        try:
            return choose_schedule(self._registries, model, pin)
        except AYSError as exc:  # e.g. a registry folder that cannot be listed
            fallback = builtin_schedule(model)
            return Choice(fallback, "builtin", f"cannot read the AYS registry ({exc}); using the built-in {fallback.ref}")

    def missing_roots(self, roots, optional=()):
        """Configured folders that are skipped because they are missing or unreadable; a folder
        in `optional` (one created on first publish or pull) is only reported when unreadable."""
        optional = {os.path.abspath(r) for r in optional}
        return [r for r in roots if not readable_folder(r) and not (os.path.abspath(r) in optional and not os.path.exists(r))]

    def registries(self, roots):
        self._refresh(tuple(str(r) for r in roots))
        return self._registries

    def invalidate(self):
        self._roots = None

    def _refresh(self, roots):
        now = time.monotonic()
        if roots == self._roots and now - self._checked_at < self.recheck_s:
            return
        stamp = folder_stamp(roots)
        self._checked_at = now
        if roots == self._roots and stamp == self._stamp:
            return
        self._roots, self._stamp = roots, stamp
        self._registries = RegistrySet([r for r in roots if readable_folder(r)])
        self._choices = {}
