# The two commands a fresh machine needs are `make demo` and `make test`; each one creates
# .venv if absent and installs the package with the exact versions CI tests
# (constraints.txt; the package itself asks only for ranges, see setup.cfg).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kdzoo-installed
export KDZOO_DATA_DIR ?= $(abspath ../shared/data)
export TF_CPP_MIN_LOG_LEVEL ?= 3
export KERAS_BACKEND ?= tensorflow

.PHONY: install demo test test-fast test-jax lint bench stale wheel constraints clean

# The backend-neutral part of the suite (models, losses, the Distiller, tasks, the recipe on
# NumPy arrays), which `make test-jax` runs on JAX; tests of TensorFlow-only features are
# marked `@pytest.mark.tensorflow` and skipped there.
BACKEND_NEUTRAL_TESTS := tests/losses tests/models tests/distillation tests/test_tasks.py \
	tests/recipe/test_arrays.py

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Need $(PYTHON) on PATH (or set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python setup.cfg pyproject.toml constraints.txt
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/kdzoo demo

# pytest-xdist: TEST_WORKERS processes, each test file in one of them (its module fixtures
# built once); 0 runs everything in this process. Two workers on this 2-core machine.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

test: $(STAMP)
	$(PYTEST)
	$(MAKE) test-jax

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

# The backend-neutral tests again on the JAX backend (CPU), fast ones: the slow cross-backend
# checks (tests/distillation/test_backends.py) already run JAX in subprocesses.
test-jax: $(STAMP)
	KERAS_BACKEND=jax $(PYTEST) -m "not slow" $(BACKEND_NEUTRAL_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check kdzoo tests benchmarks
	$(BIN)/ruff format --check kdzoo tests benchmarks

# Every table under benchmarks/results/ (hours on 2 cores), then STALE.md: the tables the
# code as it now is did not make (`make test` checks that list).
bench: $(STAMP)
	$(BIN)/kdzoo bench default-recipe
	$(BIN)/kdzoo bench av-digits-methods
	$(BIN)/kdzoo bench zoo
	$(BIN)/python benchmarks/unseen_datasets.py
	$(BIN)/python benchmarks/determinism.py
	$(BIN)/python benchmarks/tfdata_teardown.py
	$(BIN)/python benchmarks/keras_peer.py
	$(BIN)/python benchmarks/embedded_dataset.py
	$(BIN)/python benchmarks/utterance_norm.py
	$(BIN)/python benchmarks/audio_speakers.py --seeds 0 1
	$(BIN)/python benchmarks/pipeline_throughput.py
	$(BIN)/python benchmarks/serving_latency.py
	$(BIN)/python benchmarks/distributed.py
	$(BIN)/python benchmarks/cli_latency.py
	$(BIN)/kdzoo bench --stale --write

# Which committed tables the current code did not make; rewrites benchmarks/results/STALE.md.
stale: $(STAMP)
	$(BIN)/kdzoo bench --stale --write

# The wheel a user would install (dist/); tests/test_packaging.py installs one into a fresh
# venv and runs it.
wheel: $(STAMP)
	$(BIN)/python -m pip wheel --no-deps --no-build-isolation -w dist .

# After changing what .venv holds (e.g. raising a dependency), record the exact versions.
constraints: $(STAMP)
	{ sed -n '1,3p' constraints.txt; $(BIN)/python -m pip freeze --all --exclude-editable \
	  | grep -v '^pip=='; } > constraints.txt.new && mv constraints.txt.new constraints.txt

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
	find saved_models -mindepth 1 -not -name README.md -prune -exec rm -rf {} +
