# Two commands on a fresh machine:  `make run`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint format bench bench-all clean worker

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
	@exec $(if $(PORT),env COLLECT_BIND=127.0.0.1:$(PORT)) $(PY) -m collect serve

worker: $(VENV)/.run-installed
	exec $(PY) -m collect worker

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

# `make bench DB=sqlite|mysql|postgres N=rows`: end-to-end import and export next to the
# database's own loader and dump (bench/bench_ratio.py). The server databases are the local
# ones of the machine (database collect_bench, created when missing) with RabbitMQ.
# STORAGE=s3 keeps the job files in a bucket on a moto_server started for the run;
# STORAGE=both runs the local folder and the bucket side by side, one row each.
DB ?= sqlite
N ?= 100000
STORAGE ?= local
BENCH_URL_sqlite :=
BENCH_URL_mysql := mysql://root@127.0.0.1:3306/collect_bench
BENCH_URL_postgres := postgres://postgres@127.0.0.1:5432/collect_bench
bench: $(VENV)/.test-installed
	@$(if $(filter $(DB),sqlite mysql postgres),,echo "DB must be sqlite, mysql or postgres" && exit 2)
	$(if $(BENCH_URL_$(DB)),DATABASE_URL=$(BENCH_URL_$(DB)) CELERY_BROKER_URL=amqp://guest:guest@127.0.0.1:5672//) \
	  $(PY) bench/bench_ratio.py $(N) --storage $(STORAGE)

# Every benchmark at modest sizes, one table each (engine, import, export, polling, slow clients).
bench-all: $(VENV)/.test-installed
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) var
