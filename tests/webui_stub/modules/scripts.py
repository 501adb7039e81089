"""Stand-in for modules/scripts.py (A1111 1.x, Forge dfdcbab6).

Mirrors: the `Script` base class (title/show/ui/process/postprocess, `infotext_fields`),
the `AlwaysVisible` marker that show() returns for scripts that run on every generation, and
`load_scripts(paths)`: clear all callbacks, then for each file put its extension's root folder
in front of sys.path, run the file with script_loading.load_module, collect its Script
subclasses, and restore sys.path afterwards. "Reload UI" runs load_scripts again in the same
process (shared modules such as sd_schedulers are not reloaded).
`run_process` / `run_postprocess` mirror ScriptRunner calling always-visible scripts.
"""
import inspect
import os
import sys

from modules import script_callbacks, script_loading

AlwaysVisible = object()


class Script:
    infotext_fields = None
    paste_field_names = None

    def title(self):
        raise NotImplementedError()

    def ui(self, is_img2img):
        pass

    def show(self, is_img2img):
        return True

    def process(self, p, *args):
        pass

    def postprocess(self, p, processed, *args):
        pass


scripts_data = []
alwayson_scripts = []


def load_scripts(paths):
    scripts_data.clear()
    alwayson_scripts.clear()
    script_callbacks.clear_callbacks()
    syspath = sys.path
    for path in paths:
        basedir = os.path.dirname(os.path.dirname(os.path.abspath(path)))
        try:
            sys.path = [basedir] + sys.path
            module = script_loading.load_module(path)
            for value in module.__dict__.values():
                if inspect.isclass(value) and issubclass(value, Script) and value is not Script:
                    scripts_data.append(value)
        finally:
            sys.path = syspath
    for script_class in scripts_data:
        script = script_class()
        if script.show(False) is AlwaysVisible:
            alwayson_scripts.append(script)


def run_process(p):
    for script in alwayson_scripts:
        script.process(p)


def run_postprocess(p, processed):
    for script in alwayson_scripts:
        script.postprocess(p, processed)
