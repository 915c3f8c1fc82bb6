# Two entry points for a fresh clone: `make demo` and `make test`.
# Both create .venv and install the project (pinned in pyproject.toml) on first use.

VENV    ?= .venv
PYTHON  ?= python3
STAMP   := $(VENV)/.installed-stamp

.PHONY: demo test lint install test-deps

$(STAMP): pyproject.toml
	@echo "installing Lingtan into $(VENV) …"
	@$(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@$(VENV)/bin/lingtan demo

test-deps:
	@bash scripts/install-test-deps.sh

test: $(STAMP) test-deps
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/pytest

lint: $(STAMP)
	@$(VENV)/bin/ruff check .
