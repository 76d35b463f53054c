# The commands of the README: `make demo`, `make test` and `make bench`. Each sets up .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

.PHONY: demo test bench mutation clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/medtrinity demo --out medtrinity-demo --overwrite
	@echo 'look at it: $(BIN)/medtrinity view medtrinity-demo   (then open http://127.0.0.1:8000/)'

test: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/python -m pytest

# rank_bm25 (the `bench` extra) is what bench/retrieval.py compares bm25s with.
$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

bench: $(VENV)/.installed-bench
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/experts.py
	$(BIN)/python bench/retrieval.py
	$(BIN)/python bench/describer.py
	$(BIN)/python bench/green_box.py

# Mutation testing of the core modules, each against its own tests (bench/mutation.py; minutes per module, so not
# part of `make test`). `make mutation MODULES="geometry store"` measures only the modules whose path has a word.
$(VENV)/.installed-mutation: pyproject.toml $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet -e '.[test,mutation]'
	touch $@

mutation: $(VENV)/.installed-mutation
	$(BIN)/python bench/mutation.py $(MODULES)

clean:
	rm -rf $(VENV) medtrinity-demo .pytest_cache mutants
