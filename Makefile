# The README's two commands: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

# checkov's pins (boto3, packaging, ...) conflict with ours, so it gets a virtualenv of its
# own; tests/test_security.py finds it through $CHECKOV. The stamp names the spec, so
# changing the spec reinstalls.
CHECKOV_SPEC := checkov>=3.2,<4
CHECKOV_VENV := .tools/checkov
CHECKOV := $(CURDIR)/$(CHECKOV_VENV)/bin/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell echo '$(CHECKOV_SPEC)' | cksum | cut -d' ' -f1)

.PHONY: demo serve test lint unit e2e chaos clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/python -m uv pip install -q --python $(BIN)/python -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)  ## run the whole system locally: one job per provider, end to end
	$(BIN)/python -m reelhook_local.demo

serve: $(STAMP)  ## keep the local stack running on :3000 for curl
	$(BIN)/python -m reelhook_local.serve

$(CHECKOV_STAMP):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip uv
	$(CHECKOV_VENV)/bin/python -m uv pip install -q --python $(CHECKOV_VENV)/bin/python "$(CHECKOV_SPEC)"
	rm -f $(CHECKOV_VENV)/.installed-*
	touch $(CHECKOV_STAMP)

test: $(STAMP) $(CHECKOV_STAMP) lint  ## every check: lint, unit, handler (moto), template, security, end to end
	CHECKOV=$(CHECKOV) $(BIN)/python -m pytest -n auto

chaos: $(STAMP)  ## the chaos suite at full size (300 jobs, every fault on)
	$(BIN)/python -m reelhook_local.chaos --jobs 300

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .tools .pytest_cache .ruff_cache .aws-sam
