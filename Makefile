# The two set-up commands of README.md: `make demo` and `make test`. Both install what they need.
PYTHON ?= $(shell PYENV_VERSION=3.12.1 command -v python3.12 >/dev/null 2>&1 && echo "env PYENV_VERSION=3.12.1 python3.12" || echo python3)
VENV := .venv
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install services demo test lint

$(VENV)/.installed: pyproject.toml
	@command -v bwrap >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq bubblewrap; }
	[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# The tests start their own PostgreSQL (job store, and pgstac under the STAC API); the demo needs none.
services:
	@[ -f /usr/share/postgresql/15/extension/postgis.control ] || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql-15 postgresql-15-postgis-3; }

demo: install
	$(VENV)/bin/pygeoapi-argo demo

lint: install
	$(VENV)/bin/ruff check .

test: lint services
	$(VENV)/bin/pytest -q
