# The two commands README.md promises on a fresh clone: `make showcase` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMVENV := .venv-sam
# The peers bench/peers.py compares loopline with, apart from loopline's own venv.
PEERSVENV := .venv-peers
export AWS_DEFAULT_REGION ?= us-east-1
export AWS_ACCESS_KEY_ID ?= testing
export AWS_SECRET_ACCESS_KEY ?= testing

.PHONY: setup showcase test lint unit sam-setup system-deps requirements bench bench-peers bench-cost package-code

$(BIN)/loopline: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[local,dev]'
	touch $@

setup: $(BIN)/loopline

$(SAMVENV)/bin/sam:
	$(PY) -m venv $(SAMVENV)
	$(SAMVENV)/bin/pip install -q --upgrade pip
	$(SAMVENV)/bin/pip install -q aws-sam-cli

sam-setup: $(SAMVENV)/bin/sam

showcase: setup
	$(BIN)/python scripts/showcase.py

MYPY_PATHS := statemachine infra functions

lint: setup sam-setup
	$(BIN)/ruff check .
	$(BIN)/mypy $(MYPY_PATHS)
	$(BIN)/cfn-lint template.yaml
	$(SAMVENV)/bin/sam validate --lint --template template.yaml

# Debian's Chromium for the browser task type's real provider, and Debian's PostgreSQL server for the
# database task's postgresql:// tests (tests skip without them).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
		echo "chromium not installed: the browser tests will be skipped"
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; } || \
		echo "postgresql not installed: the PostgreSQL database tests will be skipped"

# The suite on two processes (pytest-xdist): most tests wait on a subprocess, a socket or a timer, so two
# at once keep both cores busy. TEST_JOBS=0 runs it in this process alone.
TEST_JOBS ?= 2
unit: setup sam-setup system-deps
	$(BIN)/python -m pytest -n $(TEST_JOBS)

test: lint unit

requirements: setup
	$(BIN)/python scripts/gen_requirements.py

bench: setup
	$(BIN)/python bench/transitions.py
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/for_each.py

# A stamp, not bin/python: that is a symlink, and touch would reach the system's interpreter.
$(PEERSVENV)/installed: bench/requirements-peers.txt
	$(PY) -m venv $(PEERSVENV)
	$(PEERSVENV)/bin/pip install -q -r bench/requirements-peers.txt
	touch $@

# loopline's three modes beside DBOS, LangGraph, Step Functions on moto and the durable-execution
# SDK's test runner (bench/README.md); about 10 minutes on a busy 2-core machine.
bench-peers: setup $(PEERSVENV)/installed
	$(BIN)/python bench/peers.py --peers-python $(PEERSVENV)/bin/python

bench-cost: setup
	$(BIN)/python bench/cost.py

# `sam build` (BuildMethod: makefile) calls these: ship the engine's packages and the runtime
# requirements, never the venvs or tests. What runs on one machine only (loopline/embedded: the
# emulation's provisioning, pollers, gateway and outbox page; loopline/memory: local mode's
# adapters) lives outside the copied packages, so nothing is pruned here.
# The requirements are installed once per build and copied into each function (see the script).
# tests/component/test_build.py runs `sam build` and imports every handler from what it built.
build-ApiFunction build-ConsoleFunction build-WorkerFunction build-DeadLetterFunction build-TaskRunnerFunction build-HistoryFunction build-GaugesFunction build-ConsoleAuthorizerFunction build-ConsoleSignInFunction: package-code
	$(PY) scripts/install_requirements.py "$(ARTIFACTS_DIR)"

package-code:
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set"; exit 2; }
	cp -r statemachine infra functions "$(ARTIFACTS_DIR)/"
	find "$(ARTIFACTS_DIR)" -name __pycache__ -prune -exec rm -rf {} +
