PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: test lint typecheck devnet bench bench-vs-etcd clean image test-docker test-attack test-governance-sim browser-deps chaos chaos-ci test-sdk vectors

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev,analytics,fuzz]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -q
	$(MAKE) test-sdk

# The TypeScript SDK (sdk/typescript): its conformance vectors and a live one-node devnet.
test-sdk: $(STAMP)
	sdk/typescript/ensure-node.sh
	cd sdk/typescript && npm ci --no-audit --no-fund --loglevel=error
	cd sdk/typescript && ALMONER_PYTHON=$(abspath $(BIN)/python) npm test --silent

# Rewrite docs/spec/vectors from the implementation (tests/test_spec_vectors.py checks them).
vectors: $(STAMP)
	$(BIN)/python -m tests.spec_vectors

# The explorer's browser tests drive Debian's chromium through chromedriver; a CJK font
# makes the Chinese pages (and their screenshots) legible. Installed with apt when missing.
browser-deps:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
	    || ! fc-list :lang=zh 2>/dev/null | grep -q .; then \
	  apt-get update -q && apt-get install -y -q chromium chromium-driver fonts-wqy-zenhei; \
	fi

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
	$(BIN)/python -m bench.event_loop

# Client load (wrk, one POST ?wait=commit per donation) against the devnet and a 3-member
# etcd side by side; needs `apt-get install -y wrk etcd-server`.
bench-vs-etcd: $(STAMP)
	$(BIN)/python -m bench.vs_etcd

# The node image (docker/build-image.sh: base image from a cached debootstrap if missing,
# wheels built on the host, docker build). Needs root or a running Docker engine.
image: $(STAMP)
	ALMONER_PYTHON=$(BIN)/python docker/build-image.sh

# End-to-end test of docker/compose.yml (tests/docker/e2e.py); always tears down.
test-docker: image
	$(BIN)/python -m tests.docker.e2e

# Fault injection against real node processes (tests/chaos/, docs/chaos.md): one seeded
# run of DURATION seconds, judged by the history checker; prints the summary table.
# As root, nodes live in their own network namespaces (iproute2, nftables, libfaketime
# installed when missing); otherwise on 127.0.0.1 behind the fault proxy.
SEED ?= 1
DURATION ?= 60
chaos: $(STAMP)
	tests/chaos/setup.sh
	$(BIN)/python -m tests.chaos.run --seed $(SEED) --duration $(DURATION) --negative-control

# CI: three fixed seeds, a few minutes in all.
chaos-ci: $(STAMP)
	tests/chaos/setup.sh
	for seed in 1 7 10; do \
		$(BIN)/python -m tests.chaos.run --seed $$seed --duration 45 --max-fault 4 --negative-control || exit 1; \
	done
# Issue 14's long attack regressions (lying peers that stall, floods, large reads) and the
# longer fuzzing budget; `make test` runs the quick ones. Every loop is bounded.
test-attack: $(STAMP)
	$(BIN)/pytest -q -m attack tests/attack
	ALMONER_FUZZ_EXAMPLES=$${ALMONER_FUZZ_EXAMPLES:-3000} $(BIN)/pytest -q tests/fuzz

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
