"""Stand-in for the helpers that launch.py re-exports from modules/launch_utils.py (A1111 1.6+,
Forge dfdcbab6) for extensions' install.py: `is_installed(package)` (an installed distribution
or an importable module of that name) and `run_pip(command, desc=None)`, recorded in
`pip_commands` instead of running pip."""
import importlib.metadata
import importlib.util

pip_commands = []


def is_installed(package):
    try:
        importlib.metadata.distribution(package)
        return True
    except importlib.metadata.PackageNotFoundError:
        try:
            return importlib.util.find_spec(package) is not None
        except ModuleNotFoundError:
            return False


def run_pip(command, desc=None, live=False):
    pip_commands.append((command, desc))
