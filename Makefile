PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: test lint typecheck devnet bench clean image test-docker test-attack test-governance-sim

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev,fuzz]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -q

# Validator set changes under faults and Byzantine validators, >= 2,000 heights in all
# (tests/consensus/test_simulation_sets.py; `make test` runs the same table shorter).
test-governance-sim: $(STAMP)
	ALMONER_GOV_SIM_HEIGHTS=260 $(BIN)/pytest -q tests/consensus/test_simulation_sets.py

devnet: $(STAMP)
	$(BIN)/almoner devnet --dir ./devnet

# Benchmarks print figures; run them as modules (python -m bench.X) from the repository
# root, so that they can use the test helpers in tests/.
bench: $(STAMP)
	$(BIN)/python -m bench.core
	$(BIN)/python -m bench.consensus
	$(BIN)/python -m bench.verify
	$(BIN)/python -m bench.cluster

# The node image (docker/build-image.sh: base image from a cached debootstrap if missing,
# wheels built on the host, docker build). Needs root or a running Docker engine.
image: $(STAMP)
	ALMONER_PYTHON=$(BIN)/python docker/build-image.sh

# End-to-end test of docker/compose.yml (tests/docker/e2e.py); always tears down.
test-docker: image
	$(BIN)/python -m tests.docker.e2e

# Issue 14's long attack regressions (lying peers that stall, floods, large reads) and the
# longer fuzzing budget; `make test` runs the quick ones. Every loop is bounded.
test-attack: $(STAMP)
	$(BIN)/pytest -q -m attack tests/attack
	ALMONER_FUZZ_EXAMPLES=$${ALMONER_FUZZ_EXAMPLES:-3000} $(BIN)/pytest -q tests/fuzz

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
