"""Settings > AYS (ays_webui.settings), with the "Pull now" button of ays_webui.sharing.

Added as this file loads as well as with the settings UI: under --nowebui there is no settings UI,
and the WebUI refuses override_settings (API, pasted infotext) for keys it does not know."""
from ays_webui.common import at_startup
from ays_webui.settings import add_settings
from modules import script_callbacks

at_startup(add_settings, "add the AYS settings")
script_callbacks.on_ui_settings(add_settings)
