# The two commands README.md promises on a fresh clone: `make showcase` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMVENV := .venv-sam
export AWS_DEFAULT_REGION ?= us-east-1
export AWS_ACCESS_KEY_ID ?= testing
export AWS_SECRET_ACCESS_KEY ?= testing

.PHONY: setup showcase test lint unit sam-setup system-deps requirements bench package-code

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

MYPY_PATHS := statemachine

lint: setup sam-setup
	$(BIN)/ruff check .
	$(BIN)/mypy $(MYPY_PATHS)
	$(BIN)/cfn-lint template.yaml
	$(SAMVENV)/bin/sam validate --lint --template template.yaml

# Debian's Chromium for the browser task type's real provider (tests skip without it).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
		echo "chromium not installed: the browser tests will be skipped"

unit: setup system-deps
	$(BIN)/python -m pytest

test: lint unit

requirements: setup
	$(BIN)/python scripts/gen_requirements.py

bench: setup
	$(BIN)/python bench/transitions.py
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/for_each.py

# `sam build` (BuildMethod: makefile) calls these: ship only the engine's code
# and the runtime requirements, never the venvs or tests, nor what runs on one
# machine only: infra/local (the emulation: provisioning, pollers, gateway,
# outbox page) and infra/memory (local mode's adapters).
# tests/component/test_build.py builds `package-code` and imports every handler from it.
build-ApiFunction build-WorkerFunction build-DeadLetterFunction build-TaskRunnerFunction: package-code
	$(PY) -m pip install -q -r requirements.txt -t "$(ARTIFACTS_DIR)"

package-code:
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set"; exit 2; }
	cp -r statemachine infra functions "$(ARTIFACTS_DIR)/"
	rm -rf "$(ARTIFACTS_DIR)/infra/local" "$(ARTIFACTS_DIR)/infra/memory"
	find "$(ARTIFACTS_DIR)" -name __pycache__ -prune -exec rm -rf {} +
