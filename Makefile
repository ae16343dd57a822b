# orca-platform: every command a person or CI runs. Each target builds the virtualenv from requirements.txt first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := venv
PY := $(VENV)/bin/python
# checkov pins libraries (boto3, networkx, packaging) that clash with the program's: it gets a virtualenv of its own.
SCAN_VENV := .venv-scan
# barman-cloud for the point-in-time recovery tests: the tools image's pins (images/tools/requirements.txt).
BARMAN_VENV := .venv-barman
# Debian's Python, not a per-user one: the sidecars run as the postgres user, who must be able to run it.
BARMAN_PYTHON ?= /usr/bin/python3
STACK ?= dev
TENANTS ?=
OUT ?= build/synth/$(STACK)
EXPORT ?= build/synth/$(STACK)/stack-export.json
REPORT ?= build/audit/$(STACK)
BASE ?=
CLINIC ?=
OUTPUTS ?=
PROMTOOL ?= promtool
# apt-get needs root: sudo when not already root (CI runners and workstations alike).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help venv scan-venv policy-venv barman-venv npm-azurite deb-promtool deb-shellcheck deb-postgres deb-strongswan deb-buildah image-tools image-for-tests image-readme image-scan test lint typecheck layers unit checks synth synth-all plan plan-readme rule-table diagram pictures diff clinic-card export audit audit-samples bench clean

# `make help` prints every target that has a `## ` description on its rule line, in file order: the list cannot
# drift from the targets (tests/test_operator_tools.py checks that every target has one).
help: ## this list, by room
	@awk -F ':.*## ' '/^##@ / {printf "\n%s\n", substr($$0, 5)} /^[a-zA-Z0-9_-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

##@ Setup: virtualenvs and the Debian packages the tests use (installed once, no-ops afterwards)

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed ## ./venv from the pinned requirements.txt

# The policy pack runs in a virtualenv of its own (policy/PulumiPolicy.yaml); it needs only pulumi-policy.
policy/venv/.installed: policy/requirements.txt
	$(PYTHON) -m venv policy/venv
	policy/venv/bin/python -m pip install --quiet --upgrade pip
	policy/venv/bin/python -m pip install --quiet -r policy/requirements.txt
	touch $@

policy-venv: policy/venv/.installed ## policy/venv for 'pulumi preview --policy-pack policy'

$(SCAN_VENV)/.installed: requirements-scan.txt
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SCAN_VENV)/bin/python -m pip install --quiet -r requirements-scan.txt
	touch $@

scan-venv: $(SCAN_VENV)/.installed ## .venv-scan with checkov (its pins clash with the program's)

# barman-cloud from the tools image's pinned requirements, in a virtualenv of its own. psycopg2 (barman's) builds
# from source: libpq-dev, gcc and the Python headers come from Debian first, unless pg_config is already there.
$(BARMAN_VENV)/.installed: images/tools/requirements.txt
	@command -v pg_config >/dev/null 2>&1 && command -v gcc >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends libpq-dev gcc \
		python3-dev; }
	@test -x $(BARMAN_PYTHON) && $(BARMAN_PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends python3 python3-venv; }
	rm -rf $(BARMAN_VENV)
	$(BARMAN_PYTHON) -m venv $(BARMAN_VENV)
	$(BARMAN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BARMAN_VENV)/bin/python -m pip install --quiet -r images/tools/requirements.txt
	touch $@

barman-venv: $(BARMAN_VENV)/.installed ## .venv-barman with barman-cloud (the tools image's pins) for the PITR tests

# Azurite (Azure Blob emulator) from the npm registry, exactly as tools/npm/package-lock.json pins it.
tools/npm/node_modules/.installed: tools/npm/package.json tools/npm/package-lock.json
	cd tools/npm && npm ci --no-audit --no-fund --loglevel=error
	touch $@

npm-azurite: tools/npm/node_modules/.installed ## Azurite (pinned npm package) for the PITR tests

