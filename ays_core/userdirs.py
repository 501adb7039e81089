"""Per-user folders, following each platform's convention: data (your registry) and cache (latents,
optimizer runs). Nothing here creates a folder; writers create what they use."""
import os
import sys
from pathlib import Path

APP = "ays"


def _home():
    return Path(os.path.expanduser("~"))


def _env_folder(name):
    """An absolute folder from an environment variable, else None (the XDG spec ignores relative ones)."""
    value = os.environ.get(name, "")
    return Path(value) if os.path.isabs(value) else None


def user_data_dir():
    """~/.local/share/ays ($XDG_DATA_HOME), ~/Library/Application Support/ays, %LOCALAPPDATA%\\ays."""
    if sys.platform == "win32":
        return (_env_folder("LOCALAPPDATA") or _home() / "AppData" / "Local") / APP
    if sys.platform == "darwin":
        return _home() / "Library" / "Application Support" / APP
    return (_env_folder("XDG_DATA_HOME") or _home() / ".local" / "share") / APP


def user_cache_dir():
    """~/.cache/ays ($XDG_CACHE_HOME), ~/Library/Caches/ays, %LOCALAPPDATA%\\ays\\cache."""
    if sys.platform == "win32":
        return (_env_folder("LOCALAPPDATA") or _home() / "AppData" / "Local") / APP / "cache"
    if sys.platform == "darwin":
        return _home() / "Library" / "Caches" / APP
    return (_env_folder("XDG_CACHE_HOME") or _home() / ".cache") / APP


def webui_registry(models_path):
    """The WebUI extension's own registry: `ays-registry` in the WebUI's models folder, outside the
    extension's git checkout, so updating the extension never touches a user's schedules."""
    return Path(models_path) / "ays-registry"
