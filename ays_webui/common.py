"""What every part of the extension shares: settings keys and infotext names (stored in users'
config.json and images, so never renamed), reading a setting, console lines, and the registry
folders searched."""
import sys

from ays_core.selection import registry_roots
from ays_core.userdirs import webui_registry
from modules import paths, shared

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


def option(key, default):
    return getattr(shared.opts, key, default)


WARNED = set()


def warn(message):
    """Print each distinct problem once: a console line, never an exception."""
    if message not in WARNED:
        WARNED.add(message)
        print(f"AYS: {message}", file=sys.stderr)


def at_startup(step, what):
    """Run a start-up step; a failure is a console line, never a broken WebUI start."""
    try:
        step()
    except Exception as exc:
        warn(f"could not {what} ({type(exc).__name__}: {exc})")


def own_registry():
    """The extension's own registry folder (models/ays-registry)."""
    return webui_registry(paths.models_path)


def roots():
    """Registry folders in search order: the setting's, $AYS_REGISTRY, our own, the shipped one."""
    return registry_roots(option(OPT_REGISTRIES, ""), own=own_registry())


def has_scheduler_list():
    """Whether this WebUI takes schedulers apart from samplers (A1111 1.9+, Forge)."""
    try:
        from modules import sd_schedulers  # noqa: F401
    except ImportError:
        return False
    return True
