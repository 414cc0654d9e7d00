# gridshim — make demo | make test | make bench | make sandbox-up | make sandbox-down
SHELL := /bin/bash
# The venv's interpreter must be usable by the sandbox's tool uids (tests run the commands as them),
# so prefer the system Python over one under a private home such as /root/.pyenv.
PYTHON ?= $(shell for p in /usr/bin/python3 /usr/local/bin/python3 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& echo $$p && break; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# System tools the tests use beyond Python and Go: groff (man pages render), setpriv (run as a tool uid).
system-deps:
	@command -v groff >/dev/null && command -v setpriv >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq groff-base util-linux >/dev/null; \
	  else echo "make test needs groff and setpriv: apt-get install groff-base util-linux" >&2; exit 1; fi; }

.PHONY: all system-deps venv sandbox-build sandbox-up sandbox-down sandbox-status test test-unit test-e2e test-e2e-external demo bench lint clean

all: test

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

# Real Grid Engine clients from PyPI (dask-jobqueue, Snakemake 7) for tests/e2e/test_clients.py, in a
# venv of their own made with the same PYTHON: jobs run its interpreter as the sandbox's tool uids.
CLIENTS_VENV := .venv-clients
CLIENTS_REQ := tests/e2e/clients/requirements.txt
.PHONY: clients-venv
$(CLIENTS_VENV)/.installed: $(CLIENTS_REQ)
	@test -x $(CLIENTS_VENV)/bin/python || $(PYTHON) -m venv $(CLIENTS_VENV)
	$(CLIENTS_VENV)/bin/python -m pip install -q --upgrade pip
	$(CLIENTS_VENV)/bin/python -m pip install -q -r $(CLIENTS_REQ)
	@touch $@

clients-venv: $(CLIENTS_VENV)/.installed

sandbox-build:
	bash sandbox/build.sh

sandbox-up: venv
	$(PY) -m sandbox.up up

sandbox-down:
	@if [ -x $(PY) ]; then $(PY) -m sandbox.up down; else echo "sandbox: not set up"; fi

sandbox-status: venv
	$(PY) -m sandbox.up status

# ruff over the tree, mypy over src/ (settings in pyproject.toml); `make test` runs it first.
lint: venv
	$(PY) -m ruff check src tests sandbox bench
	$(PY) -m mypy src

# The whole suite: lint, unit tests, then end-to-end tests against the real sandbox (started if needed).
test: lint system-deps venv clients-venv sandbox-build
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-e2e: venv clients-venv sandbox-build
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

# The e2e suite against an existing cluster (docs/testing.md): E2E_KUBECONFIG is the cluster to test,
# E2E_ADMIN_KUBECONFIG sets its tools up (default: the same), E2E_SHARED_HOME=1 when its pods see this
# machine's tool homes. Tests that need the local sandbox are skipped with their reasons (-ra).
test-e2e-external: venv clients-venv
	@test -n "$(E2E_KUBECONFIG)" || { echo "usage: make test-e2e-external E2E_KUBECONFIG=PATH [E2E_ADMIN_KUBECONFIG=PATH] [E2E_SHARED_HOME=1]" >&2; exit 2; }
	GRIDSHIM_E2E_KUBECONFIG=$(E2E_KUBECONFIG) GRIDSHIM_E2E_ADMIN_KUBECONFIG=$(or $(E2E_ADMIN_KUBECONFIG),$(E2E_KUBECONFIG)) \
	  GRIDSHIM_E2E_SHARED_HOME=$(E2E_SHARED_HOME) $(PY) -m pytest -ra tests/e2e $(PYTEST_ARGS)

demo: venv sandbox-up
	bash sandbox/demo.sh

bench: venv sandbox-up
	$(PY) bench/run.py

clean: sandbox-down
	rm -rf .sandbox build dist src/*.egg-info .venv-clients
