# The two set-up commands of README.md: `make serve` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint bench docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/smartoken serve

# The suite runs on TEST_WORKERS pytest-xdist workers, each test file on one worker (its
# module-scoped fixtures: a browser, a module's gateway); then the tests marked serial (time,
# memory, 1000 concurrent requests) run alone. Compiled modules and the rewritten test modules
# are cached (in __pycache__, git-ignored) even where the environment sets
# PYTHONDONTWRITEBYTECODE: else every worker and every gateway process compiles them again.
# Three workers on this 2-core machine class: much of the suite waits on gateway processes,
# browsers and timers (two workers kept the cores ~55 % busy; 320 s, against 247 s on three).
TEST_WORKERS ?= 3
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -q -p no:cacheprovider
test: $(STAMP) agents
	scripts/services.sh
	$(BIN)/ruff check .
	$(BIN)/mypy --cache-dir "$${TMPDIR:-/tmp}/smartoken-mypy-cache" smartoken
	$(PYTEST) -n $(TEST_WORKERS) --dist loadfile -m "not serial"
	$(PYTEST) -m serial

# Coding agents for the end-to-end tests (tests/agents/package.json: Codex CLI, Claude Code);
# without npm their tests are skipped, saying why.
agents:
	@if command -v npm >/dev/null; then \
	  cd tests/agents && npm install --no-audit --no-fund --silent && \
	  if [ -f node_modules/@anthropic-ai/claude-code/install.cjs ]; then \
	    node node_modules/@anthropic-ai/claude-code/install.cjs >/dev/null; fi; \
	else echo "npm not found: the coding-agent tests will be skipped"; fi

bench: $(STAMP)
	$(BIN)/python -m bench.run

docs: $(STAMP)
	$(BIN)/python -m smartoken.api.openapi.markdown docs/api.md

clean:
	rm -rf $(VENV) data .pytest_cache