# Debian's shellcheck for the "shell" check over the embedded scripts. Installed once; a no-op when it is there.
deb-shellcheck: ## shellcheck (apt package) for the embedded-script check, unless already installed
	@command -v shellcheck >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends shellcheck; }
	@shellcheck --version | sed -n 2p

# promtool checks the alert rules in `make checks`. Debian's and Ubuntu's prometheus package ship it (the server
# comes with it; nothing here runs the server). Installed once: skipped when promtool is on the PATH.
deb-promtool: ## promtool (apt package prometheus) for the alert-rule check, unless already installed
	@command -v $(PROMTOOL) >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	@$(PROMTOOL) --version 2>&1 | head -n 1

# Debian's PostgreSQL server and postgresql-common for the real-database tests (tests/test_postgres_scripts.py):
# installed once, a no-op afterwards. Without apt-get the tests are skipped, and say so.
deb-postgres: ## PostgreSQL (apt package postgresql) for the real-database tests, unless already installed
	@if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && command -v pg_createcluster >/dev/null; then \
		echo "PostgreSQL server present: $$(ls /usr/lib/postgresql | tr '\n' ' ')"; \
	elif ! command -v apt-get >/dev/null; then \
		echo "no apt-get here: tests/test_postgres_scripts.py will be skipped (no PostgreSQL server)"; \
	else \
		$(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql; \
	fi

# buildah and mmdebstrap (Debian packages) build the tools image with no registry (tools/images/build.py checks
# their versions). Installed once, a no-op when both are there.
deb-buildah: ## buildah and mmdebstrap (apt packages) for the tools image, unless already installed
	@if ! command -v buildah >/dev/null || ! command -v mmdebstrap >/dev/null; then \
		if ! command -v apt-get >/dev/null; then \
			echo "no apt-get here: the tools image is not built and tests/test_tools_image.py skips its image tests"; \
			exit 0; fi; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
			-o DPkg::Lock::Timeout=600 --no-install-recommends buildah mmdebstrap >/dev/null; fi; \
	echo "$$(buildah --version), mmdebstrap $$(mmdebstrap --version | cut -d' ' -f2)"

# strongSwan (charon + swanctl, with the userspace datapath kernel-libipsec from libcharon-extra-plugins), nftables
# and iproute2 for the real-strongSwan concentrator tests (tests/test_concentrator_strongswan.py): installed once, a
# no-op afterwards. The tests were written against 5.9.x (Debian 12 ships 5.9.8): another series is reported and
# refused, so a distribution upgrade is a reviewed change, not a silent one. Without apt-get the tests skip and say so.
STRONGSWAN_DEBS := strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-extra-plugins \
	libstrongswan-standard-plugins strongswan-pki nftables iproute2
deb-strongswan: ## strongSwan 5.9.x, nftables, iproute2 (apt) for the real-strongSwan VPN tests, unless installed
	@if dpkg-query -W -f='$${Status}\n' $(STRONGSWAN_DEBS) 2>/dev/null | grep -vq '^install ok installed$$' || \
		[ "$$(dpkg-query -W -f='$${Status}\n' $(STRONGSWAN_DEBS) 2>/dev/null | wc -l)" != $(words $(STRONGSWAN_DEBS)) ]; then \
		if ! command -v apt-get >/dev/null; then \
			echo "no apt-get here: tests/test_concentrator_strongswan.py will be skipped (no strongSwan)"; exit 0; fi; \
		$(SUDO) apt-get update -q -o DPkg::Lock::Timeout=600 && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends $(STRONGSWAN_DEBS); \
	fi
	@v=$$(dpkg-query -W -f='$${Version}' strongswan-charon 2>/dev/null || true); \
	if [ -z "$$v" ]; then exit 0; fi; echo "strongSwan $$v"; \
	case "$$v" in 5.9.*) ;; *) echo "error: strongSwan $$v is outside the tested 5.9.x series" >&2; exit 1;; esac

