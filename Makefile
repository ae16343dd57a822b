# orca-platform: every command a person or CI runs. Each target builds the virtualenv from requirements.txt first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := venv
PY := $(VENV)/bin/python
# checkov pins libraries (boto3, networkx, packaging) that clash with the program's: it gets a virtualenv of its own.
SCAN_VENV := .venv-scan
STACK ?= dev
TENANTS ?=
OUT ?= build/synth/$(STACK)
EXPORT ?= build/synth/$(STACK)/stack-export.json
REPORT ?= build/audit/$(STACK)

.PHONY: help venv scan-venv policy-venv deb-postgres test lint typecheck unit checks synth synth-all plan export audit audit-samples bench clean

help:
	@echo "make test                           lint, type-check, unit tests and offline checks (what CI runs)"
	@echo "make deb-postgres                    Debian's PostgreSQL for the real-database tests (make unit runs it)"
	@echo "make synth  [STACK= TENANTS= OUT=]  run the program offline and write what it would create"
	@echo "make plan   [STACK= TENANTS=]       density and cost table for the stack's clinics"
	@echo "make export [STACK=]                a stack export (deployment v3) of the offline run, for audits"
	@echo "make audit  EXPORT=file [REPORT=dir] [ARCHIVE=s3://bucket/prefix] [RETENTION=years]  audit a 'pulumi stack export'"
	@echo "make audit-samples                  export and audit both sample stacks (must find no violation)"
	@echo "make policy-venv                    policy/venv for 'pulumi preview --policy-pack policy'"
	@echo "make bench                          time the offline run for 10, 100 and 1,000 clinics"

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

# The policy pack runs in a virtualenv of its own (policy/PulumiPolicy.yaml); it needs only pulumi-policy.
policy/venv/.installed: policy/requirements.txt
	$(PYTHON) -m venv policy/venv
	policy/venv/bin/python -m pip install --quiet --upgrade pip
	policy/venv/bin/python -m pip install --quiet -r policy/requirements.txt
	touch $@

policy-venv: policy/venv/.installed

$(SCAN_VENV)/.installed: requirements-scan.txt
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SCAN_VENV)/bin/python -m pip install --quiet -r requirements-scan.txt
	touch $@

scan-venv: $(SCAN_VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy

# Debian's PostgreSQL server and postgresql-common for the real-database tests (tests/test_postgres_scripts.py):
# installed once, a no-op afterwards. Without apt-get the tests are skipped, and say so.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
deb-postgres:
	@if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && command -v pg_createcluster >/dev/null; then \
		echo "PostgreSQL server present: $$(ls /usr/lib/postgresql | tr '\n' ' ')"; \
	elif ! command -v apt-get >/dev/null; then \
		echo "no apt-get here: tests/test_postgres_scripts.py will be skipped (no PostgreSQL server)"; \
	else \
		$(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql; \
	fi

# The checkov tests call the scan virtualenv: build it first so they run, not skip, on a fresh clone.
unit: venv scan-venv deb-postgres
	$(PY) -m pytest

# Schema validation, security scan and isolation proof over both sample stacks.
checks: venv scan-venv
	$(PY) -m tools.checks --stacks dev prod --scan-python $(SCAN_VENV)/bin/python

test: lint typecheck unit checks

synth: venv
	$(PY) -m tools.synth --stack $(STACK) $(if $(TENANTS),--tenants $(TENANTS)) --out $(OUT)

synth-all: venv
	$(MAKE) synth STACK=dev OUT=build/synth/dev
	$(MAKE) synth STACK=prod OUT=build/synth/prod

plan: venv
	$(PY) -m tools.plan --stack $(STACK) $(if $(TENANTS),--tenants $(TENANTS))

export: venv
	$(PY) -m tools.stack_export --stack $(STACK) --out $(EXPORT)

audit: venv
	$(PY) -m tools.audit --export $(EXPORT) --out $(REPORT) $(if $(ARCHIVE),--archive $(ARCHIVE)) \
		$(if $(RETENTION),--retention-years $(RETENTION))

# The program's own exports must pass every rule: run after `synth`, which clears build/synth/<stack>.
audit-samples: venv
	$(MAKE) export audit STACK=dev
	$(MAKE) export audit STACK=prod

bench: venv
	$(PY) -m bench.run

clean:
	rm -rf build .mypy_cache .ruff_cache .pytest_cache
