"""The AYS version (pyproject.toml carries the same number)."""
__version__ = "0.1.0"
