# The two commands a fresh machine needs are `make demo` and `make test`; each one creates
# .venv if absent and installs the pinned dependencies and the package first.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kdzoo-installed
export KDZOO_DATA_DIR ?= $(abspath ../shared/data)
export TF_CPP_MIN_LOG_LEVEL ?= 3
export KERAS_BACKEND ?= tensorflow

.PHONY: install demo test test-fast lint bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Need $(PYTHON) on PATH (or set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/kdzoo demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check kdzoo tests benchmarks
	$(BIN)/ruff format --check kdzoo tests benchmarks

bench: $(STAMP)
	$(BIN)/kdzoo bench default-recipe
	$(BIN)/kdzoo bench av-digits-methods
	$(BIN)/python benchmarks/keras_peer.py
	$(BIN)/python benchmarks/embedded_dataset.py
	$(BIN)/python benchmarks/pipeline_throughput.py
	$(BIN)/python benchmarks/serving_latency.py
	$(BIN)/python benchmarks/distributed.py
	$(BIN)/python benchmarks/cli_latency.py

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
	find saved_models -mindepth 1 -not -name README.md -prune -exec rm -rf {} +
