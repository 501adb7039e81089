"""AYS in WebUIs before 1.9 (AUTOMATIC1111 1.3-1.8), where the schedule is part of the sampler
name: "<Sampler> AYS" entries (ays_webui.legacy). Newer WebUIs get the scheduler "AYS" instead
(scripts/ays.py), so this file does nothing there."""
from ays_webui import legacy
from ays_webui.common import at_startup, has_scheduler_list

if not has_scheduler_list():
    at_startup(legacy.register, "add the AYS samplers")
