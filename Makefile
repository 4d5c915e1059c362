# seqtrace: `make up` runs it, `make test` checks it. Both set everything up on a fresh machine.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
TOOLS   := .tools
MMDC    := $(TOOLS)/node_modules/.bin/mmdc

.PHONY: install up test lint format tools bench clean

# The C extension (spanstore/decode/_otlpscan.c) is compiled by this install, in place: edits to
# it rebuild (and pyproject.toml's [tool.uv] cache-keys make uv notice them).
$(STAMP): pyproject.toml setup.py spanstore/decode/_otlpscan.c
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## .venv with the `seqtrace` command in it

up: install  ## collector + query API + UI, with the sample traces
	$(BIN)/seqtrace up

tools: install  ## what the tests need beyond Python: chromium, plantuml, mermaid-cli, node deps
	@bash scripts/ensure-tools.sh

lint: install  ## ruff, the formatter check, mypy, the import layers
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install tools lint  ## the whole suite, browsers included
	SEQTRACE_MMDC=$(CURDIR)/$(MMDC) $(BIN)/python -m pytest -q -p no:cacheprovider

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install  ## the benchmarks in bench/ (minutes; figures go to docs/performance.md)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(TOOLS) test-artifacts .pytest_cache .ruff_cache .mypy_cache
