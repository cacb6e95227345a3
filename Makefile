# The README's two commands: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The client (clients/python: reelhook-client and the `reelhook` CLI) is installed beside the
# project, editable; a change to either pyproject.toml reinstalls.
CLIENT := clients/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(CLIENT)/pyproject.toml | cksum | cut -d' ' -f1)

# checkov's pins (boto3, packaging, ...) conflict with ours, so it gets a virtualenv of its
# own; tests/test_security.py finds it through $CHECKOV. The stamp names the spec, so
# changing the spec reinstalls.
CHECKOV_SPEC := checkov>=3.2,<4
CHECKOV_VENV := .tools/checkov
CHECKOV := $(CURDIR)/$(CHECKOV_VENV)/bin/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell echo '$(CHECKOV_SPEC)' | cksum | cut -d' ' -f1)

# The SAM CLI pins its own boto3 and click: a virtualenv of its own too, same stamp scheme.
SAM_SPEC := aws-sam-cli>=1.130,<2
SAM_VENV := .tools/sam
SAM := $(CURDIR)/$(SAM_VENV)/bin/sam
SAM_STAMP := $(SAM_VENV)/.installed-$(shell echo '$(SAM_SPEC)' | cksum | cut -d' ' -f1)
# No telemetry (CI reaches package registries only); samconfig.toml is read from here even
# when the template is the generated one under .aws-sam/.
SAM_RUN := SAM_CLI_TELEMETRY=0 $(SAM)
SAM_CONFIG := --config-file $(CURDIR)/samconfig.toml

# `make build` builds template.yaml (client routes behind IAM). `make build AUTH=jwt
# JWT_ISSUER=https://... JWT_AUDIENCE=...` builds a generated variant whose client routes take
# a JWT instead (scripts/jwt_template.py; issuer and audience become parameter defaults).
# Pass the same AUTH to `make deploy`, which rebuilds first.
AUTH ?= iam
JWT_ISSUER ?=
JWT_AUDIENCE ?=
JWT_TEMPLATE := .aws-sam/template-jwt.yaml
BUILD_TEMPLATE := $(if $(filter jwt,$(AUTH)),$(JWT_TEMPLATE),template.yaml)
# `make deploy CONFIG_ENV=prod` uses samconfig.toml's [prod] tables; DEPLOY_ARGS= (empty)
# deploys with the saved answers and no questions.
CONFIG_ENV ?= default
DEPLOY_ARGS ?= --guided

.PHONY: demo serve test lint unit e2e chaos bench clean build deploy chromium

# The console's browser test (tests/e2e/test_console.py) drives Debian's Chromium through
# playwright, never a browser build of its own. A clean machine lacks it: installed here as
# root (or with passwordless sudo); the package lists are fetched first if apt has none.
CHROMIUM := /usr/bin/chromium

$(STAMP): pyproject.toml $(CLIENT)/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/python -m uv pip install -q --python $(BIN)/python -e "./$(CLIENT)[cli,iam]" -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)  ## run the whole system locally: one job per provider and a failover, end to end
	$(BIN)/python -m reelhook_local.demo

PORT ?= 3000
AWS_PORT ?= 5055
SANDBOX_PORT ?= 8089
serve: $(STAMP)  ## keep the local stack running for curl (PORT=3000 AWS_PORT=5055 SANDBOX_PORT=8089)
	$(BIN)/python -m reelhook_local.serve --port $(PORT) --aws-port $(AWS_PORT) --sandbox-port $(SANDBOX_PORT)

chromium:  ## install Debian's chromium for the console's browser test, unless it is there
	@test -x $(CHROMIUM) && exit 0; \
	command -v apt-get >/dev/null || { echo "$(CHROMIUM) is missing and there is no apt-get: install Chromium there" >&2; exit 1; }; \
	if [ "$$(id -u)" = 0 ]; then as=; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then as="sudo -n"; \
	else echo "$(CHROMIUM) is missing; installing it needs root: run 'sudo make chromium' (or 'sudo apt-get install chromium')" >&2; exit 1; fi; \
	echo "installing chromium with apt-get (the console's browser test)"; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$as apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ $$as apt-get update -q >/dev/null && $$as apt-get install -y -q chromium >/dev/null; } || \
		{ echo "apt-get could not install chromium" >&2; exit 1; }; \
	test -x $(CHROMIUM) || { echo "apt-get installed chromium but $(CHROMIUM) is not there" >&2; exit 1; }

$(CHECKOV_STAMP):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip uv
	$(CHECKOV_VENV)/bin/python -m uv pip install -q --python $(CHECKOV_VENV)/bin/python "$(CHECKOV_SPEC)"
	rm -f $(CHECKOV_VENV)/.installed-*
	touch $(CHECKOV_STAMP)

$(SAM_STAMP):
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q --upgrade pip uv
	$(SAM_VENV)/bin/python -m uv pip install -q --python $(SAM_VENV)/bin/python "$(SAM_SPEC)"
	rm -f $(SAM_VENV)/.installed-*
	touch $(SAM_STAMP)

# Always runs: sam's own cache (samconfig.toml: cached = true) skips unchanged code, and make
# cannot see everything a build depends on. Functions and layer land in .aws-sam/build/,
# which tests/test_build.py checks.
build: $(SAM_STAMP) $(if $(filter jwt,$(AUTH)),$(STAMP))  ## sam build (no container) into .aws-sam/build; AUTH=jwt for the JWT variant
	@case '$(AUTH)' in iam|jwt) ;; *) echo "AUTH must be iam or jwt, not '$(AUTH)'" >&2; exit 2;; esac; \
	bindir=$$(sh scripts/python312-bindir) || exit 1; \
	echo "sam build ($(BUILD_TEMPLATE)) with $$bindir/python3.12"; \
	$(if $(filter jwt,$(AUTH)),$(BIN)/python scripts/jwt_template.py -o $(JWT_TEMPLATE) \
		$(if $(JWT_ISSUER),--issuer '$(JWT_ISSUER)') $(if $(JWT_AUDIENCE),--audience '$(JWT_AUDIENCE)') && ) \
	PATH="$$bindir:$$PATH" $(SAM_RUN) build $(SAM_CONFIG) --config-env $(CONFIG_ENV) \
		--template-file $(BUILD_TEMPLATE) --build-dir .aws-sam/build

deploy: build  ## sam deploy --guided (answers saved in samconfig.toml); CONFIG_ENV=prod, AUTH=jwt, DEPLOY_ARGS=
	@echo "deploying the AUTH=$(AUTH) build with samconfig.toml [$(CONFIG_ENV)]"
	$(SAM_RUN) deploy $(SAM_CONFIG) --config-env $(CONFIG_ENV) $(DEPLOY_ARGS)

test: $(STAMP) $(CHECKOV_STAMP) chromium lint build  ## every check: lint, unit, handler (moto), template, security, end to end, console
	CHECKOV=$(CHECKOV) $(BIN)/python -m pytest -n auto

chaos: $(STAMP)  ## the chaos suite at full size (300 jobs, every fault on)
	$(BIN)/python -m reelhook_local.chaos --jobs 300

# BENCH_ARGS: --quick (CI-sized, into bench/quick/), --only NAME[,NAME], --render-only.
BENCH_ARGS ?=
bench: $(STAMP)  ## the benchmarks on a clean checkout of HEAD; writes BENCHMARKS.md and bench/results.json
	BENCH_PYTHON=$(CURDIR)/$(BIN)/python bash scripts/bench-at-head $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .tools .pytest_cache .ruff_cache .aws-sam
