# Two commands on a fresh machine:  `make run`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint format bench clean worker

# Installing prints one line; pip's own output goes to $(VENV)/install.log (shown on failure).
INSTALL_LOG := $(VENV)/install.log
quietly = { $(1); } >>$(INSTALL_LOG) 2>&1 || { tail -n 40 $(INSTALL_LOG); exit 1; }

$(VENV)/bin/python:
	@echo "Creating $(VENV) (first run only)..."
	@$(PYTHON) -m venv $(VENV)
	@$(call quietly,$(PY) -m pip install -q --upgrade pip)

# The app alone (SQLite, PostgreSQL drivers); reinstalled when pyproject.toml changes.
$(VENV)/.run-installed: pyproject.toml | $(VENV)/bin/python
	@echo "Installing Collect's Python packages (a minute on the first run; log: $(INSTALL_LOG))..."
	@$(call quietly,$(PY) -m pip install -q -e ".[postgres]")
	@touch $@

# Tests need system packages too (Chromium for the browser tests, the MariaDB
# client library for mysqlclient): scripts/system-deps installs what is missing.
$(VENV)/.test-installed: pyproject.toml scripts/system-deps | $(VENV)/bin/python
	scripts/system-deps
	$(PY) -m pip install -q -e ".[test,postgres]"
	if pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null; then \
	  $(PY) -m pip install -q -e ".[mysql]"; \
	else echo "note: no MariaDB client library; MySQL/MariaDB support not installed"; fi
	touch $@

# `make run PORT=8001` serves on another port (or set COLLECT_BIND=host:port).
run: $(VENV)/.run-installed
	@$(if $(PORT),COLLECT_BIND=127.0.0.1:$(PORT)) $(PY) -m collect serve

worker: $(VENV)/.run-installed
	$(PY) -m collect worker

# PYTEST_ARGS narrows a run, e.g. `make test PYTEST_ARGS="-m servers"` (what CI runs
# on MariaDB and PostgreSQL: the tests whose outcome depends on the database or broker).
test: $(VENV)/.test-installed
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy collect jobs teams responses

format: $(VENV)/.test-installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(VENV)/.test-installed
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) var
