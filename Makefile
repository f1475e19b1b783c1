# sendconn: `make run` (web, worker, sweeper and smtpd on this machine) and `make test`.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin

.PHONY: help run test lint bench

help:
	@echo "make run    install into $(VENV), migrate, then start web (http://127.0.0.1:8000), worker, sweeper, smtpd"
	echo "make test   install the test extras and run the whole test suite"
	echo "make lint   install the lint extras and run ruff (lint and format check) and mypy"
	echo "make bench  run the benchmarks in bench/"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamps: reinstall when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.installed-lint: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[lint]'
	touch $@

# Embedded mode needs no configuration: SQLite and the broker live in $SENDCONN_VAR_DIR (default var/), and a
# SECRET_KEY is generated there once. Variables from .env (see .env.example) and the environment apply.
run: $(VENV)/.installed
	@if [ -f .env ]; then set -a; . ./.env; set +a; fi
	export PATH="$(BIN):$$PATH"
	export SENDCONN_VAR_DIR="$${SENDCONN_VAR_DIR:-$(CURDIR)/var}"
	mkdir -p "$$SENDCONN_VAR_DIR"
	if [ -z "$${SECRET_KEY:-}" ]; then
		key_file="$$SENDCONN_VAR_DIR/secret_key"
		[ -s "$$key_file" ] || (umask 077; python -c 'import secrets; print(secrets.token_urlsafe(50))' > "$$key_file")
		export SECRET_KEY="$$(cat "$$key_file")"
	fi
	python manage.py migrate --noinput
	python manage.py collectstatic --noinput --verbosity 0
	python manage.py bootstrap --skip-checks  # migrate has just run the system checks and printed their warnings
	echo "Open http://$${SENDCONN_WEB_LISTEN:-127.0.0.1:8000}/ and sign in as admin. Ctrl+C stops everything."
	exec python manage.py runall

test: $(VENV)/.installed-test
	$(BIN)/pytest

LINTED := sendconn tests bench manage.py

lint: $(VENV)/.installed-lint
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy sendconn

bench: $(VENV)/.installed-test  # the benches reuse the tests' loopback peers
	@shopt -s nullglob
	for script in bench/*.py; do
		echo "== $$script"
		$(BIN)/python "$$script"
	done
