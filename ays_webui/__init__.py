"""The WebUI side of the AYS extension (AUTOMATIC1111 1.x, Forge), shared by the files in scripts/.

The WebUI runs every scripts/*.py as a module of its own, under its file name and outside
sys.modules, with the extension's folder in front of sys.path only while that file runs
(modules/scripts.py load_scripts, modules/script_loading.py). So one scripts/ file cannot import
another; what they share lives in this package beside scripts/, imported while the first of them
loads and kept in sys.modules for the whole process. "Reload UI" runs scripts/ again but keeps
this package: the adapter's cache and a running optimize job survive it, and the hooks the files
register point at the same functions.

Each scripts/ file registers the hooks of one concern; the modules here do the work:
  common     settings keys, infotext names, console lines, the registry folders searched
  adapter    the schedule the loaded model gets for N steps, and its infotext
  scheduler  the "AYS" scheduler (1.9+, Forge)
  legacy     "<Sampler> AYS" entries (before 1.9)
  settings   Settings > AYS
  sharing    pulls from a remote registry (the "Pull now" button, at start)
  api        GET /ays/v1/schedules, /ays/v1/schedule
  tab        the "AYS" tab and the /ays/v1/optimize routes over ays_core.tune.Job
Nothing here holds math or file formats (ays_core does), and nothing may break the WebUI:
problems become one console line and a fallback.
"""
