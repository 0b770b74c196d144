# mixsd: `make demo` runs the main job on the embedded toy model, `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch first and pinned: 2.13.0 is a CPU wheel on this machine's disk; an unpinned torch pulls CUDA.
TORCH  ?= torch==2.13.0

.PHONY: install test test-all demo readme bench lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

test-all: install
	$(PY) -m pytest -q -m ""

demo: install
	$(VENV)/bin/mixsd demo

# Regenerate the README's results section from a fresh demo (numbers never typed by hand).
readme: demo
	mkdir -p docs/demo
	cp runs/demo/results.json docs/demo/results.json
	$(VENV)/bin/mixsd report docs/demo --out docs/demo --readme README.md

bench: install
	$(PY) bench/mixing.py
	$(PY) bench/training.py

lint: install
	$(VENV)/bin/ruff check src tests bench

format: install
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