##@ The tools image (images/tools/, tools/images/): backup.toolsImage, built offline with buildah

# The image backup.toolsImage names (docs/tools-image.md), tagged by a digest of images/tools/: unchanged inputs, no
# build. Needs root (mmdebstrap's root mode, buildah's machine-wide store under IMAGE_STORE).
image-tools: venv deb-buildah ## the tools image from images/tools/ with buildah; a no-op when its inputs are unchanged
	$(PY) -m tools.images.build

# What `make unit` runs: the same build, said and skipped where it cannot run (a runner that is not root).
image-for-tests: venv deb-buildah ## the tools image for the tests; skipped, saying so, where not root
	$(PY) -m tools.images.build --for-tests

image-readme: venv ## regenerate README.md's tools-image block from images/tools/
	$(PY) -m tools.images.contract

# Only Debian's archive is reachable for this (docs/tools-image.md, Known vulnerabilities): exit 1 when it has a
# security update of an installed package.
image-scan: image-tools ## the tools image's size, and its Debian packages that a security update has passed by
	$(PY) -m tools.images.scan

##@ Tests and checks (tests/, tools/checks/): what CI runs

lint: venv ## ruff check and ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv ## mypy --strict
	$(VENV)/bin/mypy

# The checkov and promtool tests call the scan virtualenv and promtool, the policy-pack tests the pack's own venv,
# the shell tests shellcheck, the real-database tests PostgreSQL, the tools-image tests the image, the PITR tests
# barman-cloud and Azurite: all first, so they run, not skip, on a fresh clone.
# One worker per CPU (pytest-xdist). Tests keep to their own tmp_path; the two that touch the project directory
# itself (one writes a stack file there, one copies the tree) share the xdist_group "project-dir", which loadgroup
# runs on one worker, one after the other.
PYTEST_WORKERS ?= auto

unit: venv scan-venv policy-venv deb-shellcheck deb-promtool deb-postgres deb-strongswan image-for-tests barman-venv npm-azurite ## [PYTEST_WORKERS=] the unit tests (pytest, one worker per CPU)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

# Schema validation, security scan, isolation proof, shellcheck and alert rules (promtool) over both sample stacks
# and dev rendered with every clinic ingress-only (tools/checks/check_variants/).
checks: venv scan-venv deb-shellcheck deb-promtool ## schema, scan, isolation proof, shellcheck and alert rules over both sample stacks and the ingress-only variant
	$(PY) -m tools.checks --stacks dev prod dev+ingress-only --scan-python $(SCAN_VENV)/bin/python --promtool $(PROMTOOL)

# Import contracts of pyproject.toml: the core never imports Pulumi, the rules only the standard library.
layers: venv ## import contracts (import-linter): the core never imports Pulumi, the rules only the standard library
	$(VENV)/bin/lint-imports

test: lint typecheck layers unit checks ## lint, type-check, import contracts, unit tests and offline checks (what CI runs)

##@ The program offline (tools/offline/): run it under mocks, write what it would create

synth: venv ## [STACK= TENANTS= OUT=] run the program offline and write what it would create
	$(PY) -m tools.offline.synth --stack $(STACK) $(if $(TENANTS),--tenants $(TENANTS)) --out $(OUT)

synth-all: venv ## synth both sample stacks
	$(MAKE) synth STACK=dev OUT=build/synth/dev
	$(MAKE) synth STACK=prod OUT=build/synth/prod

export: venv ## [STACK=] a stack export (deployment v3) of the offline run, for audits
	$(PY) -m tools.offline.stack_export --stack $(STACK) --out $(EXPORT)

##@ Reports (tools/reports/): capacity, cost, pictures and the cards people read

plan: venv ## [STACK= TENANTS= COMMITMENT=1y|3y] density, all-in cost per clinic, headroom to every wall, node chart
	$(PY) -m tools.reports.plan --stack $(STACK) $(if $(TENANTS),--tenants $(TENANTS)) $(if $(COMMITMENT),--commitment $(COMMITMENT))

