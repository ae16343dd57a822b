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

.PHONY: help venv scan-venv policy-venv test lint typecheck layers unit checks synth synth-all plan export audit audit-samples bench clean deb-shellcheck

help:
	@echo "make test                           lint, type-check, unit tests and offline checks (what CI runs)"
	@echo "make synth  [STACK= TENANTS= OUT=]  run the program offline and write what it would create"
	@echo "make plan   [STACK= TENANTS=]       density and cost table for the stack's clinics"
	@echo "make export [STACK=]                a stack export (deployment v3) of the offline run, for audits"
	@echo "make audit  EXPORT=file [REPORT=dir] [ARCHIVE=s3://bucket/prefix] [RETENTION=years]  audit a 'pulumi stack export'"
	@echo "make audit-samples                  export and audit both sample stacks (must find no violation)"
	@echo "make policy-venv                    policy/venv for 'pulumi preview --policy-pack policy'"
	@echo "make bench                          time the offline run for 10, 100 and 1,000 clinics"
	@echo "make preview STACK= [REFRESH=false]  pulumi preview --json through the data gate, then the policy pack preview"
	@echo "make up      STACK= [REFRESH=false]  the gate, then the CLI's pulumi up (it previews again before changing anything)"
	@echo "make gate    STACK= [REFRESH= GATE_FORMAT=markdown]  only the gated JSON preview (what CI posts)"
	@echo "make decommission CLINIC=id [STACK= EXPORT=file]  the steps and URNs that retire a clinic"

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

# Debian's shellcheck for the "shell" check over the embedded scripts. Installed once; a no-op when it is there.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
deb-shellcheck:
	@command -v shellcheck >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends shellcheck; }
	@shellcheck --version | sed -n 2p

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy

# The checkov tests call the scan virtualenv, the policy-pack tests the pack's own: build both first so they run,
# not skip, on a fresh clone.
unit: venv scan-venv policy-venv deb-shellcheck
	$(PY) -m pytest

# Schema validation, security scan, isolation proof and shellcheck over both sample stacks.
checks: venv scan-venv deb-shellcheck
	$(PY) -m tools.checks --stacks dev prod --scan-python $(SCAN_VENV)/bin/python

# Import contracts of pyproject.toml: the core never imports Pulumi, the rules only the standard library.
layers: venv
	$(VENV)/bin/lint-imports

test: lint typecheck layers unit checks

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

# --- deploying (docs/ci.md) ------------------------------------------------------------------------------------------
# Every deploy path previews before it changes anything: `pulumi preview --json` goes through tools/preview_gate.py,
# which refuses a delete, replace or empty re-creation of clinic data; only then the CLI's `pulumi up`, which previews
# again and stops on a protected resource before its first change (pkg/backend/apply.go), unlike the Automation API's
# `up` (`--skip-preview`). Both run with --refresh, so the gate sees the state the update acts on (REFRESH=false: none).
PULUMI ?= pulumi
REFRESH ?= true
GATE_DIR ?= build/gate/$(STACK)
GATE_FORMAT ?= text
MESSAGE ?= make up $(STACK)
REFRESH_FLAG = $(if $(filter false,$(REFRESH)),,--refresh)

.PHONY: pulumi-cli gate preview up decommission

pulumi-cli:
	@command -v $(PULUMI) >/dev/null 2>&1 || { echo "error: the Pulumi CLI ('$(PULUMI)') is not on PATH: install it \
	(https://www.pulumi.com/docs/install/), log in to the state backend (README, Deploying) and run this again" >&2; \
	exit 127; }

# The stack's last outputs (orcaHistory, clinics) tell the gate what existed; a stack never deployed prints {}.
gate: venv pulumi-cli
	@mkdir -p $(GATE_DIR)
	$(PULUMI) stack output --stack $(STACK) --json > $(GATE_DIR)/outputs.json
	@rc=0; env -u PULUMI_ENABLE_STREAMING_JSON_PREVIEW $(PULUMI) preview --stack $(STACK) --json $(REFRESH_FLAG) \
		> $(GATE_DIR)/preview.json || rc=$$?; \
	$(PY) -m tools.preview_gate --stack $(STACK) $(if $(TENANTS),--tenants $(TENANTS)) \
		--preview $(GATE_DIR)/preview.json --outputs $(GATE_DIR)/outputs.json --preview-exit $$rc \
		--format $(GATE_FORMAT) --report $(GATE_DIR)/gate.txt

# The JSON preview carries no policy results (pkg/backend/display/json.go skips policy events): a second preview
# shows them, and the diff, to the person who reads it.
preview: gate policy-venv
	$(PULUMI) preview --stack $(STACK) $(REFRESH_FLAG) --diff --policy-pack policy

up: gate policy-venv
	$(PULUMI) up --stack $(STACK) --yes --skip-preview=false $(REFRESH_FLAG) --policy-pack policy \
		--message "$(MESSAGE)"

decommission: venv
	@test -n "$(CLINIC)" || { echo "error: CLINIC=<id> is required: make decommission CLINIC=<id> STACK=<stack>" >&2; \
	exit 2; }
	$(PY) -m tools.decommission --clinic $(CLINIC) --stack $(STACK) $(if $(TENANTS),--tenants $(TENANTS)) \
		$(if $(filter command environment,$(firstword $(origin EXPORT))),--export $(EXPORT))
