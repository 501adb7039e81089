"""A small stand-in for the `modules` package of the Stable Diffusion WebUI, enough to import and
exercise the AYS extension (scripts/ays.py) without installing a WebUI.

Each submodule mirrors only the names, signatures and behaviour the extension touches; its
docstring names the real file and version it follows. Reference versions read for this stand-in:
AUTOMATIC1111/stable-diffusion-webui 1.10 (the 1.9+ scheduler API) and 1.3-1.8 (the older
sampler-name API), and lllyasviel/stable-diffusion-webui-forge at commit dfdcbab6 (2025).
The code is written from those interfaces, not copied.
"""
