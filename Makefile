# The README's two commands: `make run` and `make test`. Both set up everything they need.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
DB_USER := $(shell id -un)

# Tests run against real PostgreSQL and Redis on loopback.
TEST_ENV := TESTING=true \
	DATABASE_URL=$${TEST_DATABASE_URL:-postgres://$(DB_USER)@127.0.0.1:5432/tradingsite} \
	REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}

.PHONY: run test imports venv services chromium lint clean

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

venv: $(VENV)/.installed

services:
	@bash tradingsite/bin/services.sh

run: venv
	@mkdir -p var
	DEBUG=$${DEBUG:-true} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-true} $(PY) manage.py load_demo
	DEBUG=$${DEBUG:-true} $(PY) manage.py ensure_admin
	DEBUG=$${DEBUG:-true} PORT=$(PORT) PY=$(PY) bash tradingsite/bin/run.sh

# The import contracts first (pyproject.toml, [tool.importlinter]): a broken one names both
# modules and the chain between them, and the suite does not run.
test: venv services chromium imports
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

imports: venv
	$(VENV)/bin/lint-imports

# The browser tests drive Debian's Chromium; installed here when missing (as root), since
# Playwright's own browser downloads are not used.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "Missing: /usr/bin/chromium (Debian package 'chromium'). Run as root:" \
	         "apt-get install -y chromium. Until then the browser tests are skipped."; \
	  fi; \
	fi

lint: venv imports
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache
