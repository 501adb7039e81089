"""The WebUI's "AYS" tab and its /ays/v1/optimize routes: optimize a schedule for the loaded
checkpoint (ays_webui.tab, over ays_core.tune.Job)."""
from ays_webui.tab import add_api_routes, on_ui_tabs
from modules import script_callbacks

script_callbacks.on_ui_tabs(on_ui_tabs)
script_callbacks.on_app_started(add_api_routes)
