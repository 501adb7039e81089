"""GET /ays/v1/schedules and /ays/v1/schedule, mounted with the WebUI's API (ays_webui.api)."""
from ays_webui.api import add_api_routes
from modules import script_callbacks

script_callbacks.on_app_started(add_api_routes)
