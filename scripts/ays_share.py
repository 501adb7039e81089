"""The optional pull from the remote registry URL when the WebUI starts (Settings > AYS; on a
background thread, ays_webui.sharing)."""
from ays_webui.sharing import pull_at_start
from modules import script_callbacks

script_callbacks.on_app_started(pull_at_start)
