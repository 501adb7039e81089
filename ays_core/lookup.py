"""What a schedule name means (a baseline, a registry id, a schedule file) and its N-step sigmas:
the one-call entry of the sigma path, re-exported as ays_core.resolve / ays_core.schedule."""
from pathlib import Path

from .baselines import BASELINES, Baseline
from .errors import AYSError
from .registry import load_schedule, parse_ref, search_order


def resolve(name, registry=None, version=None):
    """What `name` means: a Baseline ('karras', ...), or a stored Schedule from a schedule file
    path or a registry id ('sdxl', 'sdxl@2') looked up in `registry` (default: yours, $AYS_REGISTRY
    or the per-user one) and then in the shipped registry. Both have .id, .version, .resample()."""
    if name in BASELINES:
        return Baseline(name)
    if name.endswith(".json") or "/" in name or "\\" in name:
        if version is not None:
            raise AYSError(f"a version applies to registry ids, not to a schedule file such as {name!r}")
        return load_schedule(Path(name))
    schedule_id, ref_version = parse_ref(name)
    if version is not None and ref_version is not None and version != ref_version:
        raise AYSError(f"{name!r} names version {ref_version} but version {version} was asked for")
    return search_order(registry).get(schedule_id, version or ref_version)


def schedule(name, steps, denoise=None, version=None, registry=None, convention="ays",
             sigma_min=None, sigma_max=None):
    """The N-step sampling sigmas (numpy float64, N + 1 values ending in 0) for `name`:
    a baseline ('karras', 'exponential', ...), a registry id or a schedule file.

    A stored schedule is rescaled to sigma_min/sigma_max when given; a baseline spans them
    (SD's range when not given). `denoise` keeps the img2img tail."""
    source = resolve(name, registry=registry, version=version)
    return source.resample(steps, convention=convention, sigma_min=sigma_min, sigma_max=sigma_max, denoise=denoise)