plan-readme: venv ## regenerate the planner's figures in README.md and docs/scale.md
	$(PY) -m tools.reports.plan_docs

diagram: venv ## [STACK=] the network as rendered (sites, ranges, clinics, IPs, FQDNs) -> build/diagram/<stack>.svg
	$(PY) -m tools.reports.diagram --stack $(STACK)

# The README's pictures, drawn from the prod sample; tests/test_pictures.py fails when they are out of date.
pictures: venv ## redraw docs/plan-prod.svg and docs/network-prod.svg (the README shows them)
	$(PY) -m tools.reports.plan --stack prod --json build/plan/prod.json --chart docs/plan-prod.svg > /dev/null
	$(PY) -m tools.reports.diagram --stack prod --out docs/network-prod.svg

clinic-card: venv ## CLINIC=<id> [STACK= OUTPUTS=pulumi-stack-output.json] the connection page for a clinic's IT
	$(if $(CLINIC),,$(error CLINIC is required, e.g. make clinic-card CLINIC=sakura-naika STACK=prod))
	$(PY) -m tools.reports.clinic_card --clinic $(CLINIC) --stack $(STACK) $(if $(OUTPUTS),--outputs $(OUTPUTS))

##@ Audit (tools/audit/): stack exports against the rules

rule-table: venv ## regenerate docs/audit.md's rule tables from the rule registry (orca_platform/rules/)
	$(PY) -m tools.audit.rule_table

audit: venv ## EXPORT=file [REPORT=dir PREVIOUS=report.json ARCHIVE=s3://bucket/prefix RETENTION=years] audit a 'pulumi stack export'
	$(PY) -m tools.audit --export $(EXPORT) --out $(REPORT) $(if $(ARCHIVE),--archive $(ARCHIVE)) \
		$(if $(RETENTION),--retention-years $(RETENTION)) $(if $(PREVIOUS),--previous $(PREVIOUS))

# The program's own exports must pass every rule: run after `synth`, which clears build/synth/<stack>.
audit-samples: venv ## export and audit both sample stacks (must find no violation)
	$(MAKE) export audit STACK=dev
	$(MAKE) export audit STACK=prod

##@ Benchmark and housekeeping (bench/)

bench: venv ## time the offline run for 10, 100 and 1,000 clinics; rewrites docs/benchmark.md and README's figures
	$(PY) -m bench.run

clean: ## remove build output and caches
	rm -rf build .mypy_cache .ruff_cache .pytest_cache

# --- deploying (docs/ci.md) ------------------------------------------------------------------------------------------
# Every deploy path previews before it changes anything: `pulumi preview --json` goes through tools/deploy/gate.py,
# which refuses a delete, replace or empty re-creation of clinic data; only then the CLI's `pulumi up`, which previews
# again and stops on a protected resource before its first change (pkg/backend/apply.go), unlike the Automation API's
# `up` (`--skip-preview`). Both run with --refresh, so the gate sees the state the update acts on (REFRESH=false: none).
# The gated preview shows every step: --show-replacement-steps (a delete-replaced is hidden without it, display.go
# shouldShow) and --show-sames (what the refresh dropped then shows as a refresh step alone). `make up` runs
# tools/deploy/binding.py check before `pulumi up`: the stack's version, its state and the program's inputs must be
# those the gate recorded. The CLI is pinned: PULUMI_VERSION, the same as both workflows' `pulumi-version`.
PULUMI ?= pulumi
PULUMI_VERSION := 3.272.0
REFRESH ?= true
GATE_DIR ?= build/gate/$(STACK)
GATE_FORMAT ?= text
MESSAGE ?= make up $(STACK)
REFRESH_FLAG = $(if $(filter false,$(REFRESH)),,--refresh)

.PHONY: pulumi-cli gate preview up decommission

##@ Deploy (tools/deploy/): the gated path to a real stack

