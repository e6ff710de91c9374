# The README's two commands: `make demo` and `make test`. Both build .venv from the lock first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.techne-installed
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: demo test test-fast check lint format typecheck bench lock clean

$(STAMP): requirements.lock pyproject.toml
	@echo "== 1/3 Creating the virtual environment in $(VENV) (once; later runs reuse it)"
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "== 2/3 Installing $$(grep -c '==' requirements.lock) pinned packages from requirements.lock"
	@echo "   (torch and transformers are large: a few minutes on a first run; pip lists each one)"
	$(PIP) install -r requirements.lock
	@echo "== 3/3 Installing Techne itself (editable)"
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)
	@echo "== Environment ready"

demo: $(STAMP)
	@echo "== Building the demo workspace in demo-workspace/ and opening the app"
	$(BIN)/techne demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/python bench/import_bench.py

lock: $(STAMP)
	$(PIP) freeze --exclude-editable | grep -v -E '^(pip|setuptools)==' \
		| sed 's/^torch==\([0-9.]*\)+cpu/torch==\1/' > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) demo-workspace dist build
