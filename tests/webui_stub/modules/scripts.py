"""Stand-in for modules/scripts.py (A1111 1.x, Forge dfdcbab6).

Mirrors: the `Script` base class (title/show/ui/process/postprocess, `infotext_fields`),
the `AlwaysVisible` marker that show() returns for scripts that run on every generation, and
`list_scripts(extension_dirs)`: every *.py file of each extension's scripts/ folder, in file-name
order (extensions.Extension.list_files; no extension here declares an order in metadata.ini);
`load_scripts(paths)`: clear all callbacks, then for each file put its extension's root folder
in front of sys.path, run the file with script_loading.load_module, collect the Script
subclasses in its namespace, and restore sys.path afterwards; a file that raises is reported and
the next one loads (kept in `load_errors`, where the WebUI prints a traceback). "Reload UI" runs
load_scripts again in the same process (imported modules such as sd_schedulers, and packages the
scripts imported, are not reloaded).
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
load_errors = []


def list_scripts(extension_dirs):
    paths = []
    for extension in extension_dirs:
        folder = os.path.join(extension, "scripts")
        if os.path.isdir(folder):
            paths += [os.path.join(folder, name) for name in sorted(os.listdir(folder))
                      if os.path.splitext(name)[1].lower() == ".py" and os.path.isfile(os.path.join(folder, name))]
    return paths


def load_scripts(paths):
    scripts_data.clear()
    alwayson_scripts.clear()
    load_errors.clear()
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
        except Exception as exc:
            load_errors.append((path, exc))
            print(f"Error loading script: {os.path.basename(path)}: {type(exc).__name__}: {exc}", file=sys.stderr)
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
