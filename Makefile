# Test and CI tooling for the cortecs.management collection.
# Needs only python3 (3.11), git and make, plus access to PyPI; `make help` lists the targets.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.requirements-dev.stamp

# Newest ansible-core (2.21.x) needs Python >= 3.12: pyenv's 3.12.1 if present.
NEWEST_VENV := .venv-newest
NEWEST_PY := $(NEWEST_VENV)/bin/python
NEWEST_STAMP := $(NEWEST_VENV)/.requirements-newest.stamp
NEWEST_PYTHON ?= $(firstword $(wildcard \
	$(addsuffix /versions/3.12.1/bin/python,$(shell pyenv root 2>/dev/null) $(PYENV_ROOT) $(HOME)/.pyenv /root/.pyenv)))

PIP_INSTALL := -m pip install --disable-pip-version-check --quiet
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv venv-newest sanity units integration lint docs-lint changelog-lint build \
	sim-tests newest sim demo test clean

help:
	@echo "make demo            provision 3 simulated environments: --check --diff, real run, no-op re-run"
	@echo "make test            every check below through one runner (logs in build/logs/)"
	@echo "make sim             run the API simulator in the foreground (SIM_PORT, SIM_KEY, SIM_ARGS)"
	@echo "make venv            .venv/ from requirements-dev.txt"
	@echo "make sanity          ansible-test sanity (no Docker, --venv --python 3.11)"
	@echo "make units           ansible-test units"
	@echo "make integration     ansible-test integration (all targets in tests/integration/targets)"
	@echo "make sim-tests       pytest tests/simulator/tests"
	@echo "make lint            ansible-lint --profile production"
	@echo "make docs-lint       antsibull-docs lint-collection-docs"
	@echo "make changelog-lint  antsibull-changelog lint"
	@echo "make build           build the collection, install it offline, ansible-doc, galaxy-importer"
	@echo "make docs            module/role reference and guides as HTML in build/docs/build/html (antsibull-docs)"
	@echo "make newest          sanity + units on the newest ansible-core (Python 3.12 from pyenv)"
	@echo "make clean           remove venvs, build/, tests/output/ and the kept ansible-test copies"

# --- virtual environments -------------------------------------------------------------------

venv: $(VENV_STAMP)

$(VENV_STAMP): requirements-dev.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) $(PIP_INSTALL) -r requirements-dev.txt
	touch $@

venv-newest: $(NEWEST_STAMP)

$(NEWEST_STAMP): requirements-newest.txt
	@test -n "$(NEWEST_PYTHON)" || { echo "Python 3.12.1 (pyenv) not found"; exit 1; }
	rm -rf $(NEWEST_VENV)
	$(NEWEST_PYTHON) -m venv $(NEWEST_VENV)
	$(NEWEST_PY) $(PIP_INSTALL) -r requirements-newest.txt
	touch $@

# --- ansible-test (on a copy of the tree, see .ci/run_ansible_test.py) ----------------------

sanity: venv
	$(PY) .ci/run_ansible_test.py sanity $(SANITY_ARGS)

units: venv
	$(PY) .ci/run_ansible_test.py units $(UNITS_ARGS)

integration: venv
	$(PY) .ci/run_ansible_test.py integration --continue-on-error $(INTEGRATION_ARGS)

newest:
	@if [ -z "$(NEWEST_PYTHON)" ]; then \
		echo "SKIPPED: make newest needs pyenv's Python 3.12.1 (\$$(pyenv root)/versions/3.12.1/bin/python)"; \
		exit 0; \
	fi; \
	$(MAKE) --no-print-directory venv-newest || exit 1; \
	rc=0; \
	$(NEWEST_PY) .ci/run_ansible_test.py sanity $(SANITY_ARGS) || rc=1; \
	$(NEWEST_PY) .ci/run_ansible_test.py units $(UNITS_ARGS) || rc=1; \
	exit $$rc

# --- other checks -----------------------------------------------------------------------------

lint: venv
	$(VENV)/bin/ansible-lint --profile production

docs-lint: venv
	$(VENV)/bin/antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs .

changelog-lint: venv
	$(VENV)/bin/antsibull-changelog lint

build: venv
	$(PY) .ci/build_check.py

.PHONY: docs
docs: venv
	$(PY) .ci/build_docs.py

# Runs from build/sim-tests so that hypothesis keeps its .hypothesis/ database there.
sim-tests: venv
	@if [ ! -d tests/simulator/tests ]; then echo "SKIPPED: tests/simulator/tests does not exist yet"; exit 0; fi; \
	mkdir -p build/sim-tests && cd build/sim-tests && \
	$(CURDIR)/$(PY) -m pytest -p no:cacheprovider --rootdir $(CURDIR) $(CURDIR)/tests/simulator/tests $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "SKIPPED: pytest collected no tests in tests/simulator/tests"; exit 0; fi; \
	exit $$rc

# --- simulator and demo -----------------------------------------------------------------------

sim:
	$(PYTHON) tests/simulator/cortecs_sim.py $(SIM_ARGS)

demo: venv
	$(PY) tests/demo/demo.py

# --- benchmark and chaos run (tests/bench, results in build/bench and build/chaos) ------------

# make bench [BENCH_N=50,200] [BENCH_ARGS="--keys 3 --forks 10 --noop-runs 2"]; make chaos [CHAOS_ARGS=...]
.PHONY: bench chaos
bench: venv
	$(PY) tests/bench/bench.py $(if $(BENCH_N),--sizes $(BENCH_N)) $(BENCH_ARGS)

chaos: venv
	$(PY) tests/bench/chaos.py $(CHAOS_ARGS)

# --- everything -------------------------------------------------------------------------------

# Steps run two at a time (TEST_JOBS), longest first; the summary lists them in this order.
TEST_JOBS ?= 2
test: venv
	$(PY) .ci/orchestrate.py -j $(TEST_JOBS) integration newest sanity units sim-tests lint docs-lint changelog-lint build demo

clean:
	$(PYTHON) .ci/run_ansible_test.py --clean
	rm -rf $(VENV) $(NEWEST_VENV) build tests/output
