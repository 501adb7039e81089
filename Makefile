# `make demo` and `make test` each set up .venv on a fresh machine first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test demo bench bench-quick clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test,diffusers]"
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q

demo: setup
	$(VENV)/bin/ays registry list
	$(VENV)/bin/ays schedule sdxl --steps 20
	$(PY) benchmarks/demo.py
	@echo "The ays command is in $(VENV)/bin: run '. $(VENV)/bin/activate' to put it on your PATH."

# Every table of docs/BENCHMARKS.md's suite section (70 min on 2 cores; bench-quick prints a subset, 13 min when last timed, before the pushes and the later searches).
bench: setup
	$(PY) benchmarks/suite.py $(ARGS)

bench-quick: setup
	$(PY) benchmarks/suite.py --quick $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
