"""Settings > AYS: registry folders, pins (restored from pasted infotext), readable folders for the
tab and API, the remote registry and its "Pull now" button, the step convention."""
from ays_core.errors import AYSError
from modules import shared

from .adapter import ADAPTER
from .common import (INFOTEXT_A1111, INFOTEXT_HIRES_SCHEDULE, INFOTEXT_SCHEDULE, OPT_A1111, OPT_HIRES_PIN, OPT_PIN,
                     OPT_PULL_AT_START, OPT_PULL_NOW, OPT_READABLE, OPT_REGISTRIES, OPT_REMOTE, roots)
from .sharing import pull_button


def option_info(default, label, component=None, component_args=None, infotext=None, restrict_api=False, **kwargs):
    """shared.OptionInfo in the AYS section; `infotext` (1.7+) makes pasted infotext restore it;
    `restrict_api` (1.7+) keeps API clients (override_settings, A1111's /sdapi/v1/options) from
    changing it."""
    kwargs["section"] = ("ays", "AYS")
    newer = {k: v for k, v in (("infotext", infotext), ("restrict_api", restrict_api)) if v}
    if newer:
        try:
            return shared.OptionInfo(default, label, component, component_args, **newer, **kwargs)
        except TypeError:  # before 1.7
            pass
    return shared.OptionInfo(default, label, component, component_args, **kwargs)


def restrict_folder_setting(key):
    """A setting naming server folders: frozen by --hide-ui-dir-config like the WebUI's output
    folders, and out of the API's reach."""
    restricted = getattr(shared, "restricted_opts", None)
    if isinstance(restricted, set):
        restricted.add(key)


def pin_choices():
    try:
        refs = [s.ref for s in ADAPTER.selector.registries(roots()).schedules()]
    except AYSError:
        refs = []
    return {"choices": ["Automatic", *refs]}


def add_settings():
    import gradio as gr

    shared.opts.add_option(OPT_REGISTRIES, option_info(
        "", "Registry folders searched first (separate with ;; pulls go to the first). Then $AYS_REGISTRY if set, models/ays-registry and the shipped registry",
        gr.Textbox, restrict_api=True))
    restrict_folder_setting(OPT_REGISTRIES)
    shared.opts.add_option(OPT_PIN, option_info(
        "Automatic", "Schedule: Automatic = the checkpoint's own, else its family's; or pin an id / id@vN",
        gr.Dropdown, pin_choices, infotext=INFOTEXT_SCHEDULE, refresh=ADAPTER.selector.invalidate))
    shared.opts.add_option(OPT_HIRES_PIN, option_info(
        "Automatic", "Hires pass schedule: Automatic = chosen like the first pass's; or pin an id / id@vN",
        gr.Dropdown, pin_choices, infotext=INFOTEXT_HIRES_SCHEDULE, refresh=ADAPTER.selector.invalidate))
    shared.opts.add_option(OPT_READABLE, option_info(
        "", "Folders the AYS tab and API may read (prompts files, image folders; separate with ;). Empty: none, prompts only inline",
        gr.Textbox, restrict_api=True))
    restrict_folder_setting(OPT_READABLE)
    shared.opts.add_option(OPT_REMOTE, option_info("", "Remote registry URL (for ays pull/share)", gr.Textbox))
    pull_button_option = option_info("Pull now", "Pull now from the remote registry URL (apply settings first)",
                                     pull_button)
    pull_button_option.do_not_save = True
    shared.opts.add_option(OPT_PULL_NOW, pull_button_option)
    shared.opts.add_option(OPT_PULL_AT_START, option_info(
        False, "Pull from the remote registry URL at start (in the background)", gr.Checkbox))
    shared.opts.add_option(OPT_A1111, option_info(
        False, "A1111 step convention: N points then 0, like the built-in Align Your Steps (off: N + 1 points, last set to 0)",
        gr.Checkbox, infotext=INFOTEXT_A1111))
