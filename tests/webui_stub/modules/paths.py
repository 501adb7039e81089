"""modules/paths.py (A1111 1.10, Forge): only `models_path`, the WebUI's models folder.

The stand-in reads it from $WEBUI_STUB_MODELS at each access, so that every test gets its own
folder (tests/conftest.py sets it)."""
import os


def __getattr__(name):
    if name == "models_path":
        return os.environ["WEBUI_STUB_MODELS"]
    raise AttributeError(f"module 'modules.paths' has no attribute {name!r}")
