# orca-platform: every command a person or CI runs. Each target builds the virtualenv from requirements.txt first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := venv
PY := $(VENV)/bin/python
STACK ?= dev
TENANTS ?=
OUT ?= build/synth/$(STACK)

.PHONY: help venv test lint typecheck synth plan clean

help:
	@echo "make test                 lint, type-check and run every test (what CI runs)"
	@echo "make synth [STACK= TENANTS= OUT=]  run the program offline and write what it would create"
	@echo "make plan  [STACK= TENANTS=]       density and cost table for the stack's clinics"

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy

test: lint typecheck
	$(PY) -m pytest

synth: venv
	$(PY) -m tools.synth --stack $(STACK) $(if $(TENANTS),--tenants $(TENANTS)) --out $(OUT)

plan: venv
	$(PY) -m tools.plan --stack $(STACK) $(if $(TENANTS),--tenants $(TENANTS))

clean:
	rm -rf build .mypy_cache .ruff_cache .pytest_cache