# Both stacks unless STACK is given on the command line (its default, dev, is for the single-stack targets).
diff: venv ## BASE=<git ref> [STACK= MARKDOWN=file] what a change does to the platform and to each clinic
	$(if $(BASE),,$(error BASE is required, e.g. make diff BASE=HEAD~1 or BASE=origin/main))
	$(PY) -m tools.deploy.diff --base $(BASE) $(if $(filter command line,$(origin STACK)),--stack $(STACK)) \
		$(if $(MARKDOWN),--markdown $(MARKDOWN))

pulumi-cli: venv ## fail clearly when the Pulumi CLI is missing or is not PULUMI_VERSION
	@command -v $(PULUMI) >/dev/null 2>&1 || { echo "error: the Pulumi CLI ('$(PULUMI)') is not on PATH: install it \
	(https://www.pulumi.com/docs/install/), log in to the state backend (README, Deploying) and run this again" >&2; \
	exit 127; }
	@$(PY) -m tools.deploy.binding cli --pulumi $(PULUMI) --want $(PULUMI_VERSION)

# The stack's last outputs (orcaHistory, clinics) tell the gate what existed; a stack never deployed prints {}.
gate: venv pulumi-cli ## STACK= [REFRESH= GATE_FORMAT=markdown] only the gated JSON preview (what CI posts)
	@mkdir -p $(GATE_DIR) && rm -f $(GATE_DIR)/binding.json $(GATE_DIR)/binding.pending.json
	$(PY) -m tools.deploy.binding record --stack $(STACK) --pulumi $(PULUMI) $(if $(TENANTS),--tenants $(TENANTS)) \
		--out $(GATE_DIR)/binding.pending.json
	$(PULUMI) stack output --stack $(STACK) --json > $(GATE_DIR)/outputs.json
	@rc=0; env -u PULUMI_ENABLE_STREAMING_JSON_PREVIEW $(PULUMI) preview --stack $(STACK) --json $(REFRESH_FLAG) \
		--show-replacement-steps --show-sames > $(GATE_DIR)/preview.json || rc=$$?; \
	$(PY) -m tools.deploy.gate --stack $(STACK) $(if $(TENANTS),--tenants $(TENANTS)) \
		--preview $(GATE_DIR)/preview.json --outputs $(GATE_DIR)/outputs.json --preview-exit $$rc \
		--format $(GATE_FORMAT) --report $(GATE_DIR)/gate.txt
	@mv $(GATE_DIR)/binding.pending.json $(GATE_DIR)/binding.json

# The JSON preview carries no policy results (pkg/backend/display/json.go skips policy events): a second preview
# shows them, and the diff, to the person who reads it.
preview: gate policy-venv ## STACK= [REFRESH=false] the gated JSON preview, then the policy-pack preview
	$(PULUMI) preview --stack $(STACK) $(REFRESH_FLAG) --diff --policy-pack policy

up: gate policy-venv ## STACK= [REFRESH=false] the gate, then the CLI's pulumi up (it previews again first)
	$(PY) -m tools.deploy.binding check --stack $(STACK) --pulumi $(PULUMI) $(if $(TENANTS),--tenants $(TENANTS)) \
		--binding $(GATE_DIR)/binding.json
	$(PULUMI) up --stack $(STACK) --yes --skip-preview=false $(REFRESH_FLAG) --policy-pack policy \
		--message "$(MESSAGE)"

decommission: venv ## CLINIC=<id> [STACK= EXPORT=file] the steps and URNs that retire a clinic
	@test -n "$(CLINIC)" || { echo "error: CLINIC=<id> is required: make decommission CLINIC=<id> STACK=<stack>" >&2; \
	exit 2; }
	$(PY) -m tools.deploy.decommission --clinic $(CLINIC) --stack $(STACK) $(if $(TENANTS),--tenants $(TENANTS)) \
		$(if $(filter command environment,$(firstword $(origin EXPORT))),--export $(EXPORT))
