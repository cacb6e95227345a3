# The README's two commands: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo serve test lint unit e2e clean

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

test: $(STAMP) lint  ## every check: lint, unit, handler (moto), template, end to end
	$(BIN)/python -m pytest -n auto

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .aws-sam
