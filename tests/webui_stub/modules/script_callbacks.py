"""Stand-in for modules/script_callbacks.py (A1111 1.10, Forge dfdcbab6).

Mirrors the registration functions the extension uses, `on_ui_settings(callback, *, name=None)`
(callback()), `on_app_started(callback, *, name=None)` (callback(demo, app); demo is None under
--nowebui), `on_model_loaded(callback, *, name=None)` (callback(sd_model)) and
`on_script_unloaded(callback, *, name=None)` (callback()), the WebUI-side callers of each, and
`clear_callbacks()`, which scripts.load_scripts calls before (re)loading every script.
"""
callback_map = {"ui_settings": [], "app_started": [], "model_loaded": [], "script_unloaded": [], "ui_tabs": []}


def clear_callbacks():
    for callbacks in callback_map.values():
        callbacks.clear()


def on_ui_settings(callback, *, name=None):
    callback_map["ui_settings"].append(callback)


def on_app_started(callback, *, name=None):
    callback_map["app_started"].append(callback)


def on_model_loaded(callback, *, name=None):
    callback_map["model_loaded"].append(callback)


def on_script_unloaded(callback, *, name=None):
    callback_map["script_unloaded"].append(callback)


def ui_settings_callback():
    for callback in callback_map["ui_settings"]:
        callback()


def app_started_callback(demo, app):
    for callback in callback_map["app_started"]:
        callback(demo, app)


def model_loaded_callback(sd_model):
    for callback in callback_map["model_loaded"]:
        callback(sd_model)


def script_unloaded_callback():
    for callback in callback_map["script_unloaded"]:
        callback()


def on_ui_tabs(callback, *, name=None):
    """callback() returns a list of (gradio Blocks, tab title, element id)."""
    callback_map["ui_tabs"].append(callback)


def ui_tabs_callback():
    tabs = []
    for callback in callback_map["ui_tabs"]:
        tabs += callback() or []
    return tabs
