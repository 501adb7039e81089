"""Run by the WebUI at start-up for extensions/<this folder>/ (launch.run_extension_installer).

Installs only what the sigma path needs and the WebUI lacks, through the WebUI's own helpers,
without version pins: nothing the WebUI already has (torch, numpy, ...) is upgraded or replaced.
"""
import launch

# import name -> pip requirement
REQUIREMENTS = {
    "numpy": "numpy",            # schedules and resampling
    "jsonschema": "jsonschema",  # validating registry files
    "requests": "requests",      # remote registry
}


def missing(requirements):
    return [requirement for module, requirement in requirements.items() if not launch.is_installed(module)]


for requirement in missing(REQUIREMENTS):
    launch.run_pip(f"install {requirement}", f"{requirement} for AYS")
