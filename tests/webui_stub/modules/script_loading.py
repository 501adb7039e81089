"""Stand-in for modules/script_loading.py (A1111 1.x, Forge dfdcbab6): `load_module(path)` runs a
script file as a module named after its file name, without putting it in sys.modules."""
import importlib.util
import os

loaded_scripts = {}


def load_module(path):
    module_spec = importlib.util.spec_from_file_location(os.path.basename(path), path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    loaded_scripts[path] = module
    return module
