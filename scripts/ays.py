"""AYS for the Stable Diffusion WebUI (AUTOMATIC1111 1.9+/1.10, Forge): the scheduler "AYS".

Registers it in modules/sd_schedulers.py (ays_webui.scheduler) and an always-on script that tells
the adapter which generation runs, so that its infotext says "AYS schedule: <id>@v<N>" (and
"Hires AYS schedule: ..." when the hires pass used another). Before 1.9: scripts/ays_legacy.py.
The other files here register the other concerns (settings, sharing, API, the optimize tab); the
WebUI loads each scripts/*.py as a module of its own, so what they share is the package ays_webui
beside this folder (see its docstring).
"""
from ays_webui import scheduler
from ays_webui.adapter import ADAPTER
from ays_webui.common import at_startup, has_scheduler_list
from modules import scripts


class AYSScript(scripts.Script):
    """Always on, no UI: tells the adapter which generation is running (for its infotext)."""

    def title(self):
        return "AYS"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        return []

    def process(self, p, *args):
        ADAPTER.begin(p)

    def postprocess(self, p, processed, *args):
        ADAPTER.end(p)


if has_scheduler_list():
    at_startup(scheduler.register, "add the AYS scheduler")
